"""A rehearsal of the paper profile on this machine: every chapter, the real code paths, no internet.

    python tools/rehearse.py            # make rehearse: mirror + stand-in checkpoints, every chapter, the site
    python tools/rehearse.py mirror     # only build the rehearsal mirror (in _rehearsal/mirror)
    python tools/rehearse.py report     # the class-size table again from the last rehearsal's counts (--record)

Pretrained weights and the paper's datasets cannot be downloaded here, so the rehearsal supplies stand-ins that go
through exactly the code a Colab student's run goes through:

- **a mirror** of every dataset the paper profile downloads, written from generated scenes in each dataset's real
  archive format and layout (COCO's zips and annotation files, the Karpathy JSONs, SugarCrepe's seven JSONs, ARO's
  JSONs and image zip, the CLEVR renders' zip, the PUG archives, spaCy's model tarball, NLTK's ``punkt_tab``),
  with a ``SHA256SUMS`` manifest, served over HTTP on 127.0.0.1 with byte ranges
  (:mod:`labclip_utils.io.mirror`). The chapters see it only through ``LABCLIP_MIRROR``;
- **checkpoint files** of a random-init open_clip ``ViT-B-32``, loaded through open_clip's own
  ``pretrained=<file>`` path (``LABCLIP_PRETRAINED`` / ``LABCLIP_SYNTHETIC_PRETRAINED``). The file name says
  "random-init", and the chapters say so when they run on it: every number of a rehearsal is meaningless;
- **a small fraction** (``LABCLIP_FRACTION``), so that the whole book runs on 2 CPU cores;
- **one chapter run again in fp16** (:data:`FP16_CHAPTER`), the precision ``LABCLIP_PRECISION=auto`` picks on a GPU;
- **the class size** (``LABCLIP_SIZE=class``): the chapters it changes (:data:`CLASS_CHAPTERS`) run again with it.

**What each chapter costs.** Every chapter runs as on its own Colab machine (Colab gives every notebook one): its own
data folder and its own cache, so it downloads what it reads and encodes what it uses, nothing shared with another
chapter; the mirror under ``<mirror>/@<chapter>``, where the server counts the bytes and files it served
(:mod:`labclip_utils.io.mirror`); and ``LABCLIP_USAGE_LOG``, into which its encoders, the random-init controls
included, count the images they encode and train on (:mod:`labclip_utils.session`). The last table of the log gives,
per chapter at class size, those measured counts (on the stand-ins, at the rehearsal's fraction), what the same
downloads weigh on the real datasets (:func:`labclip_utils.book.environment.class_downloads_gb`), the image passes
the T4 model of :func:`~labclip_utils.book.environment.paper_workload` predicts at the rehearsal's fraction, and the
T4 estimate at full fraction, scaled up by the measured passes wherever they exceed the model's; the rehearsal
fails when a chapter exceeds :data:`labclip_utils.profile.CLASS_BUDGET`. It is written to
``_rehearsal/reports/class_budget.csv`` (``python tools/rehearse.py report`` recomputes it from the saved counts).

The synthetic experiments use ``ViT-B-32`` too (``LABCLIP_SYNTHETIC_MODEL``): the paper's ViT-L/14 encodes about
2 s per image on a CPU, which no CI budget affords; its loading code is the same. Before any chapter runs, every
dataset is fetched once from the mirror, so that a broken mirror file fails early with an error naming it. The site
is built with ``-W`` into ``_rehearsal/_build/html``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

WORK = ROOT / "_rehearsal"
FRACTION = "0.01"
IMAGE_SIZE = 64
#: The datasets the chapters fetch in the paper profile (``clevr_multi`` is not used by any chapter).
REHEARSED = ("clevr", "pug_spar", "pug_spare", "coco", "coco_train", "aro", "sugarcrepe", "flickr30k",
             "labclip_released", "spacy", "nltk")
#: The chapter executed a second time in fp16 (what ``LABCLIP_PRECISION=auto`` means on a GPU): it encodes images
#: and captions with the synthetic experiments' open_clip model, fits A and scores with it. On a CPU, torch's fp16
#: kernels are several times slower than fp32 ones (ViT-B-32: about 1.5 s per image on one core), so this pass runs
#: the smaller ViT-S-32 (the same open_clip classes and casts); ``tests/test_precision.py`` covers ViT-B-32 itself.
FP16_CHAPTER = "08_playground"
FP16_MODEL = "ViT-S-32"
#: The chapters ``LABCLIP_SIZE=class`` changes (the others run the same at both sizes).
CLASS_CHAPTERS = ("06_labclip", "07_benchmarks")
#: What the mirror served each tag (bytes, files), saved beside the usage logs so that ``report`` can recompute the
#: class-size table without running the chapters again.
SERVED = "served.json"
SPARE_WORLDS = ("Desert", "Island", "MountainRange", "Spaceship")


# -- writing archives -----------------------------------------------------------------------------------------
def zip_folder(zip_path: Path, base: Path, folders: list[str]) -> None:
    """Zip ``base/<folder>`` trees with paths relative to ``base`` (the folder names stay at the top)."""
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_STORED) as z:
        for folder in folders:
            for path in sorted((base / folder).rglob("*")):
                if path.is_file():
                    z.write(path, path.relative_to(base).as_posix())


def tar_folder(tar_path: Path, base: Path, folder: str) -> None:
    tar_path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tar_path, "w:gz") as t:
        t.add(base / folder, arcname=folder)


def _jpeg(array: np.ndarray, path: Path) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, quality=90)


# -- the datasets ---------------------------------------------------------------------------------------------
def write_binding(mirror: Path, tmp: Path, seed: int) -> None:
    """CLEVR (the authors' zip), PUG:SPAR (a tar with a ``PUG_SPAR/`` folder), PUG:SPARE (CSV + world zips)."""
    import pandas as pd

    from labclip_utils.scenes import make_scenes, save_scenes

    clevr = save_scenes(make_scenes(400, "clevr", 2, seed=seed, image_size=IMAGE_SIZE), tmp / "clevr")
    (clevr / "labclip.json").unlink()  # the authors' zip has no book metadata
    zip_folder(mirror / "clevr" / "clevr_2obj.zip", clevr, [p.name for p in clevr.iterdir() if p.is_dir()])
    with zipfile.ZipFile(mirror / "clevr" / "clevr_2obj.zip", "a") as z:
        for path in clevr.glob("*.csv"):
            z.write(path, path.name)

    spar = save_scenes(make_scenes(400, "spar", 2, seed=seed + 1, image_size=IMAGE_SIZE), tmp / "PUG_SPAR")
    (spar / "labclip.json").unlink()
    tar_folder(mirror / "pug_spar" / "PUG_SPAR.tar.gz", tmp, "PUG_SPAR")

    spare = save_scenes(make_scenes(400, "spare", 2, seed=seed + 2, image_size=IMAGE_SIZE), tmp / "spare")
    table = pd.read_csv(spare / "PUG_SPARE.csv", dtype=str, keep_default_na=False)
    worlds_dir = tmp / "spare_worlds"
    for i, row in table.iterrows():
        world = SPARE_WORLDS[i % len(SPARE_WORLDS)]
        table.loc[i, "world_name"] = world
        (worlds_dir / world).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(spare / row["world_name"] / row["filename"], worlds_dir / world / row["filename"])
    (mirror / "pug_spare").mkdir(parents=True, exist_ok=True)
    table.to_csv(mirror / "pug_spare" / "PUG_SPARE.csv", index=False)
    for world in SPARE_WORLDS:
        zip_folder(mirror / "pug_spare" / f"{world}.zip", worlds_dir, [world])


def write_coco(mirror: Path, tmp: Path, seed: int) -> None:
    """COCO 2014 in its real layout: ``train2014.zip``, ``val2014.zip``, ``annotations_trainval2014.zip`` and the
    Karpathy split JSONs (test and val: one record per image; train: one record per caption, restval included)."""
    from labclip_utils.benchmarks.offline import _ORDERS, _text
    from labclip_utils.scenes import make_scenes

    counts = {"train": 60, "restval": 20, "val": 10, "test": 30}
    pool = make_scenes(sum(counts.values()) * 3, "clevr", 3, seed=seed, image_size=IMAGE_SIZE)
    seen, picked = set(), []
    for i in range(len(pool)):
        combo = tuple(sorted(pool.pairs[i]))
        if combo not in seen:
            seen.add(combo)
            picked.append(i)
    picked = picked[: sum(counts.values())]
    images = {"train2014": [], "val2014": []}
    karpathy = {"train": [], "val": [], "test": []}
    start = 0
    for part, n in counts.items():
        for k, i in enumerate(picked[start:start + n]):
            folder = "train2014" if part == "train" else "val2014"
            image_id = 100_000 * (1 + list(counts).index(part)) + k
            name = f"COCO_{folder}_{image_id:012d}.jpg"
            _jpeg(pool.image(i), tmp / "coco" / folder / name)
            captions = [_text(tuple(pool.pairs[i][j] for j in order)) + "." for order in _ORDERS]
            images[folder].append((image_id, name, captions))
            relative = f"{folder}/{name}"
            if part in ("train", "restval"):
                karpathy["train"] += [{"caption": c, "image": relative, "image_id": f"coco_{image_id}"}
                                      for c in captions]
            else:
                karpathy[part].append({"image": relative, "caption": captions, "image_id": image_id})
        start += n
    annotations = tmp / "coco" / "annotations"
    annotations.mkdir(parents=True)
    ann_id = 0
    for folder, rows in images.items():
        anns = []
        for image_id, _, captions in rows:
            for c in captions:
                ann_id += 1
                anns.append({"image_id": image_id, "id": ann_id, "caption": c})
        data = {"info": {"description": "rehearsal stand-in"}, "licenses": [],
                "images": [{"id": image_id, "file_name": name, "width": IMAGE_SIZE, "height": IMAGE_SIZE}
                           for image_id, name, _ in rows], "annotations": anns}
        (annotations / f"captions_{folder}.json").write_text(json.dumps(data))
    for dataset in ("coco", "coco_train"):
        out = mirror / dataset
        out.mkdir(parents=True, exist_ok=True)
        (out / "coco_karpathy_test.json").write_text(json.dumps(karpathy["test"]))
        zip_folder(out / "val2014.zip", tmp / "coco", ["val2014"])
    out = mirror / "coco_train"
    (out / "coco_karpathy_train.json").write_text(json.dumps(karpathy["train"]))
    (out / "coco_karpathy_val.json").write_text(json.dumps(karpathy["val"]))
    zip_folder(out / "train2014.zip", tmp / "coco", ["train2014"])
    zip_folder(out / "annotations_trainval2014.zip", tmp / "coco", ["annotations"])
    shutil.copytree(tmp / "coco" / "val2014", mirror / "coco" / "val2014")  # COCO's per-image addresses (class size)


def write_aro_sugarcrepe_flickr(mirror: Path, tmp: Path, seed: int) -> None:
    """ARO (two JSONs and ``vgr_vga_images.zip`` with ``images/``), SugarCrepe (seven JSONs and ``val2017.zip``),
    and Flickr30k's test JSON (its images are a manual download: the rehearsal checks that path too)."""
    from labclip_utils.benchmarks.offline import write_aro, write_karpathy, write_sugarcrepe

    write_aro(tmp / "aro", 80, 40, seed, IMAGE_SIZE)
    (mirror / "aro").mkdir(parents=True, exist_ok=True)
    for name in ("visual_genome_relation.json", "visual_genome_attribution.json"):
        shutil.copyfile(tmp / "aro" / name, mirror / "aro" / name)
    zip_folder(mirror / "aro" / "vgr_vga_images.zip", tmp / "aro", ["images"])

    write_sugarcrepe(tmp / "sugarcrepe", 120, seed + 1, IMAGE_SIZE)
    (mirror / "sugarcrepe").mkdir(parents=True, exist_ok=True)
    for path in (tmp / "sugarcrepe").glob("*.json"):
        shutil.copyfile(path, mirror / "sugarcrepe" / path.name)
    zip_folder(mirror / "sugarcrepe" / "val2017.zip", tmp / "sugarcrepe", ["val2017"])
    shutil.copytree(tmp / "sugarcrepe" / "val2017", mirror / "sugarcrepe" / "val2017")  # per image (class size)

    write_karpathy(tmp / "flickr30k", "flickr30k", 20, seed + 2, IMAGE_SIZE)
    (mirror / "flickr30k").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(tmp / "flickr30k" / "flickr30k_test.json", mirror / "flickr30k" / "flickr30k_test.json")


def write_tools(mirror: Path, tmp: Path) -> None:
    """Stand-ins for the authors' released A, spaCy's English model and NLTK's ``punkt_tab``."""
    import spacy
    import torch

    from labclip_utils.benchmarks.downloads import _SPACY_MODEL
    from labclip_utils.scenes.world import CLEVR_COLORS, SHAPES

    g = torch.Generator().manual_seed(0)
    released = {"linear.weight": torch.eye(512) + 0.01 * torch.randn(512, 512, generator=g)}
    (mirror / "labclip_released").mkdir(parents=True, exist_ok=True)
    torch.save(released, mirror / "labclip_released" / "labclip_coco_neg_B32.pt")

    # spaCy: a blank English pipeline whose attribute ruler tags the scenes' words (the real model is a trained
    # tagger); packaged as the model's release tarball lays it out
    nlp = spacy.blank("en")
    ruler = nlp.add_pipe("attribute_ruler")
    words = {"JJ": [*CLEVR_COLORS, "large", "small", "left", "right"], "NN": [*SHAPES, "cubes", "spheres"],
             "DT": ["a", "an", "the"], "CC": ["and"], "IN": ["of", "to"], "VBZ": ["is"], ".": ["."]}
    for tag, ws in words.items():
        ruler.add([[{"LOWER": {"IN": ws}}]], {"TAG": tag})
    name, version = _SPACY_MODEL.rsplit("-", 1)
    nlp.meta.update({"name": name.removeprefix("en_"), "version": version,
                     "description": "rehearsal stand-in: a blank pipeline with a word-list tagger"})
    package = tmp / "spacy" / _SPACY_MODEL / name / _SPACY_MODEL
    package.parent.mkdir(parents=True)
    nlp.to_disk(package)
    tar_folder(mirror / "spacy" / f"{_SPACY_MODEL}.tar.gz", tmp / "spacy", _SPACY_MODEL)

    # NLTK: punkt_tab's English parameters (no abbreviations, collocations or sentence starters learned)
    english = tmp / "nltk" / "punkt_tab" / "english"
    english.mkdir(parents=True)
    for file in ("collocations.tab", "sent_starters.txt", "abbrev_types.txt", "ortho_context.tab"):
        (english / file).write_text("")
    zip_folder(mirror / "nltk" / "punkt_tab.zip", tmp / "nltk", ["punkt_tab"])


def mirror_version() -> str:
    """What the mirror is built from: this script and the package code that writes the files."""
    import hashlib

    from labclip_utils.io.hashing import code_digest

    script = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]
    return f"{script}-" + code_digest("labclip_utils.scenes", "labclip_utils.benchmarks.offline",
                                      "labclip_utils.benchmarks.downloads", "labclip_utils.io.downloads",
                                      "labclip_utils.io.mirror")


def build_mirror(folder: Path = WORK / "mirror", seed: int = 0) -> Path:
    """Write the rehearsal mirror once (rebuilt when this script or the code that writes it changes); return its
    folder."""
    from labclip_utils.io.mirror import write_manifest

    stamp = folder / ".rehearsal-mirror.json"
    version = mirror_version()
    if stamp.is_file() and json.loads(stamp.read_text()).get("version") == version:
        return folder
    start = time.perf_counter()
    shutil.rmtree(folder, ignore_errors=True)
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    folder.mkdir(parents=True)
    try:
        write_binding(folder, tmp, seed)
        write_coco(folder, tmp, seed + 10)
        write_aro_sugarcrepe_flickr(folder, tmp, seed + 20)
        write_tools(folder, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    write_manifest(folder, progress=False)
    stamp.write_text(json.dumps({"version": version}))
    print(f"rehearsal mirror written to {folder} in {time.perf_counter() - start:.0f} s")
    return folder


def write_checkpoint(folder: Path = WORK / "checkpoints", model: str = "ViT-B-32") -> Path:
    """A random-init open_clip model saved as a checkpoint file (fp16, to halve it), as a downloaded one is."""
    import open_clip
    import torch

    from labclip_utils.io.files import atomic_write

    path = folder / f"{model}-random-init.pt"
    if path.is_file():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    state = {k: v.half() if v.is_floating_point() else v for k, v in open_clip.create_model(model).state_dict().items()}
    return atomic_write(path, lambda tmp: torch.save({"state_dict": state}, tmp))


# -- the run --------------------------------------------------------------------------------------------------
def rehearsal_env(mirror_url: str, checkpoint: Path, cache: Path) -> dict[str, str]:
    """The settings a rehearsal changes; everything else is the paper profile as a Colab user runs it."""
    return {"LABCLIP_PROFILE": "paper", "LABCLIP_MIRROR": mirror_url, "LABCLIP_FRACTION": FRACTION,
            "LABCLIP_MODEL": "ViT-B-32", "LABCLIP_PRETRAINED": str(checkpoint),
            "LABCLIP_SYNTHETIC_MODEL": "ViT-B-32", "LABCLIP_SYNTHETIC_PRETRAINED": str(checkpoint),
            "LABCLIP_CACHE_DIR": str(cache), "LABCLIP_DEVICE": "cpu"}


def tag_chapters(notebooks: Path, mirror_url: str, cache: Path, usage_dir: Path, prefix: str = "") -> None:
    """Give each staged chapter a first, hidden cell that makes it a fresh machine's run: its own data folder and
    cache, the mirror under its own tag (the server counts what each tag fetched), its own usage log."""
    import nbformat

    for path in sorted(notebooks.glob("*.ipynb")):
        tag = f"{prefix}{path.stem}"
        settings = {"LABCLIP_MIRROR": f"{mirror_url}/@{tag}", "LABCLIP_DATA_DIR": str(cache / f"data-{tag}"),
                    "LABCLIP_CACHE_DIR": str(cache / f"cache-{tag}"),
                    "LABCLIP_USAGE_LOG": str(usage_dir / f"{tag}.json")}
        nb = nbformat.read(path, as_version=4)
        cell = nbformat.v4.new_code_cell(f"import os\nos.environ.update({json.dumps(settings)})",
                                         metadata={"tags": ["remove-cell"]})
        nb.cells.insert(0, cell)
        nbformat.write(nb, path)


def class_budget(usage: dict, usage_dir: Path) -> tuple[object, bool]:
    """Per chapter at class size: the bytes and files the mirror served it and the images its encoders processed
    (measured, on the stand-ins), what those downloads weigh on the real datasets, the image passes measured beside
    those the T4 model predicts at the rehearsal's fraction, the T4 estimate, and whether both are within
    :data:`~labclip_utils.profile.CLASS_BUDGET`. The estimate is the model's at full fraction, scaled up per
    backbone by measured / predicted wherever a chapter processed more images than the model says: so it comes from
    the measured counts wherever they exceed the model. Chapters that class size changes are read from their class
    run (tag ``class-<chapter>``)."""
    import pandas as pd

    from labclip_utils.book.environment import T4_ASSUMPTIONS, class_downloads_gb, paper_workload, t4_minutes
    from labclip_utils.profile import CLASS_BUDGET

    estimate, predicted = paper_workload("class"), paper_workload("class", float(FRACTION))
    step = T4_ASSUMPTIONS["training step / forward pass"]
    rows = []
    for chapter in estimate.index:
        tag = f"class-{chapter}" if chapter in CLASS_CHAPTERS else chapter
        served = usage.get(tag, {"bytes": 0, "files": {}})
        log = usage_dir / f"{tag}.json"
        counts = json.loads(log.read_text()) if log.is_file() else {}
        models = [_paper_backbone(experiment) for experiment in sorted(counts) if counts[experiment].get("loaded")]
        files = [f for f in served["files"] if f != "SHA256SUMS"]
        per_image = sum(1 for f in files if f.count("/") >= 2)
        passes, scale = {}, {}
        for experiment in ("synthetic", "real"):
            column = f"{_paper_backbone(experiment)} image passes"
            c = counts.get(experiment, {})
            passes[column] = c.get("encoded", 0) + step * c.get("trained", 0)
            scale[column] = max(1.0, passes[column] / max(predicted.loc[chapter, column], 1))
        gb = class_downloads_gb(served["files"], models)
        full = estimate.loc[chapter]
        large, base = (full[c] * scale[c] for c in ("ViT-L-14 image passes", "ViT-B-32 image passes"))
        # at class size the ViT-B-32 passes are the benchmarks' photographs, each decoded once
        minutes = t4_minutes(large, base, base, max(gb, full["download (GB, published sizes)"]))
        rows.append({
            "chapter": chapter,
            "fetched (MB, stand-ins)": round(served["bytes"] / 1e6, 2),
            "files fetched": len(files) - per_image, "images fetched one by one": per_image,
            "images encoded": sum(c.get("encoded", 0) for c in counts.values()),
            "images trained on": sum(c.get("trained", 0) for c in counts.values()),
            "image passes (measured)": int(sum(passes.values())),
            "image passes (model, same fraction)": int(predicted.loc[chapter, list(passes)].sum()),
            "class download (GB, real data)": round(gb, 2),
            "T4 estimate (min)": round(minutes, 1),
        })
    table = pd.DataFrame(rows).set_index("chapter")
    within = ((table["class download (GB, real data)"] <= CLASS_BUDGET["download (GB)"])
              & (table["T4 estimate (min)"] <= CLASS_BUDGET["T4 minutes"]))
    table["within budget"] = within
    return table, bool(within.all())


def _paper_backbone(experiment: str) -> str:
    """The paper profile's default backbone for an experiment (the rehearsal's stand-ins replace both with smaller
    ones; a chapter is charged the weights of the paper's)."""
    from labclip_utils.profile import PROFILE_SPECS

    spec = PROFILE_SPECS["paper"]
    return spec.synthetic_model if experiment == "synthetic" else spec.model


def prefetch(data_dir: Path, datasets: tuple[str, ...] = REHEARSED) -> None:
    """Fetch every dataset from the mirror once (a broken file fails here, named); manual data is reported."""
    from labclip_utils.benchmarks.downloads import fetch_dataset
    from labclip_utils.io.downloads import ManualDownloadRequired

    for name in datasets:
        target = data_dir / {"coco_train": "coco"}.get(name, name)
        if name == "nltk":
            target = data_dir / "nltk" / "tokenizers"
        try:
            fetch_dataset(name, target, progress=False)
        except ManualDownloadRequired as note:
            print(f"{name}: manual download, as expected ({str(note)[:60]}...)")


def rehearse(workers: int = 2, only: list[str] | None = None, keep_cache: bool = False, record: bool = False) -> int:
    """The whole rehearsal; ``only`` runs just these chapters (and builds no site), ``keep_cache`` reuses the last
    rehearsal's cache (both for debugging one chapter); ``record`` writes the class-size table into the package's
    records."""
    import book
    from labclip_utils.io.mirror import serve

    mirror = build_mirror()
    checkpoint = write_checkpoint()
    cache = WORK / "cache"
    usage_dir = WORK / "reports" / "usage"
    if not keep_cache:
        shutil.rmtree(cache, ignore_errors=True)  # a fresh cache: every download and encoding happens in this run
    shutil.rmtree(usage_dir, ignore_errors=True)
    usage: dict = {}
    run = checkout_state()
    with serve(mirror, usage=usage) as url:
        os.environ.update(rehearsal_env(f"{url}/@prefetch", checkpoint, cache))
        print(f"rehearsal: paper profile, mirror {url}, checkpoint {checkpoint.name}, fraction {FRACTION}", flush=True)
        prefetch(cache / "data")
        stage = WORK / "stage"
        book.stage(stage)
        if only:
            for path in (stage / "notebooks").glob("*.ipynb"):
                if path.stem not in only:
                    path.unlink()
        tag_chapters(stage / "notebooks", url, cache, usage_dir)
        # no shared artefacts prepared: every chapter encodes what it uses, in its own cache, as on its own machine
        code = book.execute(stage / "notebooks", workers, WORK / "reports", prepare=False)
        if code == 0 and not only:
            code = rehearse_precision(book, FP16_CHAPTER, "fp16", tag=(url, cache, usage_dir))
        if code == 0 and not only:
            code = rehearse_class(book, url, cache, usage_dir, workers)
    (WORK / "reports" / SERVED).write_text(json.dumps({"run": run, "served": usage}, indent=1, sort_keys=True))
    if code == 0 and not only:
        code = report_class_budget(usage, usage_dir, run, record)
    if code != 0 or only:
        return code
    return book.build(stage, WORK)


def rehearse_class(book, url: str, cache: Path, usage_dir: Path, workers: int) -> int:
    """Execute the chapters that class size changes again with ``LABCLIP_SIZE=class``, each tagged
    ``class-<chapter>`` (its own stage, not part of the site)."""
    stage = WORK / "stage-class"
    book.stage(stage)
    for path in (stage / "notebooks").glob("*.ipynb"):
        if path.stem not in CLASS_CHAPTERS:
            path.unlink()
    tag_chapters(stage / "notebooks", url, cache, usage_dir, prefix="class-")
    os.environ["LABCLIP_SIZE"] = "class"
    try:
        print(f"rehearsal: {', '.join(CLASS_CHAPTERS)} again with LABCLIP_SIZE=class", flush=True)
        return book.execute(stage / "notebooks", workers, WORK / "reports-class", prepare=False)
    finally:
        os.environ.pop("LABCLIP_SIZE", None)


def checkout_state() -> dict[str, str]:
    """The commit this checkout is at ("+changes" when it has uncommitted changes) and today's date: what a record
    says it was measured with."""
    import subprocess

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    return {"commit": commit + ("+changes" if git("status", "--porcelain") else ""), "date": time.strftime("%Y-%m-%d")}


def report_class_budget(usage: dict, usage_dir: Path, run: dict[str, str], record: bool = False) -> int:
    """Print and save the class-size table (``record``: also as the package's record, with the commit and date of
    the run that measured it, ``run``, which the setup chapter shows); 1 when a chapter exceeds the budget."""
    import pandas as pd

    from labclip_utils.records import REHEARSAL

    table, within = class_budget(usage, usage_dir)
    out = WORK / "reports" / "class_budget.csv"
    table.to_csv(out)
    if record:
        table.assign(**run).to_csv(ROOT / "labclip_utils" / "records" / REHEARSAL)
    with pd.option_context("display.width", 250, "display.max_columns", 20):
        print(f"rehearsal: each chapter at class size (measured on the stand-ins at fraction {FRACTION}; the real "
              f"data's download and the T4 time estimated), written to {out.relative_to(ROOT)}:\n{table}", flush=True)
    if not within:
        over = ", ".join(table.index[~table["within budget"]])
        print(f"rehearsal: FAILED: over the class budget: {over}", flush=True)
        return 1
    return 0


def rehearse_precision(book, chapter: str, precision: str, tag: tuple[str, Path, Path] | None = None) -> int:
    """Execute one chapter again with ``LABCLIP_PRECISION=precision``: on a GPU, ``auto`` means fp16, so the fp16
    code paths (open_clip's mixed fp16/fp32 weights) must run somewhere before a student's Colab does. Its own stage,
    not part of the site."""
    stage = WORK / f"stage-{precision}"
    book.stage(stage)
    for path in (stage / "notebooks").glob("*.ipynb"):
        if path.stem != chapter:
            path.unlink()
    if tag:
        tag_chapters(stage / "notebooks", *tag, prefix=f"{precision}-")
    changes = {"LABCLIP_PRECISION": precision, "LABCLIP_SYNTHETIC_MODEL": FP16_MODEL,
               "LABCLIP_SYNTHETIC_PRETRAINED": str(write_checkpoint(model=FP16_MODEL))}
    saved = {k: os.environ.get(k) for k in changes}
    os.environ.update(changes)
    try:
        print(f"rehearsal: {chapter} again with LABCLIP_PRECISION={precision} on {FP16_MODEL}", flush=True)
        start = time.perf_counter()
        code = book.execute(stage / "notebooks", 1, WORK / f"reports-{precision}", prepare=False)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    if code == 0:
        print(f"rehearsal: {chapter} ran in {precision} ({time.perf_counter() - start:.0f} s)", flush=True)
    return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", nargs="?", default="all", choices=("all", "mirror", "report"),
                        help="all: the rehearsal; mirror: only build the mirror; report: the class-size table again, "
                             "from the last rehearsal's saved counts")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--only", nargs="*", default=None, help="debugging: run only these chapters (stems)")
    parser.add_argument("--keep-cache", action="store_true", help="debugging: reuse the last rehearsal's cache")
    parser.add_argument("--record", action="store_true",
                        help="write the class-size table to labclip_utils/records/class_rehearsal.csv")
    args = parser.parse_args(argv)
    if args.command == "mirror":
        print(build_mirror())
        return 0
    if args.command == "report":
        served = WORK / "reports" / SERVED
        if not served.is_file():
            raise SystemExit(f"{served} is missing: run the rehearsal first")
        saved = json.loads(served.read_text())
        return report_class_budget(saved["served"], WORK / "reports" / "usage", saved["run"], args.record)
    return rehearse(args.workers, args.only, args.keep_cache, args.record)


if __name__ == "__main__":
    sys.exit(main())
