"""Profiles: what a chapter runs on.

``offline`` is the default (a laptop, CI): scenes generated on the fly and the miniature CLIP trained on the CPU,
nothing downloaded. ``paper`` runs the same chapters as the paper does: OpenAI's ViT-L/14 for the synthetic
experiments (CLEVR, PUG) and ViT-B/32 for the real benchmarks (COCO, ARO, SugarCrepe), on the real datasets, which
it may download; it is meant for Colab or a GPU.

Pick one with the ``PROFILE`` parameter at the top of a chapter or with ``LABCLIP_PROFILE``. Settings of the paper
profile, each an environment variable:

- ``LABCLIP_MODEL`` / ``LABCLIP_PRETRAINED``: the backbone of the real benchmarks (default ``ViT-B-32``/``openai``);
- ``LABCLIP_SYNTHETIC_MODEL`` / ``LABCLIP_SYNTHETIC_PRETRAINED``: the backbone of the synthetic experiments
  (default ``ViT-L-14``/``openai``); a weights tag or a checkpoint file;
- ``LABCLIP_PRECISION``: ``auto`` (fp16 on a GPU, fp32 on a CPU, as OpenAI's ``clip`` package), ``fp16``,
  ``bf16`` or ``fp32``;
- ``LABCLIP_SIZE``: ``full`` (the paper's protocol) or ``class``: every chapter within a class's budget on Colab's
  free T4 (:data:`CLASS_BUDGET`): CLIP-FT shortened, chapter 7 on fixed, seeded subsets whose images are fetched
  one by one instead of whole archives (:mod:`labclip_utils.benchmarks.subsets`), and every shortening labelled;
- ``LABCLIP_FRACTION``: a number in (0, 1] that shrinks scene counts, benchmark subsets and epochs together
  (a rehearsal on a CPU); 1 changes nothing (it was called ``LABCLIP_SCALE``);
- ``LABCLIP_MIRROR``: a URL or folder that serves every download under its official file name
  (see :mod:`labclip_utils.io.downloads`).
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

PROFILE_ENV = "LABCLIP_PROFILE"
CACHE_ENV = "LABCLIP_CACHE_DIR"
DATA_ENV = "LABCLIP_DATA_DIR"
MODEL_ENV = "LABCLIP_MODEL"
PRETRAINED_ENV = "LABCLIP_PRETRAINED"
SYNTHETIC_MODEL_ENV = "LABCLIP_SYNTHETIC_MODEL"
SYNTHETIC_PRETRAINED_ENV = "LABCLIP_SYNTHETIC_PRETRAINED"
PRECISION_ENV = "LABCLIP_PRECISION"
FRACTION_ENV = "LABCLIP_FRACTION"
SIZE_ENV = "LABCLIP_SIZE"
OLD_FRACTION_ENV = "LABCLIP_SCALE"  # its former name: refused with a message, never silently ignored
DEVICE_ENV = "LABCLIP_DEVICE"
THREADS_ENV = "LABCLIP_NUM_THREADS"
MIRROR_ENV = "LABCLIP_MIRROR"
MIRROR_LOG_ENV = "LABCLIP_MIRROR_LOG"
PROGRESS_ENV = "LABCLIP_PROGRESS"
ENFORCE_CLAIMS_ENV = "LABCLIP_ENFORCE_CLAIMS"
USAGE_LOG_ENV = "LABCLIP_USAGE_LOG"

DEFAULT_PROFILE = "offline"
Experiment = Literal["synthetic", "real"]
Size = Literal["full", "class"]
SIZES: tuple[str, ...] = ("full", "class")
#: What ``LABCLIP_SIZE=class`` promises per chapter of the paper profile (checked by ``make rehearse``): at most this
#: much downloaded, and at most this many minutes on Colab's free T4 (an estimate from the images each chapter encodes).
CLASS_BUDGET = {"download (GB)": 2.0, "T4 minutes": 15.0}

#: Every setting, as (environment variable(s), default, what it does): the setup chapter and the README show this table.
SETTINGS: tuple[tuple[str, str, str], ...] = (
    (f"{PROFILE_ENV}", DEFAULT_PROFILE, "which profile runs (a chapter's PROFILE parameter wins)"),
    (f"{CACHE_ENV}", "~/.cache/labclip", "where weights, embeddings and downloads are cached"),
    (f"{DATA_ENV}", "<cache>/data", "where the paper profile's datasets go"),
    (f"{SYNTHETIC_MODEL_ENV}, {SYNTHETIC_PRETRAINED_ENV}", "ViT-L-14, openai",
     "the CLIP of the synthetic experiments (a weights tag or a checkpoint file)"),
    (f"{MODEL_ENV}, {PRETRAINED_ENV}", "ViT-B-32, openai", "the CLIP of the real benchmarks"),
    (f"{PRECISION_ENV}", "auto", "fp16 on a GPU and fp32 on a CPU (as OpenAI's clip package), or fp16, bf16, fp32"),
    (f"{MIRROR_ENV}", "unset",
     "fetch every file from <mirror>/<dataset>/<file> (a URL or a folder) instead of its official host"),
    (f"{SIZE_ENV}", "full", "paper profile: 'full' (the paper's protocol) or 'class' (every chapter within "
     f"{CLASS_BUDGET['download (GB)']:g} GB and {CLASS_BUDGET['T4 minutes']:g} T4 minutes; shortenings labelled)"),
    (f"{FRACTION_ENV}", "1", "shrink scene counts, benchmark subsets and epochs together (a rehearsal on a CPU)"),
    (f"{DEVICE_ENV}", "auto", "cuda when available, else cpu"),
    (f"{THREADS_ENV}", "all cores", "CPU threads torch may use"),
)


def settings_table():
    """:data:`SETTINGS` as a table (environment variable, default, what it does)."""
    import pandas as pd

    return pd.DataFrame(SETTINGS, columns=["setting", "default", "what it does"]).set_index("setting")


@dataclass(frozen=True)
class ProfileSpec:
    """The fixed part of a profile: what it uses and what it may fetch."""

    name: str
    title: str
    model: str
    pretrained: str | None
    synthetic_model: str
    synthetic_pretrained: str | None
    data: Literal["generated", "real"]
    downloads: bool
    needs: str
    image_size: int


PROFILE_SPECS: dict[str, ProfileSpec] = {
    "offline": ProfileSpec(
        name="offline",
        title="miniature CLIP trained on this CPU, generated scenes, no downloads",
        model="miniature", pretrained="seed0", synthetic_model="miniature", synthetic_pretrained="seed0",
        data="generated", downloads=False,
        needs="any laptop CPU; the miniature is trained once and cached",
        image_size=64,
    ),
    "paper": ProfileSpec(
        name="paper",
        title="the paper's CLIP backbones and datasets",
        model="ViT-B-32", pretrained="openai", synthetic_model="ViT-L-14", synthetic_pretrained="openai",
        data="real", downloads=True,
        needs=(f"a GPU and internet access; on Colab's free T4, LABCLIP_SIZE=class runs each chapter within "
               f"{CLASS_BUDGET['download (GB)']:g} GB and {CLASS_BUDGET['T4 minutes']:g} minutes, while the full "
               "protocol takes hours (chapter 6's CLIP-FT) and tens of GB (chapter 7)"),
        image_size=224,
    ),
}


@dataclass(frozen=True)
class Profile(ProfileSpec):
    """A resolved profile: the spec (its models as the settings override them) plus this machine's device,
    folders and settings."""

    device: str
    precision: str
    fraction: float
    size: Size
    cache_dir: Path
    data_dir: Path

    @property
    def is_offline(self) -> bool:
        return self.name == "offline"

    @property
    def is_class(self) -> bool:
        """The paper profile at class size (``LABCLIP_SIZE=class``): shortened where the full protocol does not fit a
        class's budget, and labelled so."""
        return self.size == "class"

    def backbone(self, experiment: Experiment = "real") -> tuple[str, str | None]:
        """``(model, weights)`` for the synthetic experiments (CLEVR, PUG, probes) or the real benchmarks."""
        if experiment not in ("synthetic", "real"):
            raise ValueError(f"experiment must be 'synthetic' or 'real', got {experiment!r}")
        if experiment == "synthetic":
            return self.synthetic_model, self.synthetic_pretrained
        return self.model, self.pretrained

    def label(self, experiment: Experiment = "real") -> str:
        """How tables name this profile's CLIP: ``"CLIP (miniature)"``, ``"CLIP (ViT-L-14/openai)"``."""
        model, weights = self.backbone(experiment)
        return "CLIP (miniature)" if model == "miniature" else f"CLIP ({model}/{weights or 'random init'})"

    def scaled(self, n: int, minimum: int = 1) -> int:
        """``n`` shrunk by ``LABCLIP_FRACTION`` (at least ``minimum``): scene counts, subsets, epochs."""
        return scaled_count(n, self.fraction, minimum)

    def summary(self) -> str:
        """One line for the top of a chapter."""
        def name(model: str, weights: str | None) -> str:
            return model if weights is None else f"{model}/{Path(weights).name if '/' in weights else weights}"

        models = name(self.model, self.pretrained)
        if (self.synthetic_model, self.synthetic_pretrained) != (self.model, self.pretrained):
            models = f"{name(self.synthetic_model, self.synthetic_pretrained)} (synthetic), {models} (real data)"
        fraction = f"; fraction {self.fraction:g}" if self.fraction < 1 else ""
        size = "; class size (shortened where a class's budget needs it)" if self.is_class else ""
        return (f"Profile '{self.name}': {self.title}. Models: {models}; data: {self.data}; device: {self.device} "
                f"({self.precision}){size}{fraction}; cache: {shown_path(self.cache_dir, CACHE_ENV)}")


def shown_path(path: Path, env: str) -> str:
    """``path`` as a chapter prints it: ``$ENV`` when that variable names it (so the website, built with it set, shows
    no folder of the machine that built it), ``~/...`` under the home folder, else the path itself."""
    path = Path(path)
    if os.environ.get(env) and Path(os.environ[env]).expanduser().resolve() == path.resolve():
        return f"${env}"
    home = Path.home().resolve()
    if home != Path("/") and path.is_relative_to(home):
        return f"~/{path.relative_to(home).as_posix()}"
    return str(path)


def default_cache_dir() -> Path:
    """``$LABCLIP_CACHE_DIR``, else ``$XDG_CACHE_HOME/labclip`` (``~/.cache/labclip``)."""
    if os.environ.get(CACHE_ENV):
        folder, source = Path(os.environ[CACHE_ENV]).expanduser().resolve(), f"${CACHE_ENV}"
    else:
        base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
        folder, source = (Path(base) / "labclip").resolve(), "the default cache folder"
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{source}: {folder} is a file, not a folder")
    return folder


def resolve_device(requested: str | None = None) -> str:
    """``cuda`` when available (or asked for), else ``cpu``; ``$LABCLIP_DEVICE`` overrides ``auto``."""
    source = "the requested device" if requested else f"${DEVICE_ENV}"
    requested = requested or os.environ.get(DEVICE_ENV) or "auto"
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {requested!r} ({source}) was requested but torch sees no CUDA device")
    if requested not in {"cpu", "mps"} and not requested.startswith("cuda"):
        raise ValueError(f"unknown device {requested!r} (from {source}); use 'auto', 'cpu', 'cuda' or 'cuda:N'")
    return requested


def resolve_precision(requested: str | None, device: str) -> str:
    """``fp16`` on a GPU and ``fp32`` on a CPU for ``auto`` (what OpenAI's ``clip`` package does), else as asked."""
    requested = (requested or "auto").strip().lower()
    if requested == "auto":
        return "fp16" if device.startswith("cuda") else "fp32"
    if requested not in ("fp16", "bf16", "fp32"):
        raise ValueError(f"unknown precision {requested!r} (from ${PRECISION_ENV}); use 'auto', 'fp16', 'bf16' or "
                         "'fp32'")
    return requested


def scaled_count(n: int, fraction: float, minimum: int = 1) -> int:
    """``n`` shrunk by ``fraction`` (at least ``minimum``; ``n`` itself at fraction 1): what :meth:`Profile.scaled`
    gives a chapter, and what the T4 estimate assumes it gets."""
    return n if fraction >= 1 else max(minimum, math.ceil(n * fraction))


def resolve_fraction(value: str | None) -> float:
    """``$LABCLIP_FRACTION`` as a number in (0, 1]; 1 when unset."""
    if not value:
        return 1.0
    try:
        fraction = float(value)
    except ValueError:
        raise ValueError(f"${FRACTION_ENV} must be a number in (0, 1], got {value!r}") from None
    if not 0 < fraction <= 1:
        raise ValueError(f"${FRACTION_ENV} must be a number in (0, 1], got {value!r}")
    return fraction


def resolve_size(value: str | None) -> Size:
    """``$LABCLIP_SIZE``: ``full`` (default) or ``class``."""
    size = (value or "full").strip().lower()
    if size not in SIZES:
        raise ValueError(f"${SIZE_ENV} must be one of {', '.join(SIZES)}, got {value!r}")
    return size  # type: ignore[return-value]


def current_profile(name: str | None = None, *, device: str | None = None) -> Profile:
    """Resolve a profile without side effects.

    ``name`` wins over ``$LABCLIP_PROFILE``, which wins over the default ``offline``.
    """
    chosen = (name or os.environ.get(PROFILE_ENV) or DEFAULT_PROFILE).strip().lower()
    if os.environ.get(OLD_FRACTION_ENV) and not os.environ.get(FRACTION_ENV):
        raise ValueError(f"${OLD_FRACTION_ENV} was renamed ${FRACTION_ENV} (the share of scenes, items and epochs a "
                         f"run keeps): set {FRACTION_ENV}={os.environ[OLD_FRACTION_ENV]} instead")
    if chosen not in PROFILE_SPECS:
        source = "argument" if name else f"${PROFILE_ENV}"
        raise ValueError(f"unknown profile {chosen!r} (from {source}); choose one of {sorted(PROFILE_SPECS)}")
    spec = PROFILE_SPECS[chosen]
    model, pretrained = spec.model, spec.pretrained
    synthetic, synthetic_pretrained = spec.synthetic_model, spec.synthetic_pretrained
    if chosen == "paper":
        model = os.environ.get(MODEL_ENV) or model
        pretrained = os.environ.get(PRETRAINED_ENV) or pretrained
        synthetic = os.environ.get(SYNTHETIC_MODEL_ENV) or synthetic
        synthetic_pretrained = os.environ.get(SYNTHETIC_PRETRAINED_ENV) or synthetic_pretrained
    cache_dir = default_cache_dir()
    data_dir = Path(os.environ[DATA_ENV]).expanduser().resolve() if os.environ.get(DATA_ENV) else cache_dir / "data"
    resolved = resolve_device(device)
    return Profile(
        **{**asdict(spec), "model": model, "pretrained": pretrained, "synthetic_model": synthetic,
           "synthetic_pretrained": synthetic_pretrained}, device=resolved,
        precision=resolve_precision(os.environ.get(PRECISION_ENV), resolved) if chosen == "paper" else "fp32",
        fraction=resolve_fraction(os.environ.get(FRACTION_ENV)) if chosen == "paper" else 1.0,
        size=resolve_size(os.environ.get(SIZE_ENV)) if chosen == "paper" else "full",
        cache_dir=cache_dir, data_dir=data_dir,
    )


# -- settings read by the package's lower layers (each a function, so a change of the environment is seen) ---------
def mirror_source() -> str | None:
    """``$LABCLIP_MIRROR`` (a URL or a folder that serves every download), without a trailing slash; None when
    unset."""
    value = os.environ.get(MIRROR_ENV, "").strip()
    return value.rstrip("/") or None


def mirror_log() -> bool:
    """Whether a mirror server logs each request (``$LABCLIP_MIRROR_LOG`` set)."""
    return bool(os.environ.get(MIRROR_LOG_ENV))


def usage_log() -> Path | None:
    """``$LABCLIP_USAGE_LOG``: the JSON file a chapter's encoders count their images into (set by the rehearsal, one
    file per chapter), or None."""
    value = os.environ.get(USAGE_LOG_ENV, "").strip()
    return Path(value) if value else None


def progress_enabled() -> bool:
    """False when ``$LABCLIP_PROGRESS=0`` (the book's runner: no progress-bar widgets on the published pages)."""
    return os.environ.get(PROGRESS_ENV, "1").strip() != "0"


def claims_enforced(profile: Profile) -> bool:
    """Whether a false claim stops a chapter: always in the offline profile, in the paper profile only with
    ``$LABCLIP_ENFORCE_CLAIMS=1`` (its numbers depend on real weights and data a rehearsal does not have)."""
    return profile.is_offline or os.environ.get(ENFORCE_CLAIMS_ENV) == "1"


def torch_threads() -> int | None:
    """``$LABCLIP_NUM_THREADS`` as a positive whole number (None when unset): the book's runner sets it so that
    notebooks executing in parallel do not fight over the cores."""
    threads = os.environ.get(THREADS_ENV)
    if not threads:
        return None
    if not threads.strip().isdigit() or int(threads) < 1:
        raise ValueError(f"${THREADS_ENV} must be a positive whole number, got {threads!r}")
    return int(threads)
