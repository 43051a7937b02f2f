"""Benchmarks: loaders for the paper's evaluation sets, exact metrics, downloads and an evaluation runner.

>>> task = load_benchmark("sugarcrepe", profile.data_dir, profile_name=profile.name)
>>> table = evaluate(encoder, task, {"CLIP": None, "LABCLIP": fit.map})   # labclip_utils.evaluation

Every loader returns a :class:`~labclip_utils.tasks.ChoiceTask` or :class:`~labclip_utils.tasks.RetrievalTask`;
:data:`BENCHMARKS` lists them by name with the dataset folder each reads and the paper's reference.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from labclip_utils.benchmarks.aro import load_order, load_vg_attribution, load_vg_relation
from labclip_utils.benchmarks.coco import coco_training_pairs, load_coco_retrieval
from labclip_utils.benchmarks.downloads import DATASETS, fetch_dataset
from labclip_utils.benchmarks.perturbations import (
    LexiconTagger,
    SpacyTagger,
    Tagger,
    ensure_sentence_splitter,
    scene_tagger,
)
from labclip_utils.benchmarks.scenes import load_binding
from labclip_utils.benchmarks.sugarcrepe import load_sugarcrepe
from labclip_utils.io.downloads import ManualDownloadRequired
from labclip_utils.tasks import Task


@dataclass(frozen=True)
class BenchmarkSpec:
    """A benchmark: its title, the dataset folder it reads, how to load it, and where it comes from."""

    name: str
    title: str
    dataset: str
    load: Callable[[Path, Tagger, str], Task]
    reference: str
    #: The experiment (a row of :data:`labclip_utils.book.protocol.EXPERIMENTS`) its headline number belongs to.
    experiment: str


def spar_folder(root: Path) -> Path:
    """PUG:SPAR's folder under its dataset folder: ``PUG_SPAR/`` as the official archive unpacks, else the folder."""
    return root / "PUG_SPAR" if (root / "PUG_SPAR").is_dir() else root


BENCHMARKS: dict[str, BenchmarkSpec] = {spec.name: spec for spec in (
    BenchmarkSpec("clevr", "CLEVR swap test", "clevr", lambda r, t, s: load_binding(r, "clevr", split_kind=s),
                  "johnson2017clevr", "clevr"),
    BenchmarkSpec("pug_spar", "PUG:SPAR swap test", "pug_spar",
                  lambda r, t, s: load_binding(spar_folder(r), "pug_spar", split_kind=s), "bordes2023pug", "pug_spar"),
    BenchmarkSpec("pug_spare", "PUG:SPARE swap test", "pug_spare",
                  lambda r, t, s: load_binding(r, "pug_spare", split_kind=s), "koishigarina2025labclip", "pug_spare"),
    BenchmarkSpec("coco_retrieval", "COCO Karpathy test retrieval", "coco", lambda r, t, s: load_coco_retrieval(r),
                  "lin2014coco", "coco_retrieval"),
    BenchmarkSpec("vg_relation", "ARO VG-Relation", "aro", lambda r, t, s: load_vg_relation(r), "yuksekgonul2023aro",
                  "aro_vgr"),
    BenchmarkSpec("vg_attribution", "ARO VG-Attribution", "aro", lambda r, t, s: load_vg_attribution(r),
                  "yuksekgonul2023aro", "aro_vga"),
    BenchmarkSpec("coco_order", "ARO COCO-Order", "coco", lambda r, t, s: load_order(r, "coco_order", t),
                  "yuksekgonul2023aro", "aro_order"),
    BenchmarkSpec("flickr30k_order", "ARO Flickr30k-Order", "flickr30k",
                  lambda r, t, s: load_order(r, "flickr30k_order", t), "yuksekgonul2023aro", "aro_order"),
    BenchmarkSpec("sugarcrepe", "SugarCrepe", "sugarcrepe", lambda r, t, s: load_sugarcrepe(r), "hsieh2023sugarcrepe",
                  "sugarcrepe"),
)}
#: The benchmarks whose LABCLIP row uses an A fitted on the benchmark's own training split (one A per dataset).
SYNTHETIC = ("clevr", "pug_spar", "pug_spare")


def default_tagger(profile_name: str, data_root: str | Path | None = None) -> Tagger:
    """spaCy in the paper profile (as ARO and LABCLIP; NLTK's sentence splitter is fetched too when missing, so
    that ARO's word orders tokenise as ARO's do); the scene lexicon offline."""
    if profile_name != "paper":
        return scene_tagger()
    if data_root is not None:
        ensure_sentence_splitter(data_root)
    return SpacyTagger(data_root=data_root)


def load_benchmark(name: str, data_root: str | Path, *, profile_name: str = "offline", tagger: Tagger | None = None,
                   download: bool = False, split_kind: str | None = None, progress: bool = True) -> Task:
    """Load benchmark ``name`` from ``data_root/<dataset>`` (a chapter passes its profile's ``data_dir``, or the
    folder of the offline analogues, and its ``profile.name``: the paper profile tags captions with spaCy and splits
    CLEVR and PUG the paper's way).

    With ``download=True`` the dataset is first fetched from its official source or the mirror (paper profile;
    large). ``split_kind`` splits CLEVR and PUG the paper's way (``"paper"``, the paper profile's default) or the
    book's (``"compositional"``, the offline default).
    """
    if name not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {name!r}; choose from {sorted(BENCHMARKS)}")
    spec = BENCHMARKS[name]
    root = Path(data_root)
    folder = root / spec.dataset
    if download:
        fetch_dataset(spec.dataset, folder, progress=progress)
    if not folder.exists():
        raise FileNotFoundError(f"{folder}: no {spec.title} data here (pass download=True)")
    split_kind = split_kind or ("paper" if profile_name == "paper" else "compositional")
    return spec.load(folder, tagger or default_tagger(profile_name, root), split_kind)


__all__ = ["BENCHMARKS", "BenchmarkSpec", "DATASETS", "LexiconTagger", "ManualDownloadRequired", "SpacyTagger",
           "Tagger", "coco_training_pairs", "default_tagger", "fetch_dataset", "load_benchmark", "scene_tagger",
           "spar_folder"]
