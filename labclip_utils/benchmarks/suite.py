"""Run every benchmark a profile can reach, for plain CLIP and LABCLIP, in one call (the benchmark chapter).

Offline, the data are the analogues of :mod:`labclip_utils.benchmarks.offline`; in the paper profile, the real
datasets (downloaded on request). Items whose captions use words the encoder cannot read (the miniature knows
only scene words) are left out and counted, never silently.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from labclip_utils.benchmarks import (
    BENCHMARKS,
    ChoiceTask,
    ManualDownloadRequired,
    Task,
    default_tagger,
    load_benchmark,
)
from labclip_utils.benchmarks.runner import evaluate
from labclip_utils.labclip import Labclip
from labclip_utils.models.encoder import Encoder
from labclip_utils.store import EmbeddingStore


def readable(encoder: Encoder, texts: Sequence[str]) -> dict[str, bool]:
    """For each distinct text: can the encoder's tokenizer read it? (open_clip reads anything; the miniature
    refuses words outside its vocabulary.)"""
    out = {}
    for text in dict.fromkeys(texts):
        try:
            encoder.tokenize([text])
            out[text] = True
        except ValueError:
            out[text] = False
    return out


def restrict_to_vocabulary(encoder: Encoder, task: Task) -> tuple[Task | None, int]:
    """The items the encoder can read, and how many were left out (``None`` when nothing is left)."""
    texts = task.texts
    ok = readable(encoder, texts)
    if all(ok.values()):
        return task, 0
    if not isinstance(task, ChoiceTask):
        raise ValueError(f"{task.name}: the encoder cannot read some captions of a retrieval task")
    keep = [all(ok[t] for t in opts) for opts in task.options]
    dropped = len(keep) - sum(keep)
    return (task.take(keep) if any(keep) else None), dropped


def run_suite(encoder: Encoder, maps: Mapping[str, Labclip | None], data_root: str | Path, *,
              names: Sequence[str] | None = None, profile_name: str = "offline", download: bool = False,
              store: EmbeddingStore | None = None, progress: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Evaluate every benchmark in ``names`` (default: all registered) under each map.

    Returns ``(results, coverage)``: the tidy result table, and per benchmark how many items ran and how many
    were left out (and why).
    """
    tagger = default_tagger(profile_name)
    results, coverage = [], []
    for name in tqdm(list(names or BENCHMARKS), desc="benchmarks", disable=not progress):
        row = {"benchmark": name, "title": BENCHMARKS[name].title, "left out (vocabulary)": 0, "note": ""}
        try:
            task = load_benchmark(name, data_root, tagger=tagger, download=download, progress=progress)
        except ManualDownloadRequired as err:  # e.g. Flickr30k's licence: say so and run the others
            coverage.append({**row, "items run": 0, "images": 0, "note": str(err)})
            continue
        task, dropped = restrict_to_vocabulary(encoder, task)
        row["left out (vocabulary)"] = dropped
        if task is None:
            coverage.append({**row, "items run": 0, "images": 0})
            continue
        coverage.append({**row, "items run": len(task), "images": len(task.images)})
        results.append(evaluate(encoder, task, maps, store=store, progress=progress))
    return pd.concat(results, ignore_index=True), pd.DataFrame(coverage).set_index("benchmark")


#: The headline number of each benchmark: (benchmark, subset, metric) → label.
HEADLINES: dict[tuple[str, str, str], str] = {
    ("clevr", "clevr", "accuracy"): "CLEVR swap test",
    ("pug_spar", "pug_spar", "accuracy"): "PUG:SPAR swap test",
    ("pug_spare", "pug_spare", "accuracy"): "PUG:SPARE swap test",
    ("vg_attribution", "vg_attribution", "macro accuracy"): "ARO VG-Attribution (macro)",
    ("vg_relation", "vg_relation", "macro accuracy"): "ARO VG-Relation (macro)",
    ("coco_order", "coco_order", "accuracy"): "ARO COCO-Order",
    ("flickr30k_order", "flickr30k_order", "accuracy"): "ARO Flickr30k-Order",
    ("sugarcrepe", "replace", "unweighted mean"): "SugarCrepe replace (unweighted)",
    ("sugarcrepe", "swap", "unweighted mean"): "SugarCrepe swap (unweighted)",
    ("sugarcrepe", "add", "unweighted mean"): "SugarCrepe add (unweighted)",
    ("coco_test", "coco_test", "text→image R@1"): "COCO text→image R@1",
}
#: Where each headline sits in :data:`labclip_utils.paper.PAPER_NUMBERS` (setting, metric).
PAPER_KEYS: dict[str, tuple[str, str]] = {
    "CLEVR swap test": ("CLEVR", "swap accuracy (test split)"),
    "PUG:SPAR swap test": ("PUG:SPAR", "swap accuracy (test split)"),
    "PUG:SPARE swap test": ("PUG:SPARE", "swap accuracy (test split)"),
    "ARO VG-Attribution (macro)": ("ARO VG-Attribution", "macro accuracy"),
    "ARO VG-Relation (macro)": ("ARO VG-Relation", "macro accuracy"),
    "SugarCrepe replace (unweighted)": ("SugarCrepe replace", "unweighted mean"),
    "SugarCrepe swap (unweighted)": ("SugarCrepe swap", "unweighted mean"),
    "COCO text→image R@1": ("COCO Karpathy 5k test", "text→image R@1"),
}


def headline_table(results: pd.DataFrame, with_paper: bool = True) -> pd.DataFrame:
    """One row per benchmark headline, one column per model; the paper's values (labelled) beside them."""
    from labclip_utils.paper import PAPER_NUMBERS

    keyed = results.set_index(["benchmark", "subset", "metric", "model"])["value"].sort_index()
    rows = {}
    for key, label in HEADLINES.items():
        if key in keyed.index.droplevel("model"):
            rows[label] = keyed.loc[key].to_dict()
    table = pd.DataFrame(rows).T.rename_axis("benchmark")
    if with_paper:
        paper = {(p.setting, p.metric, p.model): p.value for p in PAPER_NUMBERS}
        for model in ("CLIP", "LABCLIP"):
            table[f"paper: {model}"] = [paper.get((*PAPER_KEYS[label], model)) if label in PAPER_KEYS else None
                                        for label in table.index]
    return table
