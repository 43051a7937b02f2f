"""The small interface every benchmark loader returns: a multiple-choice task or a retrieval task.

A task holds *references* to its images (a file, optionally a crop box) and its captions, never pixels, so a
loader is cheap and the runner can encode each unique image and caption once. Loaders check what they read and
raise :class:`BenchmarkFormatError` naming the file and the item.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image


class BenchmarkFormatError(ValueError):
    """A benchmark file is malformed or refers to something that is not there."""


def format_error(path: Path | str, item: object, problem: str) -> BenchmarkFormatError:
    """An error that says which file, which item and what was wrong."""
    where = f" (item {item})" if item is not None else ""
    return BenchmarkFormatError(f"{path}{where}: {problem}")


@dataclass(frozen=True)
class ImageRef:
    """An image file, optionally cropped to ``box = (left, top, right, bottom)`` in pixels (ARO's VG crops)."""

    path: str
    box: tuple[float, float, float, float] | None = None

    def load(self) -> Image.Image:
        """The RGB image (cropped when ``box`` is set)."""
        try:
            image = Image.open(self.path).convert("RGB")
        except FileNotFoundError as exc:
            raise BenchmarkFormatError(f"{self.path}: image file is missing") from exc
        except OSError as exc:
            raise BenchmarkFormatError(f"{self.path}: cannot read the image ({exc})") from exc
        return image.crop(tuple(int(round(v)) for v in self.box)) if self.box else image


def unique_images(refs: Sequence[ImageRef]) -> tuple[list[ImageRef], np.ndarray]:
    """The distinct references in first-seen order, and each item's index into them."""
    index: dict[ImageRef, int] = {}
    inverse = np.array([index.setdefault(r, len(index)) for r in refs], dtype=np.int64)
    return list(index), inverse


def check_images_exist(refs: Sequence[ImageRef], source: Path, items: Sequence[object]) -> None:
    """Fail early, naming the benchmark file and the first item whose image file is missing."""
    for ref, item in zip(refs, items, strict=True):
        if not Path(ref.path).is_file():
            raise format_error(source, item, f"image file {ref.path} is missing")


def _digest(parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:24]


def _files_signature(images: Sequence[ImageRef]) -> list:
    sig = []
    for r in images:
        stat = Path(r.path).stat()
        sig.append([r.path, r.box, stat.st_size, stat.st_mtime_ns])
    return sig


@dataclass
class ChoiceTask:
    """Items of "which caption fits this image?": item ``i`` shows ``images[image_index[i]]`` with the
    captions ``options[i]``, and ``options[i][answer[i]]`` is right.

    ``subset`` names the part of the benchmark (SugarCrepe's ``swap_att``); ``group`` is the key of a macro
    average (ARO's relation or attribute pair); ``metric`` says which definition of accuracy the benchmark's
    official code uses (see :mod:`labclip_utils.benchmarks.metrics`).
    """

    name: str
    images: list[ImageRef]
    image_index: np.ndarray
    options: list[tuple[str, ...]]
    answer: np.ndarray
    subset: np.ndarray
    source: Path
    group: np.ndarray | None = None
    metric: str = "accuracy"
    ties: str = "strict"
    notes: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.options)
        for label, arr in (("image_index", self.image_index), ("answer", self.answer), ("subset", self.subset)):
            if len(arr) != n:
                raise ValueError(f"{self.name}: {label} has {len(arr)} entries for {n} items")
        if n == 0:
            raise BenchmarkFormatError(f"{self.source}: no items")

    def __len__(self) -> int:
        return len(self.options)

    @property
    def texts(self) -> list[str]:
        """Every distinct caption, in first-seen order."""
        return list(dict.fromkeys(t for opts in self.options for t in opts))

    def fingerprint(self) -> str:
        """Changes when any caption, answer, image reference or image file (size, mtime) changes."""
        return _digest([self.name, self.options, self.answer.tolist(), self.image_index.tolist(),
                        _files_signature(self.images)])

    def take(self, keep: np.ndarray | Sequence[int] | Sequence[bool]) -> ChoiceTask:
        """The items selected by a boolean mask or an index list (images not used any more are kept)."""
        keep = np.asarray(keep)
        idx = np.flatnonzero(keep) if keep.dtype == bool else keep.astype(np.int64)
        return ChoiceTask(self.name, self.images, self.image_index[idx], [self.options[i] for i in idx],
                          self.answer[idx], self.subset[idx], self.source,
                          None if self.group is None else self.group[idx], self.metric, self.ties, dict(self.notes))

    def head(self, n: int) -> ChoiceTask:
        """The first ``n`` items (for quick looks and tests)."""
        return self.take(np.arange(min(n, len(self))))


@dataclass
class RetrievalTask:
    """Image↔text retrieval: caption ``j`` belongs to ``images[text_image[j]]`` (COCO Karpathy test: 5 captions
    per image)."""

    name: str
    images: list[ImageRef]
    texts: list[str]
    text_image: np.ndarray
    source: Path
    notes: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.texts) != len(self.text_image):
            raise ValueError(f"{self.name}: {len(self.texts)} captions but {len(self.text_image)} image indices")
        if not self.texts:
            raise BenchmarkFormatError(f"{self.source}: no captions")

    def __len__(self) -> int:
        return len(self.texts)

    def fingerprint(self) -> str:
        return _digest([self.name, self.texts, self.text_image.tolist(), _files_signature(self.images)])


Task = ChoiceTask | RetrievalTask


def read_json(path: Path) -> object:
    """JSON from ``path``, with an error that names the file when it is missing or broken."""
    if not path.is_file():
        raise BenchmarkFormatError(f"{path}: file is missing")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise BenchmarkFormatError(f"{path}: not valid JSON ({exc})") from exc


def require(record: object, keys: Sequence[str], path: Path, item: object) -> None:
    """Raise a :class:`BenchmarkFormatError` unless ``record`` is a dict with every key."""
    if not isinstance(record, dict):
        raise format_error(path, item, f"expected an object, got {type(record).__name__}")
    missing = [k for k in keys if k not in record]
    if missing:
        raise format_error(path, item, f"missing key(s) {missing}")
