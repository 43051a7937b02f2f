"""The two kinds of evaluation task, built from benchmark files or from scenes in memory.

A task holds *references* to its images, never pixels: an :class:`ImageRef` (a file, optionally a crop box) or a
:class:`SceneImage` (a generated scene, rendered on demand). So building a task is cheap, and the evaluation runner
(:mod:`labclip_utils.evaluation`) can encode each unique image and caption once, through the embedding store.

- :class:`ChoiceTask`: "which caption fits this image?" (the swap test, ARO, SugarCrepe, the order tests);
- :class:`RetrievalTask`: image↔text retrieval (COCO's Karpathy test split).

:func:`swap_task` turns any scene dataset, generated or read from CLEVR/PUG files, into the swap test.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal, Protocol

import numpy as np
from PIL import Image

from labclip_utils.io.hashing import code_digest, key_digest
from labclip_utils.metrics import RetrievalTies, Ties, check_retrieval_ties, check_ties
from labclip_utils.scenes.splits import SPLITS


class BenchmarkFormatError(ValueError):
    """A benchmark file is malformed or refers to something that is not there."""


class ImageSource(Protocol):
    """Anything a task can show: it loads an RGB image and has a content signature for cache keys."""

    def load(self) -> Image.Image: ...

    def signature(self) -> object: ...


@dataclass(frozen=True)
class ImageRef:
    """An image file, optionally cropped to ``box = (left, top, right, bottom)`` in pixels (ARO's VG crops)."""

    path: str
    box: tuple[float, float, float, float] | None = None

    def load(self) -> Image.Image:
        """The RGB image (cropped when ``box`` is set)."""
        try:
            with Image.open(self.path) as image:
                image = image.convert("RGB")
        except FileNotFoundError as exc:
            raise BenchmarkFormatError(f"{self.path}: image file is missing") from exc
        except (OSError, ValueError) as exc:
            raise BenchmarkFormatError(f"{self.path}: cannot read the image ({exc})") from exc
        return image.crop(tuple(int(round(v)) for v in self.box)) if self.box else image

    def signature(self) -> list:
        """Path, crop box, and the file's size and modification time (a changed file changes the signature)."""
        stat = Path(self.path).stat()
        return [self.path, self.box, stat.st_size, stat.st_mtime_ns]


@dataclass(frozen=True)
class SceneImage:
    """Scene ``index`` of a generated dataset, rendered when loaded. Equal scenes (same record, same image size,
    same renderer code) are equal references, wherever they come from."""

    key: str
    dataset: object = field(compare=False, hash=False, repr=False)
    index: int = field(compare=False)

    def load(self) -> Image.Image:
        return Image.fromarray(self.dataset.image(self.index))  # type: ignore[attr-defined]

    def signature(self) -> str:
        return self.key


def scene_images(ds) -> list[ImageSource]:
    """One image reference per scene of ``ds``: its file for scenes read from disk, else a :class:`SceneImage`."""
    renderer = code_digest("labclip_utils.scenes.render")
    size = ds.settings.image_size
    out: list[ImageSource] = []
    for i, rec in enumerate(ds.records):
        if rec.image_file is not None:
            if ds.root is None:
                raise ValueError(f"{ds.name}: scene {i} names {rec.image_file!r} but the dataset has no root")
            path = Path(ds.root) / rec.image_file
            if not path.is_file():
                raise BenchmarkFormatError(f"{ds.root} (scene {i}): image file {rec.image_file} is missing")
            out.append(ImageRef(str(path)))
        else:
            content = json.dumps([[asdict(o) for o in rec.objects], rec.seed, rec.background, size, renderer])
            out.append(SceneImage(hashlib.sha1(content.encode()).hexdigest(), ds, i))
    return out


def unique_images(refs: Sequence[ImageSource]) -> tuple[list[ImageSource], np.ndarray]:
    """The distinct references in first-seen order, and each item's index into them."""
    index: dict[ImageSource, int] = {}
    inverse = np.array([index.setdefault(r, len(index)) for r in refs], dtype=np.int64)
    return list(index), inverse


def images_signature(images: Sequence[ImageSource]) -> str:
    return key_digest([r.signature() for r in images])


Score = Literal["cosine", "raw_text_dot"]


@dataclass
class ChoiceTask:
    """Items of "which caption fits this image?": item ``i`` shows ``images[image_index[i]]`` with the
    captions ``options[i]``, and ``options[i][answer[i]]`` is right.

    ``subset`` names the part of the benchmark (SugarCrepe's ``swap_att``); ``group`` is the key of a macro
    average (ARO's relation or attribute pair); ``metric`` says which family of definitions applies (``binding``,
    ``aro``, ``sugarcrepe`` or ``accuracy``) and ``ties`` the tie rule (:mod:`labclip_utils.metrics`).
    ``score="raw_text_dot"`` scores plain CLIP with un-normalised text embeddings, as the paper's CLEVR code does.
    """

    name: str
    images: list[ImageSource]
    image_index: np.ndarray
    options: list[tuple[str, ...]]
    answer: np.ndarray
    subset: np.ndarray
    source: Path | str
    group: np.ndarray | None = None
    metric: str = "accuracy"
    ties: Ties = "strict"
    score: Score = "cosine"
    notes: dict = field(default_factory=dict)
    #: What to encode for this task, when it is part of a larger scene dataset: that dataset's whole request
    #: (images, texts), so that a split's task and the dataset's embeddings share one cache entry.
    context: tuple[list[ImageSource], list[str]] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_ties(self.ties)
        self.image_index = np.asarray(self.image_index, dtype=np.int64)
        given = np.asarray(self.answer)
        if given.dtype.kind not in "iub":
            try:
                whole = np.asarray(given, dtype=np.float64)
                fractional = np.flatnonzero(~np.isfinite(whole) | (whole != np.round(whole)))
            except (TypeError, ValueError):
                fractional = np.arange(min(len(given), 1))
            if len(fractional):
                i = int(fractional[0])
                raise BenchmarkFormatError(f"{self.source} (item {i}): answer {given[i].item()!r} is not a whole "
                                           "option index")
        self.answer = given.astype(np.int64)
        n = len(self.options)
        for label, arr in (("image_index", self.image_index), ("answer", self.answer), ("subset", self.subset)):
            if len(arr) != n:
                raise ValueError(f"{self.name}: {label} has {len(arr)} entries for {n} items")
        if n == 0:
            raise BenchmarkFormatError(f"{self.source}: no items")
        widths = np.array([len(o) for o in self.options])
        bad = np.flatnonzero((self.answer < 0) | (self.answer >= widths))
        if len(bad):
            i = int(bad[0])
            raise BenchmarkFormatError(f"{self.source} (item {i}): answer {int(self.answer[i])} is not an option index "
                                       f"(the item has {widths[i]} options)")
        if self.image_index.min() < 0 or self.image_index.max() >= len(self.images):
            raise ValueError(f"{self.name}: image_index must point into the {len(self.images)} images")
        for i, opts in enumerate(self.options):
            if any(not isinstance(t, str) or not t.strip() for t in opts):
                raise BenchmarkFormatError(f"{self.source} (item {i}): every option must be a non-empty string")

    def __len__(self) -> int:
        return len(self.options)

    @property
    def texts(self) -> list[str]:
        """Every distinct caption, in first-seen order."""
        return list(dict.fromkeys(t for opts in self.options for t in opts))

    def fingerprint(self) -> str:
        """Changes when any caption, answer or image (content or file) changes."""
        return key_digest([self.name, self.options, self.answer.tolist(), self.image_index.tolist(),
                       images_signature(self.images)])

    def take(self, keep: np.ndarray | Sequence[int] | Sequence[bool]) -> ChoiceTask:
        """The items selected by a boolean mask or an index list (images not used any more are kept)."""
        keep = np.asarray(keep)
        idx = np.flatnonzero(keep) if keep.dtype == bool else keep.astype(np.int64)
        return ChoiceTask(self.name, self.images, self.image_index[idx], [self.options[i] for i in idx],
                          self.answer[idx], self.subset[idx], self.source,
                          None if self.group is None else self.group[idx], self.metric, self.ties, self.score,
                          dict(self.notes), self.context)

    def head(self, n: int) -> ChoiceTask:
        """The first ``n`` items (for quick looks and tests)."""
        return self.take(np.arange(min(n, len(self))))


@dataclass
class RetrievalTask:
    """Image↔text retrieval: caption ``j`` belongs to ``images[text_image[j]]`` (COCO Karpathy test: 5 captions
    per image). ``ties``: how an exact tie in a ranking counts (:data:`~labclip_utils.metrics.RETRIEVAL_TIES`;
    the paper's code gives it to the later column, ``"correct"`` counts every tied column as a hit)."""

    name: str
    images: list[ImageSource]
    texts: list[str]
    text_image: np.ndarray
    source: Path | str
    notes: dict = field(default_factory=dict)
    ties: RetrievalTies = "last"

    def __post_init__(self) -> None:
        check_retrieval_ties(self.ties)
        if len(self.texts) != len(self.text_image):
            raise ValueError(f"{self.name}: {len(self.texts)} captions but {len(self.text_image)} image indices")
        if not self.texts:
            raise BenchmarkFormatError(f"{self.source}: no captions")

    def __len__(self) -> int:
        return len(self.texts)

    def fingerprint(self) -> str:
        return key_digest([self.name, self.texts, self.text_image.tolist(), images_signature(self.images)])


Task = ChoiceTask | RetrievalTask


def scene_request(ds) -> tuple[list[ImageSource], list[str]]:
    """What encoding a scene dataset means: one image per scene, then its captions and its negatives."""
    return scene_images(ds), list(ds.captions) + [n for n in ds.negatives if n is not None]


def swap_task(ds, name: str | None = None, *, split: str | None = None, ties: Ties = "strict",
              score: Score = "cosine") -> ChoiceTask:
    """The swap test on a scene dataset (generated or read from files): each scene's caption against its
    attribute-swapped negative, options ``(negative, caption)``. Scenes without a negative, or whose negative is
    their caption (the authors' CLEVR rows of two same-coloured objects), are left out and counted in ``notes``.
    ``split`` picks one split; the whole dataset is still what gets encoded (once, shared with
    :func:`~labclip_utils.store.embed_scenes`)."""
    if split is not None and split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose 'train', 'val' or 'test'")
    refs, texts = scene_request(ds)
    if split is None:
        rows = list(range(len(ds)))
    elif getattr(ds, "paper_indices", None) is not None:  # the paper's row list, repeats included
        rows = ds.paper_indices[SPLITS.index(split)]
    else:
        rows = np.flatnonzero(np.asarray(ds.split == split)).tolist()
    keep = [i for i in rows if ds.negatives[i] is not None and ds.negatives[i] != ds.captions[i]]
    if not keep:
        raise ValueError(f"{ds.name}: no scene{'' if split is None else f' of split {split!r}'} has a hard negative")
    images, index = unique_images([refs[i] for i in keep])
    label = name or ds.name
    return ChoiceTask(label, images, index, [(ds.negatives[i], ds.captions[i]) for i in keep],
                      np.ones(len(keep), dtype=np.int64), np.array([label] * len(keep), dtype=object),
                      str(ds.root or ds.name), metric="binding", ties=ties, score=score,
                      notes={"split": split or "all", "skipped_without_negative": len(rows) - len(keep)},
                      context=(refs, texts))
