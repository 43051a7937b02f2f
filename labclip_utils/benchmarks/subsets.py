"""Class size (``LABCLIP_SIZE=class``): the real benchmarks on fixed subsets whose images are fetched one by one.

A class has about 90 minutes and Colab's disk; the full protocol downloads tens of GB. At class size chapter 7 runs:

- **COCO retrieval and COCO-Order** on :data:`CLASS_ITEMS` ``["coco_test_images"]`` images of the Karpathy test split
  (their five captions each), and **SugarCrepe** on :data:`CLASS_ITEMS` ``["sugarcrepe_items"]`` items, shared among
  its seven subsets in proportion to their sizes. COCO's images have official per-image addresses
  (``http://images.cocodataset.org/<folder>/<file>``, folder and file as the annotation files name them), so only the
  subset's images are fetched (:func:`~labclip_utils.io.downloads.fetch_files`: in parallel, resumable, each checked
  against the SHA-256 recorded on first download or the mirror's ``SHA256SUMS``), not the 6.2 GB ``val2014.zip`` and
  the 0.8 GB ``val2017.zip``.
- **ARO VG-Relation and VG-Attribution** in full: their images come only as one zip of about 1 GB on Google Drive
  (ARO does not document its image names as Visual Genome ids, so Visual Genome's per-image addresses cannot be
  relied on). That archive is unavoidable, and it fits the budget.
- **A** for the real benchmarks: the matrix the authors released for ViT-B/32 (1 MB, fitted on COCO as the paper's
  protocol says) instead of fitting one on the 113,287 Karpathy training images (a 13 GB archive).

Not at class size, and why: PUG:SPAR is one 16 GB ``tar.gz`` with no per-image source (gzip allows no random access);
CLEVR's and PUG:SPARE's renders are Google Drive zips whose sizes are not published, so no budget can promise them;
Flickr30k's images need a manual request. The synthetic swap tests run on generated scenes in chapters 2 to 6.

**The subset rule** (the same items for every class, whatever the annotation file's order): an item's key is its image
file name (COCO) or ``<subset>:<item index>`` (SugarCrepe); the items kept are the ``n`` with the smallest SHA-256 of
``"labclip-class:<key>"``, listed in the file's order.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

import torch

from labclip_utils.benchmarks.base import inside, read_json, require
from labclip_utils.benchmarks.downloads import COCO_IMAGES, DATASETS, fetch_dataset
from labclip_utils.benchmarks.sugarcrepe import SUBSETS
from labclip_utils.io.downloads import RemoteFile, fetch, fetch_files
from labclip_utils.io.files import atomic_write
from labclip_utils.labclip import LabclipMap
from labclip_utils.tasks import BenchmarkFormatError

#: How many items chapter 7 runs at class size.
CLASS_ITEMS = {"coco_test_images": 1000, "sugarcrepe_items": 1000}
#: The benchmarks chapter 7 runs at class size (read from :func:`class_data`'s folder).
CLASS_BENCHMARKS = ("coco_retrieval", "coco_order", "vg_relation", "vg_attribution", "sugarcrepe")
#: Datasets used whole at class size (linked into the class folder).
WHOLE = ("aro",)
SALT = "labclip-class:"
#: The backbone the authors released a COCO A for (``labclip_coco_neg_B32.pt``).
RELEASED_A_MODEL = "ViT-B-32"


def pick(keys: Sequence[str], n: int) -> list[int]:
    """Indices of the ``n`` keys with the smallest SHA-256 of ``"labclip-class:<key>"``, in the keys' order (all of
    them when there are at most ``n``). Independent of the file's order and of any library's random generator."""
    if len(set(keys)) != len(keys):
        raise ValueError("subset keys must be unique")
    ranked = sorted(range(len(keys)), key=lambda i: hashlib.sha256((SALT + keys[i]).encode()).hexdigest())
    return sorted(ranked[:n])


def _remote(dataset: str, filename: str) -> RemoteFile:
    return next(f for f in DATASETS[dataset] if f.filename == filename)


def _write_json(path: Path, content: object) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(content)))  # makes the folder too


def coco_test_subset(data_root: Path, folder: Path, n: int, *, workers: int = 8, progress: bool = True) -> Path:
    """``folder/coco_karpathy_test.json`` with the subset's records, and their images fetched one by one."""
    source = fetch(_remote("coco", "coco_karpathy_test.json"), data_root / "coco", progress, dataset="coco")
    records = read_json(source)
    if not isinstance(records, list):
        raise BenchmarkFormatError(f"{source}: expected a list of records, one per image")
    for i, rec in enumerate(records):
        require(rec, ("image", "caption"), source, i)
    kept = [records[i] for i in pick([str(r["image"]) for r in records], n)]
    for i, rec in enumerate(kept):
        inside(folder, rec["image"], source, i)  # refuses absolute paths and ".." before anything is fetched
    fetch_files("coco", [(rec["image"], f"{COCO_IMAGES}/{rec['image']}") for rec in kept], folder,
                workers=workers, progress=progress)
    _write_json(folder / "coco_karpathy_test.json", kept)
    return folder


def sugarcrepe_subset(data_root: Path, folder: Path, n: int, *, workers: int = 8, progress: bool = True) -> Path:
    """The seven SugarCrepe files with ``n`` items in all (each subset's share in proportion to its size), and their
    val2017 images fetched one by one."""
    contents = {}
    for name in SUBSETS:
        path = fetch(_remote("sugarcrepe", f"{name}.json"), data_root / "sugarcrepe", progress, dataset="sugarcrepe")
        content = read_json(path)
        if not isinstance(content, dict):
            raise BenchmarkFormatError(f"{path}: expected an object keyed by item index")
        for key, record in content.items():
            require(record, ("filename",), path, key)
        contents[name] = (path, content)
    total = sum(len(c) for _, c in contents.values())
    images: dict[str, str] = {}
    for name, (path, content) in contents.items():
        keys = list(content)
        share = round(n * len(keys) / total) if total > n else len(keys)
        kept = {keys[i]: content[keys[i]] for i in pick([f"{name}:{k}" for k in keys], share)}
        for key, record in kept.items():
            relative = f"val2017/{record['filename']}"
            inside(folder, relative, path, key)
            images[relative] = f"{COCO_IMAGES}/{relative}"
        _write_json(folder / f"{name}.json", kept)
    fetch_files("sugarcrepe", sorted(images.items()), folder, workers=workers, progress=progress)
    return folder


def class_data(data_root: str | Path, *, workers: int = 8, progress: bool = True) -> Path:
    """Fetch what chapter 7 reads at class size and return its folder, ``<data_root>/class``: the COCO and
    SugarCrepe subsets (annotation files, then only their images) and ARO whole (linked from ``<data_root>/aro``).
    Read it with :data:`CLASS_BENCHMARKS` and ``download=False``."""
    data_root = Path(data_root)
    root = data_root / "class"
    coco_test_subset(data_root, root / "coco", CLASS_ITEMS["coco_test_images"], workers=workers, progress=progress)
    sugarcrepe_subset(data_root, root / "sugarcrepe", CLASS_ITEMS["sugarcrepe_items"], workers=workers,
                      progress=progress)
    for name in WHOLE:
        target = fetch_dataset(name, data_root / name, progress=progress)
        link = root / name
        if not link.exists():
            tmp = link.with_name(f".{name}.{os.getpid()}.link")
            tmp.unlink(missing_ok=True)
            tmp.symlink_to(os.path.relpath(target, root), target_is_directory=True)
            os.replace(tmp, link)
    return root


def released_coco_map(data_root: str | Path, *, progress: bool = True) -> LabclipMap:
    """The authors' released COCO A for ViT-B/32 (``labclip_coco_neg_B32.pt``, checksummed, loaded with
    ``weights_only=True``) as a :class:`~labclip_utils.labclip.LabclipMap`."""
    folder = fetch_dataset("labclip_released", Path(data_root) / "labclip_released", progress=progress)
    path = folder / "labclip_coco_neg_B32.pt"
    state = torch.load(path, map_location="cpu", weights_only=True)
    weight = state.get("linear.weight") if isinstance(state, dict) else None
    if weight is None or weight.ndim != 2 or weight.shape[0] != weight.shape[1]:
        raise BenchmarkFormatError(f"{path}: expected a state_dict with a square 'linear.weight'")
    released = LabclipMap(weight.shape[0])
    with torch.no_grad():
        released.linear.weight.copy_(weight.float())
        if "t" in state:
            released.t.copy_(state["t"].float().reshape(()))
    return released.eval()
