"""The evaluation runner, one for every chapter: encode each unique image and caption of a task once (through the
embedding store), optionally map the captions with a LABCLIP map, score, and return a tidy table that says which
definition each number uses.

>>> table = evaluate(encoder, swap_task(scenes), {"CLIP": None, "LABCLIP": fit.map})
>>> table = evaluate(encoder, load_benchmark("sugarcrepe"), {"CLIP": None, "LABCLIP": fit.map})
>>> save_results(table, "results/sugarcrepe.csv")        # refuses to overwrite an earlier result
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
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
    Ties,
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
from labclip_utils.tasks import ChoiceTask, RetrievalTask, Score, Task

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


def choice_scores(emb: Embeddings, task: ChoiceTask, labclip_map: LabclipMap | None = None, *,
                  score: Score | None = None) -> np.ndarray:
    """N×K scores: item ``i``'s image against each of its options (cosines; text mapped by A when given; raw text
    dot products for plain CLIP when ``score``, by default ``task.score``, is ``"raw_text_dot"``)."""
    widths = {len(o) for o in task.options}
    if len(widths) != 1:
        raise ValueError(f"{task.name}: items have different numbers of options {sorted(widths)}")
    texts = _texts(emb, labclip_map, (score or task.score) == "raw_text_dot")
    option_rows = torch.tensor([[emb.text_row[t] for t in opts] for opts in task.options])
    images = emb.image_rows(task.images)[torch.as_tensor(task.image_index)]
    return option_scores(images, texts[option_rows])


@dataclass(frozen=True)
class Scored:
    """One model's scores on a choice task: what every row builder reads."""

    task: ChoiceTask
    #: N×K: item ``i``'s image against each of its options (:func:`choice_scores`).
    scores: np.ndarray
    #: How the scores were made, for the families that say so in their definition: empty for cosines,
    #: otherwise "; plain CLIP scored with un-normalised text" or "; cosines, the text re-normalised after A".
    note: str = ""
    #: Plain CLIP on a raw-text task (``score="raw_text_dot"``): the same items scored with cosines as well.
    cosine: np.ndarray | None = None

    def credit(self, ties: Ties | None = None) -> np.ndarray:
        """Each item's credit under ``ties`` (default: the task's tie rule)."""
        return choice_credit(self.scores, self.task.answer, ties or self.task.ties)

    @property
    def ties(self) -> str:
        return TIES_LABEL[self.task.ties]


def score_choices(emb: Embeddings, task: ChoiceTask, labclip_map: LabclipMap | None = None) -> Scored:
    """Score ``task`` for one model (``labclip_map=None``: plain CLIP). A raw-text task is the same path with
    un-normalised text for plain CLIP, which then gets its cosine scores too; after A the text is re-normalised."""
    raw, plain = task.score == "raw_text_dot", labclip_map is None
    if not raw:
        note = ""
    else:
        note = "; plain CLIP scored with un-normalised text" if plain else "; cosines, the text re-normalised after A"
    cosine = choice_scores(emb, task, score="cosine") if raw and plain else None
    return Scored(task, choice_scores(emb, task, labclip_map), note, cosine)


def _accuracy_row(s: Scored, ties: Ties | None = None, metric: str = "accuracy") -> dict:
    ties = ties or s.task.ties
    return {"subset": s.task.name, "metric": metric, "value": micro_accuracy(s.credit(ties)), "items": len(s.task),
            "definition": TIES_LABEL[ties] + s.note}


def _cosine_rows(s: Scored) -> list[dict]:
    if s.cosine is None:
        return []
    return [{"subset": s.task.name, "metric": "accuracy (cosine)", "items": len(s.task),
             "value": micro_accuracy(choice_credit(s.cosine, s.task.answer, s.task.ties)),
             "definition": f"{s.ties}; plain CLIP scored with cosines"}]


def _micro_row(s: Scored) -> dict:
    return {"subset": s.task.name, "metric": "micro accuracy", "value": micro_accuracy(s.credit()),
            "items": len(s.task), "definition": f"mean over items; {s.ties}"}


def accuracy_rows(s: Scored) -> list[dict]:
    """Accuracy over items (ARO's COCO/Flickr30k-Order); plain CLIP on a raw-text task adds its cosine accuracy."""
    return [_accuracy_row(s), *_cosine_rows(s)]


def binding_rows(s: Scored) -> list[dict]:
    """The paper's swap accuracy under the task's tie rule, then under the other (strict ↔ ties correct); plain CLIP
    on a raw-text task (CLEVR) adds its cosine accuracy."""
    other: Ties = "strict" if s.task.ties == "correct" else "correct"
    return [_accuracy_row(s), _accuracy_row(s, other, f"accuracy ({other})"), *_cosine_rows(s)]


def aro_relation_rows(s: Scored) -> list[dict]:
    """ARO's VG-Relation: macro accuracy over relations, none dropped (LABCLIP's notebook) and ARO's symmetric ones
    dropped (ARO's notebook; left out when every relation is symmetric), then micro accuracy over items."""
    task, credit = s.task, s.credit()
    macro, per = macro_accuracy(credit, task.group)
    rows = [{"subset": task.name, "metric": "macro accuracy", "value": macro, "items": len(task),
             "definition": f"mean over {int(per['kept'].sum())} relations, none dropped (LABCLIP's notebook); "
                           f"{s.ties}"}]
    try:
        filtered, per = macro_accuracy(credit, task.group, exclude=ARO_SYMMETRIC_RELATIONS)
        rows.append({"subset": task.name, "metric": "macro accuracy (symmetric dropped)", "value": filtered,
                     "items": len(task),
                     "definition": f"mean over {int(per['kept'].sum())} relations, ARO's symmetric relations dropped "
                                   f"(ARO's replication notebook); {s.ties}"})
    except ValueError:
        pass  # every relation present is symmetric
    return [*rows, _micro_row(s)]


def aro_attribution_rows(s: Scored) -> list[dict]:
    """ARO's VG-Attribution: macro accuracy over attribute pairs with ≥ ARO_VGA_MIN_COUNT items (ARO's filter; over
    every pair, said so, when none has that many), then micro accuracy over items."""
    task, credit = s.task, s.credit()
    try:
        macro, per = macro_accuracy(credit, task.group, min_count=ARO_VGA_MIN_COUNT)
        what = f"attribute pairs with ≥{ARO_VGA_MIN_COUNT} items (ARO's filter)"
    except ValueError:  # small sets: say so rather than fail
        macro, per = macro_accuracy(credit, task.group)
        what = f"attribute pairs (none has {ARO_VGA_MIN_COUNT} items, so ARO's filter is NOT applied)"
    return [{"subset": task.name, "metric": "macro accuracy", "value": macro, "items": len(task),
             "definition": f"mean over {int(per['kept'].sum())} {what}; {s.ties}"}, _micro_row(s)]


def sugarcrepe_rows(s: Scored) -> list[dict]:
    """SugarCrepe: accuracy per subset (replace_att, swap_obj...), then each family's weighted and unweighted mean
    over its subsets."""
    task, credit = s.task, s.credit()
    rows, acc, counts = [], {}, {}
    for subset in dict.fromkeys(task.subset):
        mask = task.subset == subset
        acc[subset], counts[subset] = float(credit[mask].mean()), int(mask.sum())
        rows.append({"subset": subset, "metric": "accuracy", "value": acc[subset], "items": counts[subset],
                     "definition": s.ties})
    for family, row in sugarcrepe_summary(acc, counts).iterrows():
        for how in ("weighted", "unweighted"):
            rows.append({"subset": family, "metric": f"{how} mean", "value": row[how], "items": row["items"],
                         "definition": f"{how} mean of {row['subsets']}"})
    return rows


RowBuilder = Callable[[Scored], list[dict]]
#: One row builder per metric family, keyed by ``ChoiceTask.metric``.
ROW_BUILDERS: dict[str, RowBuilder] = {
    "accuracy": accuracy_rows,
    "binding": binding_rows,
    "aro": aro_relation_rows,
    "sugarcrepe": sugarcrepe_rows,
}
#: Tasks of a family that their benchmark scores its own way, by (metric, task name): ARO averages VG-Attribution
#: over attribute pairs with at least ARO_VGA_MIN_COUNT items, and has no symmetric relations to drop there.
TASK_ROW_BUILDERS: dict[tuple[str, str], RowBuilder] = {("aro", "vg_attribution"): aro_attribution_rows}


def row_builder(task: ChoiceTask) -> RowBuilder:
    """The row builder for ``task``: its own if :data:`TASK_ROW_BUILDERS` has one, else its metric family's."""
    if task.metric not in ROW_BUILDERS:
        raise ValueError(f"task {task.name!r}: unknown metric {task.metric!r}; the metrics known are "
                         f"{', '.join(map(repr, ROW_BUILDERS))}")
    return TASK_ROW_BUILDERS.get((task.metric, task.name), ROW_BUILDERS[task.metric])


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
    build = row_builder(task) if isinstance(task, ChoiceTask) else None  # an unknown metric fails before encoding
    emb = encode_task(encoder, task, store=store, progress=progress)
    for label, labclip_map in maps.items():
        if labclip_map is not None and labclip_map.dim != emb.texts.shape[1]:
            raise ValueError(f"map {label!r}: A is {labclip_map.dim}×{labclip_map.dim} but {encoder.name} embeds "
                             f"in D={emb.texts.shape[1]}")
    frames = []
    for label, labclip_map in maps.items():
        if isinstance(task, ChoiceTask):
            rows = build(score_choices(emb, task, labclip_map))
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
