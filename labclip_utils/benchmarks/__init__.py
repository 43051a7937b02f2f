"""Benchmarks: loaders for the paper's evaluation sets, exact metrics, downloads and an evaluation runner.

>>> task = load_benchmark("sugarcrepe")                  # from the profile's data folder
>>> table = evaluate(encoder, task, {"CLIP": None, "LABCLIP": labclip})

Every loader returns a :class:`ChoiceTask` or a :class:`RetrievalTask`; :data:`BENCHMARKS` lists them by name with
the dataset folder each reads and the paper's reference.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from labclip_utils.benchmarks.aro import load_order, load_vg_attribution, load_vg_relation
from labclip_utils.benchmarks.base import BenchmarkFormatError, ChoiceTask, ImageRef, RetrievalTask, Task
from labclip_utils.benchmarks.coco import coco_training_pairs, load_coco_retrieval
from labclip_utils.benchmarks.downloads import DATASETS, ManualDownloadRequired, fetch_dataset
from labclip_utils.benchmarks.runner import encode_task, evaluate, save_results
from labclip_utils.benchmarks.scenes import load_binding
from labclip_utils.benchmarks.sugarcrepe import load_sugarcrepe
from labclip_utils.benchmarks.text import LexiconTagger, SpacyTagger, Tagger, scene_tagger


@dataclass(frozen=True)
class BenchmarkSpec:
    """A benchmark: its title, the dataset folder it reads, how to load it, and where it comes from."""

    name: str
    title: str
    dataset: str
    load: Callable[[Path, Tagger], Task]
    reference: str


BENCHMARKS: dict[str, BenchmarkSpec] = {spec.name: spec for spec in (
    BenchmarkSpec("clevr", "CLEVR-style swap test", "clevr", lambda r, t: load_binding(r, "clevr"), "johnson2017clevr"),
    BenchmarkSpec("pug_spar", "PUG:SPAR swap test", "pug_spar",
                  lambda r, t: load_binding(r / "PUG_SPAR" if (r / "PUG_SPAR").is_dir() else r, "pug_spar"),
                  "bordes2023pug"),
    BenchmarkSpec("pug_spare", "PUG:SPARE swap test", "pug_spare", lambda r, t: load_binding(r, "pug_spare"),
                  "koishigarina2025labclip"),
    BenchmarkSpec("coco_retrieval", "COCO Karpathy test retrieval", "coco", lambda r, t: load_coco_retrieval(r),
                  "lin2014coco"),
    BenchmarkSpec("vg_relation", "ARO VG-Relation", "aro", lambda r, t: load_vg_relation(r), "yuksekgonul2023aro"),
    BenchmarkSpec("vg_attribution", "ARO VG-Attribution", "aro", lambda r, t: load_vg_attribution(r),
                  "yuksekgonul2023aro"),
    BenchmarkSpec("coco_order", "ARO COCO-Order", "coco", lambda r, t: load_order(r, "coco_order", t),
                  "yuksekgonul2023aro"),
    BenchmarkSpec("flickr30k_order", "ARO Flickr30k-Order", "flickr30k",
                  lambda r, t: load_order(r, "flickr30k_order", t), "yuksekgonul2023aro"),
    BenchmarkSpec("sugarcrepe", "SugarCrepe", "sugarcrepe", lambda r, t: load_sugarcrepe(r), "hsieh2023sugarcrepe"),
)}


def register_benchmark(spec: BenchmarkSpec) -> None:
    """Add (or replace) a benchmark in :data:`BENCHMARKS`."""
    BENCHMARKS[spec.name] = spec


#: How many 2-object scenes ``load_benchmark("clevr", download=True)`` generates (about 10% are held-out test
#: combinations, the swap test's items).
CLEVR_GENERATED = 10_000


def default_tagger(profile_name: str) -> Tagger:
    """spaCy in the paper profile (as ARO and LABCLIP); the scene lexicon offline."""
    return SpacyTagger() if profile_name == "paper" else scene_tagger()


def load_benchmark(name: str, data_root: str | Path | None = None, *, tagger: Tagger | None = None,
                   download: bool = False, progress: bool = True) -> Task:
    """Load benchmark ``name`` from ``data_root/<dataset>`` (default: the profile's data folder).

    With ``download=True`` the dataset is first fetched from its official source (paper profile only; large);
    the ``clevr`` set is generated instead (the authors' Blender renders are not published), at the profile's
    image size.
    """
    from labclip_utils.profile import current_profile

    if name not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {name!r}; choose from {sorted(BENCHMARKS)}")
    spec = BENCHMARKS[name]
    profile = current_profile()
    root = Path(data_root) if data_root is not None else profile.data_dir
    folder = root / spec.dataset
    if download and spec.dataset in DATASETS:
        fetch_dataset(spec.dataset, folder, progress=progress)
    elif download and spec.dataset == "clevr" and not folder.exists():
        from labclip_utils.benchmarks.offline import write_binding

        write_binding(folder, "clevr", CLEVR_GENERATED, seed=60_000, image_size=profile.image_size)
    if not folder.exists():
        hint = "pass download=True" if spec.dataset in DATASETS else "generate it first"
        raise FileNotFoundError(f"{folder}: no {spec.title} data here ({hint})")
    return spec.load(folder, tagger or default_tagger(profile.name))


__all__ = ["BENCHMARKS", "BenchmarkFormatError", "BenchmarkSpec", "ChoiceTask", "DATASETS", "ImageRef",
           "LexiconTagger", "ManualDownloadRequired", "RetrievalTask", "SpacyTagger", "Task", "coco_training_pairs",
           "default_tagger", "encode_task", "evaluate", "fetch_dataset", "load_benchmark", "register_benchmark",
           "save_results", "scene_tagger"]
