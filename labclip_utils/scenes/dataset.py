"""The scene dataset: records + captions + hard negatives + split, yielding ``(image, caption, negative, labels)``.

Generated scenes are stored as records and rendered on demand; scenes read from disk (CLEVR renders,
PUG:SPAR, PUG:SPARE, or generated scenes saved earlier) load their image files. Both look the same to a
chapter.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from PIL import Image

from labclip_utils.io.hashing import code_digest
from labclip_utils.progress import tqdm
from labclip_utils.scenes.captions import CaptionStyle, Pair, caption_order, caption_set_key, caption_text
from labclip_utils.scenes.negatives import NEGATIVES, NoNegative
from labclip_utils.scenes.paper_split import clevr_paper_split, pug_pair_labels, pug_paper_split
from labclip_utils.scenes.render import render
from labclip_utils.scenes.splits import SPLITS, compositional_split, iid_split
from labclip_utils.scenes.world import (
    CLEVR_COLORS,
    SHAPES,
    SPAR_COLORS,
    SPAR_PAIRS,
    WORLDS,
    SceneRecord,
    sample_scene,
    scene_seed,
)

#: How a dataset is split: ours (``compositional``: held-out bags of words, by a seeded hash), the paper's exact
#: procedure (``paper``), or at random (``iid``).
SPLIT_KINDS = ("compositional", "paper", "iid")


class Sample(NamedTuple):
    """One item: a PIL image, its caption, its hard negative (None when the scene admits none), labels."""

    image: Image.Image
    caption: str
    negative: str | None
    labels: dict[str, Any]


@dataclass(frozen=True)
class SceneSettings:
    """How captions, negatives and the split are derived from the records (saved beside the data)."""

    style: CaptionStyle = field(default_factory=CaptionStyle)
    negative: str = "swap_attribute"
    #: How a swapped caption is written. ``"caption_set"`` (the paper's): as the caption set writes that
    #: combination; on PUG:SPAR the caption set always names the Blue/Grass animal first, so the swap of "Blue o1 and
    #: Red o2" is "Blue o2 and Red o1"; with the CLEVR caption set's order (``style.order="caption_set"``) the
    #: negative keeps the caption's colour order and swaps the shapes. ``"mirror"``: the caption's own order
    #: ("Red o1 and Blue o2").
    negative_order: str = "caption_set"
    #: A scene that admits no negative (CLEVR: two objects of one colour). ``"skip"`` (the book's): no negative, so
    #: the scene is left out of LABCLIP's training and of the swap test. ``"caption"`` (the authors' CLEVR code):
    #: the negative is the caption itself; LABCLIP trains on the row, the swap test still leaves it out.
    unswappable: str = "skip"
    split: str = "compositional"
    test: float = 0.1
    val: float = 0.1
    split_seed: int = 42
    image_size: int = 64

    def __post_init__(self) -> None:
        if self.negative not in NEGATIVES:
            raise ValueError(f"unknown negative {self.negative!r}; choose one of {sorted(NEGATIVES)}")
        if self.split not in SPLIT_KINDS:
            raise ValueError(f"unknown split {self.split!r}; choose one of {SPLIT_KINDS}")
        if self.negative_order not in ("caption_set", "mirror"):
            raise ValueError(f"unknown negative order {self.negative_order!r}; choose 'caption_set' or 'mirror'")
        if self.unswappable not in ("skip", "caption"):
            raise ValueError(f"unknown unswappable rule {self.unswappable!r}; choose 'skip' or 'caption'")

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> SceneSettings:
        data = dict(data)
        data["style"] = CaptionStyle(**data.get("style", {}))
        return cls(**data)


class SceneDataset(Sequence):
    """Scenes with captions, negatives, labels and a split.

    Build one with :func:`make_scenes` or read one with :func:`labclip_utils.scenes.load_scenes`.
    """

    def __init__(
        self,
        records: Sequence[SceneRecord],
        settings: SceneSettings = SceneSettings(),
        *,
        root: Path | None = None,
        name: str = "scenes",
        attributes: Sequence[str] | None = None,
        objects: Sequence[str] | None = None,
    ) -> None:
        self.records = list(records)
        if not self.records:
            raise ValueError(f"{name}: no scenes")
        self.settings = settings
        self.root = Path(root) if root is not None else None
        self.name = name
        self.attributes = tuple(attributes or sorted({c for r in self.records for c in r.colors}))
        self.objects = tuple(objects or sorted({s for r in self.records for s in r.shapes}))
        style = settings.style
        #: For each scene, its objects' indices in caption order.
        self.order: list[list[int]] = [caption_order(r, style, salt=i) for i, r in enumerate(self.records)]
        self.pairs: list[tuple[Pair, ...]] = [
            tuple((r.objects[j].color, r.objects[j].shape) for j in order)
            for r, order in zip(self.records, self.order, strict=True)
        ]
        self.captions = [caption_text(p, style.article) for p in self.pairs]
        self.negative_pairs: list[tuple[Pair, ...] | None] = []
        for i, (rec, pairs) in enumerate(zip(self.records, self.pairs, strict=True)):
            rng = np.random.default_rng([rec.seed if rec.seed is not None else i, 11])
            kind = settings.negative
            if kind == "swap_attribute" and settings.negative_order == "caption_set" and rec.world == "spar":
                kind = "swap_object"  # the same scene, written with the attributes in the caption's order
            try:
                negative = NEGATIVES[kind](pairs, self.attributes, self.objects, rng)
            except NoNegative:
                negative = pairs if settings.unswappable == "caption" else None
            if negative is not None and style.order == "caption_set" and settings.negative_order == "caption_set":
                negative = tuple(sorted(negative, key=caption_set_key))  # written as the caption set writes it
            self.negative_pairs.append(negative)
        self.negatives = [None if p is None else caption_text(p, style.article) for p in self.negative_pairs]
        #: For the paper's split: its (train, val, test) row lists, which may repeat rows (see ``paper_split``).
        self.paper_indices: tuple[list[int], list[int], list[int]] | None = None
        if settings.split == "compositional":
            self.split = compositional_split(self.pairs, settings.test, settings.val, settings.split_seed)
        elif settings.split == "iid":
            self.split = iid_split(len(self.records), settings.test, settings.val, settings.split_seed)
        else:
            self.paper_indices = paper_split(self.records, settings.split_seed)
            self.split = np.full(len(self.records), "train", dtype=object)
            self.split[self.paper_indices[1]] = "val"
            self.split[self.paper_indices[2]] = "test"  # a row in both lists is a test row here

    # -- sequence protocol -------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> Sample:  # type: ignore[override]
        if not -len(self) <= i < len(self):
            raise IndexError(f"{self.name}: index {i} out of range for {len(self)} scenes")
        return Sample(Image.fromarray(self.image(i)), self.captions[i], self.negatives[i], self.labels(i))

    def __iter__(self) -> Iterator[Sample]:
        return (self[i] for i in range(len(self)))

    def __repr__(self) -> str:
        counts = ", ".join(f"{s}={int((self.split == s).sum())}" for s in SPLITS)
        return f"SceneDataset({self.name!r}, {len(self)} scenes, {self.settings.split} split: {counts})"

    # -- content -----------------------------------------------------------------------------------------
    def labels(self, i: int) -> dict[str, Any]:
        """Per-object labels in caption order, plus the world and split."""
        objs = [self.records[i].objects[j] for j in self.order[i]]
        return {
            "colors": [o.color for o in objs],
            "shapes": [o.shape for o in objs],
            "sizes": [o.size for o in objs],
            "positions": [(o.x, o.y) for o in objs],
            "world": self.records[i].world,
            "split": str(self.split[i]),
        }

    def image(self, i: int) -> np.ndarray:
        """The ``i``-th image as an H×W×3 uint8 array (rendered, or read from disk)."""
        rec = self.records[i]
        if rec.image_file is not None:
            if self.root is None:
                raise ValueError(f"{self.name}: scene {i} names {rec.image_file!r} but the dataset has no root")
            path = self.root / rec.image_file
            try:
                with Image.open(path) as im:
                    return np.asarray(im.convert("RGB"))
            except (OSError, ValueError) as err:
                raise ValueError(f"{path}: cannot read image ({err})") from err
        return render(rec, self.settings.image_size)

    def images(self, indices: Sequence[int] | None = None, progress: bool = False) -> np.ndarray:
        """Images as one N×H×W×3 uint8 array."""
        idx = range(len(self)) if indices is None else indices
        return np.stack([self.image(i) for i in tqdm(idx, desc=f"images ({self.name})", disable=not progress)])

    def attribute_matrix(self, key: str = "colors") -> np.ndarray:
        """An N×k array of labels (``colors``, ``shapes`` or ``sizes``) in caption order."""
        if key not in ("colors", "shapes", "sizes"):
            raise ValueError(f"unknown label {key!r}")
        rows = [self.labels(i)[key] for i in range(len(self))]
        if len({len(r) for r in rows}) != 1:
            raise ValueError(f"{self.name}: scenes have different numbers of objects; no rectangular matrix")
        return np.array(rows, dtype=object)

    def select(self, split: str | Sequence[bool] | np.ndarray) -> SceneDataset:
        """A new dataset with the scenes of one split (``"train"``...) or a boolean mask.

        Captions, negatives and the split labels are carried over unchanged.
        """
        mask = (self.split == split) if isinstance(split, str) else np.asarray(split, dtype=bool)
        if isinstance(split, str) and split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; choose one of {SPLITS}")
        if len(mask) != len(self):
            raise ValueError(f"mask has {len(mask)} entries for {len(self)} scenes")
        keep = np.flatnonzero(mask)
        out = object.__new__(SceneDataset)
        out.__dict__.update(self.__dict__)
        out.records = [self.records[i] for i in keep]
        for name in ("order", "pairs", "captions", "negative_pairs", "negatives"):
            setattr(out, name, [getattr(self, name)[i] for i in keep])
        out.split = self.split[keep]
        out.paper_indices = None  # row lists of the whole dataset: meaningless for a subset
        out.name = f"{self.name}[{split if isinstance(split, str) else 'subset'}]"
        return out

    def head(self, n: int) -> SceneDataset:
        """The first ``n`` scenes (all of them if there are fewer)."""
        return self.select(np.arange(len(self)) < n)

    def bag_of_concepts(self) -> np.ndarray:
        """N × (attributes + objects) multi-hot: which attributes and which objects each scene shows. All the
        unbound information and none of the binding: the miniature's image-tower target and the probes' control."""
        attrs = {a: i for i, a in enumerate(self.attributes)}
        objs = {o: len(attrs) + i for i, o in enumerate(self.objects)}
        x = np.zeros((len(self), len(attrs) + len(objs)), dtype=np.float32)
        for i, pairs in enumerate(self.pairs):
            for a, o in pairs:
                x[i, attrs[a]] = 1
                x[i, objs[o]] = 1
        return x

    def same_combination(self) -> np.ndarray:
        """N×N booleans: does scene ``j``'s caption describe scene ``i``'s combination? (The relevance of
        retrieval when combinations repeat.)"""
        keys = [tuple(sorted(p)) for p in self.pairs]
        index = {k: i for i, k in enumerate(sorted(set(keys)))}
        ids = np.array([index[k] for k in keys])
        return ids[:, None] == ids[None, :]

    def to_frame(self) -> pd.DataFrame:
        """One row per scene: caption, negative, split, world and image file."""
        return pd.DataFrame(
            {
                "caption": self.captions,
                "negative": self.negatives,
                "split": self.split,
                "world": [r.world for r in self.records],
                "n_objects": [len(r.objects) for r in self.records],
                "image_file": [r.image_file for r in self.records],
            }
        )

    def fingerprint(self) -> str:
        """A content hash: changes whenever any image, caption, negative or split would change."""
        h = hashlib.sha256()
        renderer = code_digest("labclip_utils.scenes.render")
        h.update(json.dumps({"renderer": renderer, "settings": self.settings.to_json()}).encode())
        for rec, cap, neg, split in zip(self.records, self.captions, self.negatives, self.split, strict=True):
            objs = [asdict(o) for o in rec.objects]
            h.update(json.dumps([objs, rec.seed, rec.background, rec.image_file, cap, neg, split]).encode())
        return h.hexdigest()[:16]

    def with_settings(self, **changes: Any) -> SceneDataset:
        """The same scenes with other caption/negative/split settings."""
        return SceneDataset(
            self.records, replace(self.settings, **changes), root=self.root, name=self.name,
            attributes=self.attributes, objects=self.objects,
        )


def make_scenes(
    n: int,
    world: str = "clevr",
    n_objects: int = 2,
    seed: int = 0,
    *,
    image_size: int = 64,
    style: CaptionStyle | None = None,
    negative: str = "swap_attribute",
    split: str = "compositional",
    test: float = 0.1,
    val: float = 0.1,
    split_seed: int = 42,
    colors: Sequence[str] | None = None,
    shapes: Sequence[str] = SHAPES,
    progress: bool = False,
) -> SceneDataset:
    """Generate ``n`` scenes of a world (``clevr``, ``spar`` or ``spare``); deterministic per ``seed``.

    Scene ``i`` depends only on ``(seed, i)``, so asking for more scenes extends the same sequence.
    """
    if world not in WORLDS:
        raise ValueError(f"unknown world {world!r}; choose one of {WORLDS}")
    if n < 1:
        raise ValueError(f"n must be positive, got {n}")
    palette = tuple(colors) if colors else None
    records = [
        sample_scene(world, n_objects, scene_seed(seed, i), colors=palette, shapes=tuple(shapes))
        for i in tqdm(range(n), desc=f"sampling {world} scenes", disable=not progress)
    ]
    settings = SceneSettings(
        style=style or CaptionStyle(), negative=negative, split=split, test=test, val=val,
        split_seed=split_seed, image_size=image_size,
    )
    vocab = tuple(colors) if colors else (tuple(CLEVR_COLORS) if world == "clevr" else SPAR_COLORS)
    return SceneDataset(
        records, settings, name=f"{world}-{n_objects}obj-seed{seed}", attributes=vocab, objects=tuple(shapes)
    )


def paper_split(records: Sequence[SceneRecord], seed: int = 42) -> tuple[list[int], list[int], list[int]]:
    """The paper's split of these scenes (CLEVR's or PUG's procedure, by world), as ``(train, val, test)`` rows."""
    worlds = {r.world for r in records}
    if len(worlds) != 1:
        raise ValueError(f"the paper's split needs scenes of one world, got {sorted(worlds)}")
    world = worlds.pop()
    if world == "clevr":
        labels = [tuple(v for o in r.objects for v in (o.color, o.shape)) for r in records]
        if any(len(label) != 4 for label in labels):
            raise ValueError("the paper's CLEVR split is defined for 2-object scenes")
        return clevr_paper_split(labels, seed=seed)
    rows = [(r.objects[0].color, r.objects[0].shape, r.objects[1].color, r.objects[1].shape) for r in records]
    pairs = None
    if world == "spar":
        real = {t for row in rows for t in (row[0], row[2])} <= {"Blue", "Red", "Grass", "Stone"}
        pairs = (("Blue", "Red"), ("Grass", "Stone")) if real else SPAR_PAIRS
    return pug_paper_split(rows, pug_pair_labels(rows, pairs), seed=seed)
