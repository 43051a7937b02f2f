"""Run every benchmark a profile can reach, for plain CLIP and LABCLIP, in one call (the benchmark chapter).

Offline, the data are the analogues of :mod:`labclip_utils.benchmarks.offline`; in the paper profile, the real
datasets (downloaded on request). Items whose captions use words the encoder cannot read (the miniature knows
only scene words) are left out and counted, never silently.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from labclip_utils.benchmarks import (
    BENCHMARKS,
    SYNTHETIC,
    ManualDownloadRequired,
    default_tagger,
    fetch_dataset,
    load_benchmark,
    spar_folder,
)
from labclip_utils.benchmarks.scenes import binding_task, load_binding_scenes
from labclip_utils.evaluation import evaluate
from labclip_utils.labclip import LabclipConfig, LabclipMap, fit_on_dataset
from labclip_utils.models.encoder import Encoder
from labclip_utils.paper import paper_number
from labclip_utils.progress import tqdm
from labclip_utils.store import EmbeddingStore
from labclip_utils.tasks import ChoiceTask, Task


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


def subsample(task: Task, fraction: float) -> Task:
    """The first ``fraction`` of a choice task's items (at least 20), for a rehearsal at a small scale."""
    if fraction >= 1 or not isinstance(task, ChoiceTask):
        return task
    return task.head(max(20, int(len(task) * fraction)))


def synthetic_config(name: str, epochs: int = 50) -> LabclipConfig:
    """The paper's recipe per synthetic dataset: batch 128 on CLEVR, 512 on PUG (lr 0.01, 50 epochs)."""
    return LabclipConfig(batch_size=128 if name == "clevr" else 512, epochs=epochs)


def run_suite(encoders: Encoder | Mapping[str, Encoder], maps: Mapping[str, LabclipMap | None],
              data_root: str | Path, *, names: Sequence[str] | None = None, profile_name: str = "offline",
              real_a: str = "coco", download: bool = False, split_kind: str | None = None, fraction: float = 1.0,
              store: EmbeddingStore | None = None, progress: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Evaluate every benchmark in ``names`` (default: all registered) under each map.

    ``encoders`` is one encoder, or ``{"synthetic": ..., "real": ...}`` (the paper's backbones differ). The real
    benchmarks use ``maps`` as given, whose A comes from ``real_a`` (``"coco"``: the paper's protocol). For CLEVR,
    PUG:SPAR and PUG:SPARE every model with a map gets instead an A fitted on *that* dataset's training split, as
    the paper does. Returns ``(results, coverage)``: the tidy result table (with the experiment each row belongs to
    and the data its A was fitted on), and per benchmark how many items ran and how many were left out (and why).
    """
    if isinstance(encoders, Encoder):
        encoders = {"synthetic": encoders, "real": encoders}
    root = Path(data_root)
    tagger = default_tagger(profile_name, root)
    split_kind = split_kind or ("paper" if profile_name == "paper" else "compositional")
    results, coverage = [], []
    for name in tqdm(list(names or BENCHMARKS), desc="benchmarks", disable=not progress):
        spec = BENCHMARKS[name]
        row = {"benchmark": name, "title": spec.title, "left out (vocabulary)": 0, "note": ""}
        try:
            if download:
                fetch_dataset(spec.dataset, root / spec.dataset, progress=progress)
            if name in SYNTHETIC:
                encoder = encoders["synthetic"]
                folder = root / spec.dataset
                ds = load_binding_scenes(spar_folder(folder) if name == "pug_spar" else folder, split_kind)
                task = binding_task(ds, name, "test")
                epochs = max(1, round(50 * min(1.0, fraction)))
                fit = fit_on_dataset(encoder, ds, synthetic_config(name, epochs), store=store, progress=progress)
                task_maps = {label: (None if m is None else fit.map) for label, m in maps.items()}
                origin, experiment = f"{name} training split", spec.experiment
            else:
                encoder = encoders["real"]
                task = load_benchmark(name, root, profile_name=profile_name, tagger=tagger, split_kind=split_kind,
                                      progress=progress)
                task_maps = dict(maps)
                origin = "COCO (Karpathy train)" if real_a == "coco" else real_a
                experiment = spec.experiment if real_a == "coco" else f"{spec.experiment}, A from {real_a}"
        except ManualDownloadRequired as err:  # e.g. Flickr30k's licence: say so and run the others
            coverage.append({**row, "items run": 0, "images": 0, "note": str(err)})
            continue
        task, dropped = restrict_to_vocabulary(encoder, task)
        row["left out (vocabulary)"] = dropped
        if task is None:
            coverage.append({**row, "items run": 0, "images": 0})
            continue
        task = subsample(task, fraction)
        coverage.append({**row, "items run": len(task), "images": len(task.images)})
        table = evaluate(encoder, task, task_maps, store=store, progress=progress)
        table["benchmark"] = name
        table["A fitted on"] = [origin if task_maps.get(m) is not None else "—" for m in table["model"]]
        table["experiment"] = experiment
        results.append(table)
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
    ("coco_retrieval", "coco_test", "text→image R@1"): "COCO text→image R@1",
}
#: The headlines of the synthetic swap tests (each with its own A, comparable with the paper's in both profiles).
SYNTHETIC_HEADLINES = ("CLEVR swap test", "PUG:SPAR swap test", "PUG:SPARE swap test")
#: Where each headline sits in :data:`labclip_utils.paper.PAPER_NUMBERS`.
PAPER_KEYS: dict[str, dict[str, str]] = {
    "CLEVR swap test": dict(setting="CLEVR", metric="swap accuracy (test split)"),
    "PUG:SPAR swap test": dict(setting="PUG:SPAR", metric="swap accuracy (test split)"),
    "PUG:SPARE swap test": dict(setting="PUG:SPARE", metric="swap accuracy (test split)"),
    "ARO VG-Attribution (macro)": dict(setting="ARO VG-Attribution", metric="macro accuracy"),
    "ARO VG-Relation (macro)": dict(setting="ARO VG-Relation", metric="macro accuracy"),
    "SugarCrepe replace (unweighted)": dict(setting="SugarCrepe replace", metric="unweighted mean"),
    "SugarCrepe swap (unweighted)": dict(setting="SugarCrepe swap", metric="unweighted mean"),
    "COCO text→image R@1": dict(setting="COCO Karpathy 5k test", metric="text→image R@1"),
}


def headline_table(results: pd.DataFrame, with_paper: bool = True) -> pd.DataFrame:
    """One row per benchmark headline, one column per model, the experiment, and the paper's values (labelled)
    beside them only where the row was measured under the paper's protocol for that experiment."""
    keyed = results.set_index(["benchmark", "subset", "metric", "model"])["value"].sort_index()
    experiments = results.drop_duplicates("benchmark").set_index("benchmark")["experiment"] \
        if "experiment" in results else pd.Series(dtype=object)
    rows = {}
    for key, label in HEADLINES.items():
        if key in keyed.index.droplevel("model"):
            rows[label] = {**keyed.loc[key].to_dict(), "experiment": experiments.get(key[0], "")}
    table = pd.DataFrame(rows).T.rename_axis("benchmark")
    if with_paper:
        for model in ("CLIP", "LABCLIP"):
            values = []
            for label, experiment in zip(table.index, table["experiment"], strict=True):
                number = None
                if label in PAPER_KEYS:
                    paper = paper_number(**PAPER_KEYS[label], model=model)
                    number = paper.value if paper.protocol == experiment else None
                values.append(number)
            table[f"paper: {model}"] = values
    return table
