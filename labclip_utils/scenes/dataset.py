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
from tqdm.auto import tqdm

from labclip_utils.scenes.captions import CaptionStyle, Pair, caption_order, caption_text
from labclip_utils.scenes.negatives import NEGATIVES, NoNegative
from labclip_utils.scenes.render import RENDERER_VERSION, render
from labclip_utils.scenes.splits import SPLITS, compositional_split, iid_split
from labclip_utils.scenes.world import CLEVR_COLORS, SHAPES, SPAR_COLORS, WORLDS, SceneRecord, sample_scene, scene_seed


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
    split: str = "compositional"
    test: float = 0.1
    val: float = 0.1
    split_seed: int = 42
    image_size: int = 64

    def __post_init__(self) -> None:
        if self.negative not in NEGATIVES:
            raise ValueError(f"unknown negative {self.negative!r}; choose one of {sorted(NEGATIVES)}")
        if self.split not in ("compositional", "iid"):
            raise ValueError(f"unknown split {self.split!r}; choose 'compositional' or 'iid'")

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
        make_negative = NEGATIVES[settings.negative]
        for i, (rec, pairs) in enumerate(zip(self.records, self.pairs, strict=True)):
            rng = np.random.default_rng([rec.seed if rec.seed is not None else i, 11])
            try:
                self.negative_pairs.append(make_negative(pairs, self.attributes, self.objects, rng))
            except NoNegative:
                self.negative_pairs.append(None)
        self.negatives = [None if p is None else caption_text(p, style.article) for p in self.negative_pairs]
        if settings.split == "compositional":
            self.split = compositional_split(self.pairs, settings.test, settings.val, settings.split_seed)
        else:
            self.split = iid_split(len(self.records), settings.test, settings.val, settings.split_seed)

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
        out.name = f"{self.name}[{split if isinstance(split, str) else 'subset'}]"
        return out

    def head(self, n: int) -> SceneDataset:
        """The first ``n`` scenes (all of them if there are fewer)."""
        return self.select(np.arange(len(self)) < n)

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
        h.update(json.dumps({"renderer": RENDERER_VERSION, "settings": self.settings.to_json()}).encode())
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
