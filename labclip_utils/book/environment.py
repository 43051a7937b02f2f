"""Environment report for the setup chapter: what this machine has and how long the book took to run on it."""

from __future__ import annotations

import functools
import importlib.metadata as metadata
import math
import os
import platform
import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd

from labclip_utils.benchmarks.downloads import DATASETS, MANUAL
from labclip_utils.benchmarks.subsets import CLASS_ITEMS
from labclip_utils.conjunctive import TARGETS, conjunctive_search
from labclip_utils.finetune import CLASS_FT_EPOCHS, FinetuneConfig
from labclip_utils.io.downloads import GDRIVE
from labclip_utils.probing import multi_object_curve
from labclip_utils.profile import PROFILE_SPECS, Profile, Size, scaled_count
from labclip_utils.scenes.evaluation_set import evaluation_scenes

#: Set by the book's runner (tools/book.py) to the JUnit report of the notebooks executed before the setup chapter.
RUN_REPORT_ENV = "LABCLIP_RUN_REPORT"

_PACKAGES = ("torch", "torchvision", "open_clip_torch", "numpy", "scikit-learn", "pandas", "jupyter-book")


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def environment_report(profile: Profile) -> pd.DataFrame:
    """A two-column table: Python, package versions, device, cores and the active profile."""
    import torch

    rows: list[tuple[str, str]] = [
        ("python", platform.python_version()),
        ("platform", platform.platform(terse=True)),
        ("CPU cores", str(os.cpu_count())),
        ("torch threads", str(torch.get_num_threads())),
    ]
    rows += [(name, _version(name)) for name in _PACKAGES]
    if torch.cuda.is_available():
        gpu = f"{torch.cuda.get_device_name(0)} ({torch.cuda.device_count()} visible)"
    else:
        gpu = "none (CPU only)"
    rows += [
        ("GPU", gpu),
        ("device used", f"{profile.device} ({profile.precision})"),
        ("profile", profile.name),
        ("synthetic experiments", profile.label("synthetic")),
        ("real benchmarks", profile.label("real")),
        ("cache folder", str(profile.cache_dir)),
    ]
    return pd.DataFrame(rows, columns=["item", "value"]).set_index("item")


def profiles_table() -> pd.DataFrame:
    """What each profile uses, needs and downloads."""
    rows = [
        {
            "profile": spec.name,
            "synthetic experiments": f"{spec.synthetic_model}/{spec.synthetic_pretrained}",
            "real benchmarks": f"{spec.model}/{spec.pretrained}",
            "data": spec.data,
            "downloads": "yes" if spec.downloads else "nothing",
            "needs": spec.needs,
        }
        for spec in PROFILE_SPECS.values()
    ]
    return pd.DataFrame(rows).set_index("profile")


def paper_downloads_table() -> pd.DataFrame:
    """What the paper profile fetches: every dataset of the download registry, its files, sizes and sources."""
    rows = []
    for name, files in DATASETS.items():
        hosts = sorted({"Google Drive (gdown)" if f.url == GDRIVE else f.url.split("/")[2] for f in files})
        rows.append({"dataset": name, "files": ", ".join(f.filename for f in files),
                     "size": ", ".join(f.size for f in files if f.size != "?") or "not published",
                     "from": ", ".join(hosts) + (" + a manual step" if name in MANUAL else "")})
    return pd.DataFrame(rows).set_index("dataset")


def notebook_run_times(report: str | Path | None = None) -> pd.DataFrame | None:
    """Per-notebook execution times from the runner's JUnit report, or None when there is none.

    ``report`` defaults to ``$LABCLIP_RUN_REPORT``. A report that exists but cannot be parsed raises a
    ``ValueError`` naming the file.
    """
    path = Path(report) if report else (Path(os.environ[RUN_REPORT_ENV]) if os.environ.get(RUN_REPORT_ENV) else None)
    if path is None or not path.is_file():
        return None
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as err:
        raise ValueError(f"{path}: not a readable JUnit XML report ({err})") from err
    rows = []
    for case in root.iter("testcase"):
        name = case.get("name") or case.get("classname") or "?"
        failed = any(child.tag in {"failure", "error"} for child in case)
        rows.append({"notebook": Path(name).stem, "seconds": float(case.get("time", "nan")), "passed": not failed})
    if not rows:
        raise ValueError(f"{path}: JUnit report lists no test cases")
    return pd.DataFrame(rows).sort_values("notebook").set_index("notebook")


# -- the paper profile's workload per chapter (the setup chapter's table for Colab users) ----------------------------
#: Image encoder cost, GFLOPs per 224-pixel image: open_clip's published model profile (docs/model_profile.csv).
IMAGE_GFLOPS = {"ViT-B-32": 4.41, "ViT-L-14": 81.08}
#: Published checkpoint sizes of OpenAI's weights (MB).
WEIGHTS_MB = {"ViT-B-32": 338, "ViT-L-14": 890}
#: Assumptions behind the T4 estimate (stated on the page): NVIDIA's fp16 tensor-core peak for a T4, the share of it
#: a ViT inference reaches, the cost of a training step in forward passes, how fast Colab's 2 vCPUs decode and
#: resize a COCO-sized JPEG (generated scenes are drawn in memory and cost nothing comparable), and how fast a Colab
#: machine downloads.
T4_ASSUMPTIONS = {"T4 fp16 peak (TFLOPS)": 65.0, "share of peak reached": 0.25, "training step / forward pass": 3.0,
                  "JPEG decode + resize on 2 vCPUs (images/s)": 300.0, "download (MB/s)": 30.0}
#: Published dataset sizes (images encoded by chapter 7), for the estimate.
PAPER_IMAGES = {"COCO Karpathy train": 113_287, "COCO Karpathy test": 5_000, "SugarCrepe (COCO val2017)": 5_000,
                "ARO VG-Relation + VG-Attribution crops": 23_937 + 28_748, "Flickr30k test": 1_000,
                "CLEVR 2-object renders": 5_000, "PUG:SPAR (at most)": 43_560, "PUG:SPARE (about)": 4 * 7_392}
#: A class's per-image downloads: ``<dataset>/<folder>`` → (the class subset's size in :data:`CLASS_ITEMS`, the
#: published mean size of one image in MB: ``val2014.zip`` is 6.2 GB for 40,504 images, ``val2017.zip`` 0.8 GB for
#: 5,000).
PER_IMAGE = {"coco/val2014": ("coco_test_images", 6_200 / 40_504),
             "sugarcrepe/val2017": ("sugarcrepe_items", 800 / 5_000)}


@functools.lru_cache(maxsize=8)
def evaluation_counts(fraction: float = 1.0) -> dict[str, int]:
    """How many of :func:`~labclip_utils.scenes.evaluation_scenes`' scenes at ``fraction`` each part holds: the pool,
    its training, validation and held-out (test) splits, and the seen scenes the chapters encode. Drawn at a tiny
    image size, which the splits do not depend on (about 8 s at full size, once per process)."""
    scenes = evaluation_scenes(seed=0, image_size=8, fraction=fraction)
    return {"pool": len(scenes.pool), "train": len(scenes.pool.select("train")),
            "val": len(scenes.pool.select("val")), "heldout": len(scenes.heldout()), "seen": len(scenes.seen)}


def _plan(size: Size, fraction: float) -> list[tuple[str, tuple[str, ...], tuple[str, ...], float, float, float, float,
                                                     str]]:
    """Per chapter of the paper profile at ``fraction``: (chapter, datasets downloaded whole, backbones loaded,
    ViT-L-14 image passes, ViT-B-32 image passes, JPEG images decoded, extra MB downloaded, what dominates). Each
    chapter runs on a fresh machine (Colab gives every notebook its own), so it loads its own weights and encodes
    every image it uses, its random-init control's included; a training step counts as
    ``T4_ASSUMPTIONS["training step / forward pass"]`` passes. The counts follow the chapters' calls (their sizes
    shrunk by ``fraction`` as :meth:`~labclip_utils.profile.Profile.scaled` shrinks them), so that the rehearsal,
    which runs at a small fraction and counts every image each chapter's encoders process, can check them."""
    import inspect

    def default(fn, name):
        return inspect.signature(fn).parameters[name].default

    def scaled(n: int, minimum: int = 1) -> int:
        return scaled_count(n, fraction, minimum)

    counts = evaluation_counts(fraction)
    scenes = counts["pool"] + counts["seen"]  # the evaluation scenes, encoded once per encoder
    multi = len(default(multi_object_curve, "counts")) * scaled(2000, minimum=40)
    search = len(default(conjunctive_search, "counts")) * len(TARGETS) * (scaled(400, minimum=20)
                                                                          + scaled(200, minimum=20))
    step = T4_ASSUMPTIONS["training step / forward pass"]
    config = FinetuneConfig.paper()
    epochs = scaled(CLASS_FT_EPOCHS if size == "class" else config.epochs)
    steps = epochs * math.ceil(counts["train"] / config.batch_size)
    finetune = steps * config.batch_size * step + (steps // config.eval_every + 1) * min(400, counts["val"])
    ft_note = (f"CLIP-FT shortened to {CLASS_FT_EPOCHS} epoch (the paper: 50)" if size == "class"
               else "CLIP-FT: 50 epochs of fine-tuning dominate; set CLIP_FT_EPOCHS to shorten")
    real = PAPER_IMAGES
    large = ("ViT-L-14",)
    if size == "class":
        aro = real["ARO VG-Relation + VG-Attribution crops"]
        # retrieval is not subsampled; each of the nine choice tasks (SugarCrepe's seven subsets, ARO's two
        # relations) keeps a fraction of its items, at least 20
        choice = CLASS_ITEMS["sugarcrepe_items"] + aro
        photos = CLASS_ITEMS["coco_test_images"] + (choice if fraction >= 1 else
                                                    min(choice, int(choice * fraction) + 9 * 20))
        per_image = sum(CLASS_ITEMS[key] * mb for key, mb in PER_IMAGE.values())
        # plus the Karpathy test JSON the COCO subset is drawn from (SugarCrepe's and ARO's JSONs publish no size)
        test_json = 1000 * sum(_size_gb(f.size) for f in DATASETS["coco"] if f.filename == "coco_karpathy_test.json")
        benchmarks = ("07_benchmarks", ("aro", "labclip_released", "spacy", "nltk"), ("ViT-B-32",), 0, photos, photos,
                      per_image + test_json, "ARO's image zip; class subsets of COCO and SugarCrepe fetched one by one")
    else:
        synthetic = real["CLEVR 2-object renders"] + real["PUG:SPAR (at most)"] + real["PUG:SPARE (about)"]
        benchmarks = ("07_benchmarks", ("coco_train", "aro", "sugarcrepe", "clevr", "pug_spar", "pug_spare",
                                        "flickr30k", "spacy", "nltk"), ("ViT-L-14", "ViT-B-32"), synthetic * fraction,
                      sum(v for k, v in real.items() if not k.startswith(("CLEVR", "PUG"))) * fraction,
                      sum(real.values()) * fraction, 0, "reading and resizing 255,000 images; the downloads")
    return [
        ("02_miniature", (), large, 2 * scenes, 0, 0, 0, "evaluation scenes, model and random-init control"),
        ("03_bag_of_words", (), large, scenes + 7 * scaled(3000, minimum=100), 0, 0, 0,
         "evaluation scenes; three worlds and four caption variants of 3,000 scenes"),
        ("04_probing", (), large, 2 * scenes + 2 * multi + search, 0, 0, 0,
         "evaluation scenes and multi-object curve (model and control), conjunctive search"),
        ("05_modality_gap", (), large, 2 * scenes, 0, 0, 0, "evaluation scenes, model and random-init control"),
        ("06_labclip", ("labclip_released", "spacy", "nltk"), large, 2 * scenes + finetune, 0, 0, 0, ft_note),
        benchmarks,
        ("08_playground", (), large, scenes + counts["heldout"] + 2 * scaled(3000, minimum=100), 0, 0, 0,
         "evaluation scenes, the held-out ones again, two caption variants of 3,000 scenes"),
        ("09_beyond", (), large, 3 * 5 * scaled(300, minimum=50), 0, 0, 0,
         "additive decomposition: each scene and its four single objects (model, control, seen scenes)"),
    ]


def paper_workload(size: Size = "full", fraction: float = 1.0) -> pd.DataFrame:
    """Per chapter, for the paper profile at ``size`` (``"full"``: the paper's protocol; ``"class"``:
    ``LABCLIP_SIZE=class``), each chapter on a fresh Colab machine: what it downloads (datasets at their published
    sizes, and the weights of every backbone it loads), how many images each backbone encodes, and an estimate of
    its time on a T4, downloads included (see :data:`T4_ASSUMPTIONS`). ``fraction`` (``LABCLIP_FRACTION``) shrinks
    the image counts as the chapters shrink them (the rehearsal compares them with what it measured); the downloads
    stay whole."""
    if size not in ("full", "class"):
        raise ValueError(f"size must be 'full' or 'class', got {size!r}")
    rows = []
    for chapter, datasets, models, large, base, jpeg, extra_mb, note in _plan(size, fraction):
        weights = sum(WEIGHTS_MB[m] for m in models) / 1000
        gb = sum(_size_gb(f.size) for d in datasets for f in DATASETS[d]) + extra_mb / 1000 + weights
        rows.append({"chapter": chapter, "datasets": ", ".join(datasets) or "none (generated scenes)",
                     "download (GB, published sizes)": round(gb, 2),
                     "ViT-L-14 image passes": int(large), "ViT-B-32 image passes": int(base),
                     "T4 estimate (min)": round(t4_minutes(large, base, jpeg, gb), 1), "what dominates": note})
    return pd.DataFrame(rows).set_index("chapter")


def t4_minutes(large: float, base: float, jpeg: float, gb: float) -> float:
    """Minutes on a T4 for ``large`` ViT-L-14 and ``base`` ViT-B-32 image passes, ``jpeg`` photographs decoded and
    ``gb`` downloaded (:data:`T4_ASSUMPTIONS`): the GPU or the JPEG decoding, whichever is slower, then the
    download."""
    peak = T4_ASSUMPTIONS["T4 fp16 peak (TFLOPS)"] * 1e3 * T4_ASSUMPTIONS["share of peak reached"]  # GFLOP/s
    gpu_s = large * IMAGE_GFLOPS["ViT-L-14"] / peak + base * IMAGE_GFLOPS["ViT-B-32"] / peak
    seconds = max(gpu_s, jpeg / T4_ASSUMPTIONS["JPEG decode + resize on 2 vCPUs (images/s)"])
    return (seconds + gb * 1000 / T4_ASSUMPTIONS["download (MB/s)"]) / 60


def class_downloads_gb(files: dict[str, int], models: list[str]) -> float:
    """What a chapter's downloads weigh on the real datasets at class size, from the files a rehearsal fetched
    (``<dataset>/<file>`` → bytes, as the mirror counted them) and the backbones it loaded: each whole file at its
    published size, each per-image folder at the class subset's size times its published mean image size, and the
    weights. A file whose size is not published, or a per-image folder without a class subset, is an error: the
    budget cannot be promised for it."""
    sizes = {f"{name}/{f.filename}": f.size for name, remotes in DATASETS.items() for f in remotes}
    total, folders = sum(WEIGHTS_MB[m] for m in set(models) if m in WEIGHTS_MB) / 1000, set()
    for path in files:
        parts = path.split("/")
        if parts[-1] == "SHA256SUMS" or len(parts) == 1:
            continue
        if len(parts) == 2:
            if path not in sizes:
                raise ValueError(f"{path}: not a file of the download registry")
            if _size_gb(sizes[path]) == 0 and not path.endswith(".json"):
                raise ValueError(f"{path}: its size is not published, so no class budget can include it")
            total += _size_gb(sizes[path])
        else:
            folder = "/".join(parts[:-1])
            if folder not in PER_IMAGE:
                raise ValueError(f"{path}: per-image files from {folder}, which has no class subset")
            folders.add(folder)
    return total + sum(CLASS_ITEMS[PER_IMAGE[f][0]] * PER_IMAGE[f][1] for f in folders) / 1000


def _size_gb(size: str) -> float:
    """'13 GB', 'about 80 MB', '?' → gigabytes (0 when unpublished)."""
    import re

    match = re.search(r"([\d.]+)\s*(GB|MB)", size)
    if not match:
        return 0.0
    return float(match.group(1)) / (1 if match.group(2) == "GB" else 1000)
