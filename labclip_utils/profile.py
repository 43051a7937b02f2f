"""Profiles: what a chapter runs on.

``offline`` is the default (a laptop, CI): scenes generated on the fly and the miniature CLIP trained on
the CPU, nothing downloaded. ``paper`` runs the same chapters on a real pretrained open_clip model
(``ViT-B-32``/``openai`` unless ``LABCLIP_MODEL``/``LABCLIP_PRETRAINED`` say otherwise) and the real
datasets, which it may download; it is meant for Colab or a GPU.

Pick one with the ``PROFILE`` parameter at the top of a chapter or with ``LABCLIP_PROFILE``.
"""

from __future__ import annotations

import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

PROFILE_ENV = "LABCLIP_PROFILE"
CACHE_ENV = "LABCLIP_CACHE_DIR"
DATA_ENV = "LABCLIP_DATA_DIR"
MODEL_ENV = "LABCLIP_MODEL"
PRETRAINED_ENV = "LABCLIP_PRETRAINED"
DEVICE_ENV = "LABCLIP_DEVICE"
THREADS_ENV = "LABCLIP_NUM_THREADS"

DEFAULT_PROFILE = "offline"
PAPER_MODEL = "ViT-B-32"
PAPER_PRETRAINED = "openai"


@dataclass(frozen=True)
class ProfileSpec:
    """The fixed part of a profile: what it uses and what it may fetch."""

    name: str
    title: str
    model: str
    pretrained: str | None
    data: Literal["generated", "real"]
    downloads: bool
    needs: str
    image_size: int


PROFILE_SPECS: dict[str, ProfileSpec] = {
    "offline": ProfileSpec(
        name="offline",
        title="miniature CLIP trained on this CPU, generated scenes, no downloads",
        model="miniature",
        pretrained=None,
        data="generated",
        downloads=False,
        needs="any laptop CPU; the miniature is trained once and cached",
        image_size=64,
    ),
    "paper": ProfileSpec(
        name="paper",
        title="pretrained open_clip model and the paper's datasets",
        model=PAPER_MODEL,
        pretrained=PAPER_PRETRAINED,
        data="real",
        downloads=True,
        needs="a GPU (Colab's free T4 is enough) and internet access for the downloads",
        image_size=224,
    ),
}


@dataclass(frozen=True)
class Profile:
    """A resolved profile: the spec plus this machine's device and folders."""

    name: str
    title: str
    model: str
    pretrained: str | None
    data: Literal["generated", "real"]
    downloads: bool
    image_size: int
    device: str
    cache_dir: Path
    data_dir: Path

    @property
    def is_offline(self) -> bool:
        return self.name == "offline"

    def summary(self) -> str:
        """One line for the top of a chapter."""
        model = self.model if self.pretrained is None else f"{self.model}/{self.pretrained}"
        return (
            f"Profile '{self.name}': {self.title}. Model: {model}; data: {self.data}; "
            f"device: {self.device}; cache: {self.cache_dir}"
        )


def in_colab() -> bool:
    """True inside a Google Colab runtime."""
    return "google.colab" in sys.modules


def default_cache_dir() -> Path:
    """``$LABCLIP_CACHE_DIR``, else ``$XDG_CACHE_HOME/labclip`` (``~/.cache/labclip``)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser().resolve()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return (Path(base) / "labclip").resolve()


def resolve_device(requested: str | None = None) -> str:
    """``cuda`` when available (or asked for), else ``cpu``; ``$LABCLIP_DEVICE`` overrides ``auto``."""
    requested = requested or os.environ.get(DEVICE_ENV) or "auto"
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {requested!r} was requested but torch sees no CUDA device")
    if requested not in {"cpu", "mps"} and not requested.startswith("cuda"):
        raise ValueError(f"unknown device {requested!r}; use 'auto', 'cpu', 'cuda' or 'cuda:N'")
    return requested


def current_profile(name: str | None = None, *, device: str | None = None) -> Profile:
    """Resolve a profile without side effects.

    ``name`` wins over ``$LABCLIP_PROFILE``, which wins over the default ``offline``.
    """
    chosen = (name or os.environ.get(PROFILE_ENV) or DEFAULT_PROFILE).strip().lower()
    if chosen not in PROFILE_SPECS:
        source = "argument" if name else f"${PROFILE_ENV}"
        raise ValueError(f"unknown profile {chosen!r} (from {source}); choose one of {sorted(PROFILE_SPECS)}")
    spec = PROFILE_SPECS[chosen]
    model, pretrained = spec.model, spec.pretrained
    if chosen == "paper":
        model = os.environ.get(MODEL_ENV) or model
        pretrained = os.environ.get(PRETRAINED_ENV) or pretrained
    cache_dir = default_cache_dir()
    data_dir = Path(os.environ[DATA_ENV]).expanduser().resolve() if os.environ.get(DATA_ENV) else cache_dir / "data"
    return Profile(
        name=spec.name,
        title=spec.title,
        model=model,
        pretrained=pretrained,
        data=spec.data,
        downloads=spec.downloads,
        image_size=spec.image_size,
        device=resolve_device(device),
        cache_dir=cache_dir,
        data_dir=data_dir,
    )


def use_profile(name: str | None = None, *, seed: int = 0, verbose: bool = True) -> Profile:
    """Resolve the profile for a chapter, seed everything and print which profile runs.

    Also honours ``$LABCLIP_NUM_THREADS`` (the book's runner sets it so that notebooks executing in
    parallel do not fight over the cores).
    """
    from labclip_utils.reproducibility import seed_everything

    profile = current_profile(name)
    threads = os.environ.get(THREADS_ENV)
    if threads:
        import torch

        torch.set_num_threads(int(threads))
    seed_everything(seed)
    if profile.name == "paper" and profile.device == "cpu":
        warnings.warn(
            "the 'paper' profile runs a real CLIP on the full datasets; without a GPU this takes hours. "
            "In Colab: Runtime > Change runtime type > GPU.",
            stacklevel=2,
        )
    if verbose:
        print(profile.summary())
    return profile


@dataclass(frozen=True)
class Download:
    """Something the paper profile fetches (the checksummed registry lives with the benchmark loaders)."""

    item: str
    used_for: str
    size: str
    how: str


#: What the ``paper`` profile fetches, from the datasets' own documentation
#: (see ``shared/reference/labclip-paper.md`` §4); "?" where the size is not published.
PAPER_DOWNLOADS: tuple[Download, ...] = (
    Download("open_clip ViT-B-32 / openai weights", "every chapter", "about 350 MB", "open_clip, automatic"),
    Download("CLEVR-style scenes", "chapters 1-4", "none", "generated at 224 px by labclip_utils"),
    Download("PUG:SPAR (43,560 images, labels.csv)", "binding, probing", "about 16 GB", "Meta public files"),
    Download("PUG:SPARE (CSV + 4 world folders)", "binding, probing", "?", "Google Drive (gdown)"),
    Download("COCO Karpathy test (5k images, 25k captions)", "retrieval, ARO order", "about 6 GB", "COCO val2014"),
    Download("ARO VG-Relation / VG-Attribution", "ARO", "about 1 GB", "Google Drive (gdown)"),
    Download("SugarCrepe (7 JSON files + COCO val2017)", "SugarCrepe", "about 1 GB", "GitHub + COCO"),
    Download("Flickr30k test images", "Flickr30k-Order", "about 4 GB", "manual (licence form)"),
)
