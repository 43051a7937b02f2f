"""The evaluation runner: encode each unique image and caption of a task once (through the cache), optionally
map the captions with a LABCLIP ``A``, score, and return a tidy table that says which metric definition each
number uses.

>>> task = load_benchmark("sugarcrepe")
>>> table = evaluate(encoder, task, maps={"CLIP": None, "LABCLIP": fit.model})
>>> save_results(table, "results/sugarcrepe.csv")        # refuses to overwrite an earlier result
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from labclip_utils.benchmarks.base import ChoiceTask, ImageRef, RetrievalTask, Task
from labclip_utils.benchmarks.metrics import (
    ARO_VGA_MIN_COUNT,
    choice_correct,
    image_to_text_recall,
    macro_accuracy,
    micro_accuracy,
    sugarcrepe_summary,
    text_to_image_recall,
)
from labclip_utils.cache import cached_tensors
from labclip_utils.labclip import Labclip
from labclip_utils.models.encoder import Encoder
from labclip_utils.store import STORE_VERSION, EmbeddingStore

TIES_LABEL = {"strict": "true caption scores strictly higher", "correct": "ties count as correct",
              "first": "argmax, ties go to the first option"}


@dataclass
class TaskEmbeddings:
    """Embeddings of a task's unique images (row ``i`` = ``task.images[i]``) and unique captions."""

    images: torch.Tensor
    texts: torch.Tensor
    text_row: dict[str, int]
    from_cache: bool


def encode_refs(encoder: Encoder, refs: Sequence[ImageRef], chunk: int = 256, progress: bool = True) -> torch.Tensor:
    """Load and encode images chunk by chunk, so memory stays bounded on 5,000-image sets."""
    out = [torch.empty(0, encoder.embed_dim)]
    for start in tqdm(range(0, len(refs), chunk), desc="encoding benchmark images", disable=not progress,
                      leave=False):
        images = [r.load() for r in refs[start : start + chunk]]
        out.append(encoder.encode_images(images, progress=False))
    return torch.cat(out)


def task_texts(task: Task) -> list[str]:
    return task.texts if isinstance(task, ChoiceTask) else list(dict.fromkeys(task.texts))


def encode_task(encoder: Encoder, task: Task, *, store: EmbeddingStore | None = None,
                progress: bool = True) -> TaskEmbeddings:
    """Every unique image and caption of ``task``, encoded once per (encoder, preprocessing, task content)."""
    store = store or EmbeddingStore()
    texts = task_texts(task)
    key = {"version": STORE_VERSION, "encoder": encoder.id, "preprocess": encoder.preprocess_id,
           "task": task.name, "fingerprint": task.fingerprint(), "dtype": store.dtype}
    dtype = getattr(torch, store.dtype)

    def compute() -> dict[str, torch.Tensor]:
        return {"images": encode_refs(encoder, task.images, progress=progress).to(dtype),
                "texts": encoder.encode_texts(texts, progress=progress).to(dtype)}

    tensors, hit = cached_tensors(store.root, "benchmark", key, compute)
    return TaskEmbeddings(tensors["images"].float(), tensors["texts"].float(),
                          {t: i for i, t in enumerate(texts)}, hit)


def _mapped_texts(emb: TaskEmbeddings, labclip: Labclip | None) -> torch.Tensor:
    return emb.texts if labclip is None else labclip.map_texts(emb.texts).float()


def choice_scores(emb: TaskEmbeddings, task: ChoiceTask, labclip: Labclip | None = None) -> np.ndarray:
    """N×K cosine scores: item ``i``'s image against each of its options (text mapped by A when given)."""
    widths = {len(o) for o in task.options}
    if len(widths) != 1:
        raise ValueError(f"{task.name}: items have different numbers of options {sorted(widths)}")
    texts = _mapped_texts(emb, labclip)
    option_rows = torch.tensor([[emb.text_row[t] for t in opts] for opts in task.options])
    images = emb.images[torch.as_tensor(task.image_index)]
    return torch.einsum("nd,nkd->nk", images, texts[option_rows]).numpy()


def _choice_rows(task: ChoiceTask, scores: np.ndarray) -> list[dict]:
    correct = choice_correct(scores, task.answer, task.ties)  # type: ignore[arg-type]
    ties = TIES_LABEL[task.ties]
    rows = []
    if task.metric == "aro":
        if task.name == "vg_attribution":
            try:
                macro, per = macro_accuracy(correct, task.group, min_count=ARO_VGA_MIN_COUNT)
                what = f"attribute pairs with ≥{ARO_VGA_MIN_COUNT} items (ARO's filter)"
            except ValueError:  # small sets: say so rather than fail
                macro, per = macro_accuracy(correct, task.group)
                what = f"attribute pairs (none has {ARO_VGA_MIN_COUNT} items, so ARO's filter is NOT applied)"
        else:
            macro, per = macro_accuracy(correct, task.group)
            what = "relations (none dropped, as LABCLIP's notebook)"
        kept = int(per["kept"].sum())
        rows.append({"subset": task.name, "metric": "macro accuracy", "value": macro, "items": len(task),
                     "definition": f"mean over {kept} {what}; {ties}"})
        rows.append({"subset": task.name, "metric": "micro accuracy", "value": micro_accuracy(correct),
                     "items": len(task), "definition": f"mean over items; {ties}"})
    elif task.metric == "sugarcrepe":
        acc, counts = {}, {}
        for subset in dict.fromkeys(task.subset):
            mask = task.subset == subset
            acc[subset], counts[subset] = float(correct[mask].mean()), int(mask.sum())
            rows.append({"subset": subset, "metric": "accuracy", "value": acc[subset], "items": counts[subset],
                         "definition": ties})
        for family, row in sugarcrepe_summary(acc, counts).iterrows():
            for how in ("weighted", "unweighted"):
                rows.append({"subset": family, "metric": f"{how} mean", "value": row[how], "items": row["items"],
                             "definition": f"{how} mean of {row['subsets']}"})
    else:
        rows.append({"subset": task.name, "metric": "accuracy", "value": micro_accuracy(correct), "items": len(task),
                     "definition": ties})
        if task.metric == "binding":
            other = "strict" if task.ties == "correct" else "correct"
            rows.append({"subset": task.name, "metric": f"accuracy ({other})", "items": len(task),
                         "value": micro_accuracy(choice_correct(scores, task.answer, other)),  # type: ignore[arg-type]
                         "definition": TIES_LABEL[other]})
    return rows


def _retrieval_rows(task: RetrievalTask, emb: TaskEmbeddings, labclip: Labclip | None) -> list[dict]:
    texts = _mapped_texts(emb, labclip)[torch.tensor([emb.text_row[t] for t in task.texts])]
    owner = torch.as_tensor(task.text_image)
    rows = []
    for direction, recalls in (("text→image", text_to_image_recall(emb.images, texts, owner)),
                               ("image→text", image_to_text_recall(emb.images, texts, owner))):
        for k, value in recalls.items():
            rows.append({"subset": task.name, "metric": f"{direction} R@{k}", "value": value, "items": len(task),
                         "definition": f"{len(emb.images)} images, {len(task)} captions"})
    return rows


def evaluate(encoder: Encoder, task: Task, maps: Mapping[str, Labclip | None] | None = None, *,
             store: EmbeddingStore | None = None, progress: bool = True) -> pd.DataFrame:
    """Score ``task`` once per entry of ``maps`` (model label → LABCLIP map, ``None`` for plain CLIP).

    The images and captions are encoded once in total, whatever the number of maps. Columns: benchmark, model,
    subset, metric, value, items, definition.
    """
    maps = dict(maps or {"CLIP": None})
    emb = encode_task(encoder, task, store=store, progress=progress)
    frames = []
    for label, labclip in maps.items():
        if isinstance(task, ChoiceTask):
            rows = _choice_rows(task, choice_scores(emb, task, labclip))
        else:
            rows = _retrieval_rows(task, emb, labclip)
        frames.append(pd.DataFrame(rows).assign(benchmark=task.name, model=label))
    table = pd.concat(frames, ignore_index=True)
    return table[["benchmark", "model", "subset", "metric", "value", "items", "definition"]]


def save_results(table: pd.DataFrame, path: str | Path, *, overwrite: bool = False) -> Path:
    """Write a result table as ``.csv`` or ``.json``, atomically; an existing file is kept unless ``overwrite``."""
    path = Path(path)
    if path.suffix not in (".csv", ".json"):
        raise ValueError(f"{path}: use a .csv or .json file name")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path}: an earlier result is there; choose another name or pass overwrite=True")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        if path.suffix == ".csv":
            table.to_csv(tmp, index=False)
        else:
            table.to_json(tmp, orient="records", indent=1, force_ascii=False)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
