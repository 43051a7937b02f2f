"""The evaluation runner, one for every chapter: encode each unique image and caption of a task once (through the
embedding store), optionally map the captions with a LABCLIP map, score, and return a tidy table that says which
definition each number uses.

>>> table = evaluate(encoder, swap_task(scenes), {"CLIP": None, "LABCLIP": fit.map})
>>> table = evaluate(encoder, load_benchmark("sugarcrepe"), {"CLIP": None, "LABCLIP": fit.map})
>>> save_results(table, "results/sugarcrepe.csv")        # refuses to overwrite an earlier result
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from labclip_utils.io.files import atomic_write
from labclip_utils.labclip import LabclipMap
from labclip_utils.metrics import (
    ARO_VGA_MIN_COUNT,
    RETRIEVAL_TIES,
    TIES_LABEL,
    choice_credit,
    image_to_text_recall,
    macro_accuracy,
    micro_accuracy,
    option_scores,
    sugarcrepe_summary,
    text_to_image_recall,
)
from labclip_utils.models.encoder import Encoder
from labclip_utils.store import Embeddings, EmbeddingStore, encode
from labclip_utils.tasks import ChoiceTask, RetrievalTask, Task

#: ARO's replication notebook drops these VG-Relation relations from its macro average, because swapping their
#: two objects gives a caption that is also true ("near", "next to"...). LABCLIP's notebook keeps them. The list
#: is ARO's (``notebooks/Replicate ARO! VG-Relation, VG-Attribution.ipynb`` in mertyg/vision-language-models-are-bows).
ARO_SYMMETRIC_RELATIONS: frozenset[str] = frozenset((
    "adjusting", "attached to", "between", "bigger than", "biting", "boarding", "brushing", "chewing", "cleaning",
    "climbing", "close to", "coming from", "coming out of", "contain", "crossing", "dragging", "draped over",
    "drinking", "drinking from", "driving", "driving down", "driving on", "eating from", "eating in", "enclosing",
    "exiting", "facing", "filled with", "floating in", "floating on", "flying", "flying above", "flying in",
    "flying over", "flying through", "full of", "going down", "going into", "going through", "grazing in",
    "growing in", "growing on", "guiding", "hanging from", "hanging in", "hanging off", "hanging over",
    "higher than", "holding onto", "hugging", "in between", "jumping off", "jumping on", "jumping over", "kept in",
    "larger than", "leading", "leaning over", "leaving", "licking", "longer than", "looking in", "looking into",
    "looking out", "looking over", "looking through", "lying next to", "lying on top of", "making", "mixed with",
    "mounted on", "moving", "on the back of", "on the edge of", "on the front of", "on the other side of",
    "opening", "painted on", "parked at", "parked beside", "parked by", "parked in", "parked in front of",
    "parked near", "parked next to", "perched on", "petting", "piled on", "playing", "playing in", "playing on",
    "playing with", "pouring", "reaching for", "reading", "reflected on", "riding on", "running in", "running on",
    "running through", "seen through", "sitting behind", "sitting beside", "sitting by", "sitting in front of",
    "sitting near", "sitting next to", "sitting under", "skiing down", "skiing on", "sleeping in", "sleeping on",
    "smiling at", "sniffing", "splashing", "sprinkled on", "stacked on", "standing against", "standing around",
    "standing behind", "standing beside", "standing in front of", "standing near", "standing next to",
    "staring at", "stuck in", "surrounding", "swimming in", "swinging", "talking to", "topped with", "touching",
    "traveling down", "traveling on", "tying", "typing on", "underneath", "wading in", "waiting for",
    "walking across", "walking by", "walking down", "walking next to", "walking through", "working in",
    "working on", "worn on", "wrapped around", "wrapped in", "by", "of", "near", "next to", "with", "beside",
    "on the side of", "around",
))
COLUMNS = ["benchmark", "model", "subset", "metric", "value", "items", "definition", "precision"]


def task_texts(task: Task) -> list[str]:
    return task.texts if isinstance(task, ChoiceTask) else list(dict.fromkeys(task.texts))


def encode_task(encoder: Encoder, task: Task, *, store: EmbeddingStore | None = None,
                progress: bool = True) -> Embeddings:
    """Every unique image and caption of ``task`` (or of the dataset it was cut from, ``task.context``), encoded
    once per (encoder, code, preprocessing, content)."""
    images, texts = getattr(task, "context", None) or (task.images, task_texts(task))
    return encode(encoder, images, texts, store=store, progress=progress)


def _texts(emb: Embeddings, labclip_map: LabclipMap | None, raw: bool) -> torch.Tensor:
    if labclip_map is not None:
        return labclip_map.map_texts(emb.texts).float()
    return emb.texts * emb.text_norms[:, None] if raw else emb.texts


def choice_scores(emb: Embeddings, task: ChoiceTask, labclip_map: LabclipMap | None = None) -> np.ndarray:
    """N×K scores: item ``i``'s image against each of its options (cosines; text mapped by A when given; raw text
    dot products for plain CLIP when ``task.score == "raw_text_dot"``)."""
    widths = {len(o) for o in task.options}
    if len(widths) != 1:
        raise ValueError(f"{task.name}: items have different numbers of options {sorted(widths)}")
    texts = _texts(emb, labclip_map, task.score == "raw_text_dot")
    option_rows = torch.tensor([[emb.text_row[t] for t in opts] for opts in task.options])
    images = emb.image_rows(task.images)[torch.as_tensor(task.image_index)]
    return option_scores(images, texts[option_rows])


def _choice_rows(task: ChoiceTask, scores: np.ndarray, cosine: np.ndarray | None = None, plain: bool = True
                 ) -> list[dict]:
    credit = choice_credit(scores, task.answer, task.ties)
    ties = TIES_LABEL[task.ties]
    rows = []
    if task.metric == "aro":
        if task.name == "vg_attribution":
            try:
                macro, per = macro_accuracy(credit, task.group, min_count=ARO_VGA_MIN_COUNT)
                what = f"attribute pairs with ≥{ARO_VGA_MIN_COUNT} items (ARO's filter)"
            except ValueError:  # small sets: say so rather than fail
                macro, per = macro_accuracy(credit, task.group)
                what = f"attribute pairs (none has {ARO_VGA_MIN_COUNT} items, so ARO's filter is NOT applied)"
            rows.append({"subset": task.name, "metric": "macro accuracy", "value": macro, "items": len(task),
                         "definition": f"mean over {int(per['kept'].sum())} {what}; {ties}"})
        else:
            macro, per = macro_accuracy(credit, task.group)
            rows.append({"subset": task.name, "metric": "macro accuracy", "value": macro, "items": len(task),
                         "definition": f"mean over {int(per['kept'].sum())} relations, none dropped "
                                       f"(LABCLIP's notebook); {ties}"})
            try:
                filtered, per = macro_accuracy(credit, task.group, exclude=ARO_SYMMETRIC_RELATIONS)
                rows.append({"subset": task.name, "metric": "macro accuracy (symmetric dropped)", "value": filtered,
                             "items": len(task),
                             "definition": f"mean over {int(per['kept'].sum())} relations, ARO's symmetric "
                                           f"relations dropped (ARO's replication notebook); {ties}"})
            except ValueError:
                pass  # every relation present is symmetric
        rows.append({"subset": task.name, "metric": "micro accuracy", "value": micro_accuracy(credit),
                     "items": len(task), "definition": f"mean over items; {ties}"})
    elif task.metric == "sugarcrepe":
        acc, counts = {}, {}
        for subset in dict.fromkeys(task.subset):
            mask = task.subset == subset
            acc[subset], counts[subset] = float(credit[mask].mean()), int(mask.sum())
            rows.append({"subset": subset, "metric": "accuracy", "value": acc[subset], "items": counts[subset],
                         "definition": ties})
        for family, row in sugarcrepe_summary(acc, counts).iterrows():
            for how in ("weighted", "unweighted"):
                rows.append({"subset": family, "metric": f"{how} mean", "value": row[how], "items": row["items"],
                             "definition": f"{how} mean of {row['subsets']}"})
    else:
        score = ""
        if task.score == "raw_text_dot":
            score = ("; plain CLIP scored with un-normalised text" if plain
                     else "; cosines, the text re-normalised after A")
        rows.append({"subset": task.name, "metric": "accuracy", "value": micro_accuracy(credit), "items": len(task),
                     "definition": ties + score})
        if task.metric == "binding":
            other = "strict" if task.ties == "correct" else "correct"
            rows.append({"subset": task.name, "metric": f"accuracy ({other})", "items": len(task),
                         "value": micro_accuracy(choice_credit(scores, task.answer, other)),  # type: ignore[arg-type]
                         "definition": TIES_LABEL[other] + score})
        if cosine is not None:
            rows.append({"subset": task.name, "metric": "accuracy (cosine)", "items": len(task),
                         "value": micro_accuracy(choice_credit(cosine, task.answer, task.ties)),
                         "definition": f"{ties}; plain CLIP scored with cosines"})
    return rows


def _retrieval_rows(task: RetrievalTask, emb: Embeddings, labclip_map: LabclipMap | None) -> list[dict]:
    texts = _texts(emb, labclip_map, False)[torch.tensor([emb.text_row[t] for t in task.texts])]
    owner = torch.as_tensor(task.text_image)
    images = emb.image_rows(task.images)
    rows = []
    for direction, recalls in (("text→image", text_to_image_recall(images, texts, owner, ties=task.ties)),
                               ("image→text", image_to_text_recall(images, texts, owner, ties=task.ties))):
        for k, value in recalls.items():
            rows.append({"subset": task.name, "metric": f"{direction} R@{k}", "value": value, "items": len(task),
                         "definition": f"{len(images)} images, {len(task)} captions; {RETRIEVAL_TIES[task.ties]}"})
    return rows


def evaluate(encoder: Encoder, task: Task, maps: Mapping[str, LabclipMap | None] | None = None, *,
             store: EmbeddingStore | None = None, progress: bool = True) -> pd.DataFrame:
    """Score ``task`` once per entry of ``maps`` (model label → LABCLIP map, ``None`` for plain CLIP).

    The images and captions are encoded once in total, whatever the number of maps. Columns: benchmark, model,
    subset, metric, value, items, definition, precision (the encoder's).
    """
    maps = dict(maps or {"CLIP": None})
    emb = encode_task(encoder, task, store=store, progress=progress)
    for label, labclip_map in maps.items():
        if labclip_map is not None and labclip_map.dim != emb.texts.shape[1]:
            raise ValueError(f"map {label!r}: A is {labclip_map.dim}×{labclip_map.dim} but {encoder.name} embeds "
                             f"in D={emb.texts.shape[1]}")
    frames = []
    for label, labclip_map in maps.items():
        if isinstance(task, ChoiceTask):
            cosine = None
            if task.score == "raw_text_dot" and labclip_map is None:
                cosine = option_scores(emb.image_rows(task.images)[torch.as_tensor(task.image_index)],
                                       emb.texts[torch.tensor([[emb.text_row[t] for t in o] for o in task.options])])
            rows = _choice_rows(task, choice_scores(emb, task, labclip_map), cosine, plain=labclip_map is None)
        else:
            rows = _retrieval_rows(task, emb, labclip_map)
        frames.append(pd.DataFrame(rows).assign(benchmark=task.name, model=label, precision=encoder.precision))
    return pd.concat(frames, ignore_index=True)[COLUMNS]


def result(table: pd.DataFrame, model: str = "CLIP", metric: str = "accuracy", subset: str | None = None) -> float:
    """One number from an :func:`evaluate` table (it must match exactly one row)."""
    rows = table[(table["model"] == model) & (table["metric"] == metric)]
    if subset is not None:
        rows = rows[rows["subset"] == subset]
    if len(rows) != 1:
        raise KeyError(f"{len(rows)} rows for model={model!r}, metric={metric!r}, subset={subset!r}")
    return float(rows["value"].iloc[0])


def save_results(table: pd.DataFrame, path: str | Path, *, overwrite: bool = False) -> Path:
    """Write a result table as ``.csv`` or ``.json``, atomically; an existing file is kept unless ``overwrite``."""
    path = Path(path)
    if path.suffix not in (".csv", ".json"):
        raise ValueError(f"{path}: use a .csv or .json file name")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path}: an earlier result is there; choose another name or pass overwrite=True")

    def write(tmp: Path) -> None:
        if path.suffix == ".csv":
            table.to_csv(tmp, index=False)
        else:
            table.to_json(tmp, orient="records", indent=1, force_ascii=False)

    return atomic_write(path, write, share=True)
