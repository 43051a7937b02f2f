"""Scene vocabulary, the scene record, and the three worlds (``clevr``, ``spar``, ``spare``).

A scene is a tuple of objects, each with an attribute (a colour), an object name (a shape), a size and a
position. The worlds differ only in how attributes relate to positions:

- ``clevr``: free positions; attributes independent of position (CLEVR, as LABCLIP renders it).
- ``spar``: PUG:SPAR's shortcut. The first object sits left (or below) and takes its colour from one set,
  the second sits right (or above) and takes the paired colour from another, so position predicts colour.
- ``spare``: the same objects and colours as ``spar``, with positions and colours decorrelated (PUG:SPARE).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

#: CLEVR's ``properties.json`` colours (RGB).
CLEVR_COLORS: dict[str, tuple[int, int, int]] = {
    "gray": (87, 87, 87),
    "red": (173, 35, 35),
    "blue": (42, 75, 215),
    "green": (29, 105, 20),
    "brown": (129, 74, 25),
    "purple": (129, 38, 192),
    "cyan": (41, 208, 208),
    "yellow": (255, 238, 51),
}
SHAPES: tuple[str, ...] = ("cube", "sphere", "cylinder", "cone")
#: CLEVR's two sizes, as ``properties.json`` gives them (scene units).
SIZES: dict[str, float] = {"large": 0.7, "small": 0.35}
MATERIALS: tuple[str, ...] = ("rubber", "metal")
#: PUG:SPAR pairs its textures: (Blue, Red) and (Grass, Stone). Our colour analogue: first object's colour
#: from the first column, the second object's from the second.
SPAR_PAIRS: tuple[tuple[str, str], ...] = (("blue", "red"), ("green", "gray"))
SPAR_COLORS: tuple[str, ...] = ("blue", "red", "green", "gray")
WORLDS: tuple[str, ...] = ("clevr", "spar", "spare")
MAX_OBJECTS = 16


@dataclass(frozen=True)
class SceneObject:
    """One object. ``x``, ``y`` are the centre in [0, 1] image coordinates (y grows downwards); ``radius``
    is in the same units. ``color`` is the attribute, ``shape`` the object name (for PUG: texture, animal)."""

    shape: str
    color: str
    size: str = "large"
    material: str = "rubber"
    x: float = float("nan")
    y: float = float("nan")
    radius: float = float("nan")


@dataclass(frozen=True)
class SceneRecord:
    """Everything needed to describe (and, for generated scenes, re-render) one image.

    ``objects`` are in the scene's own order (for ``spar``/``spare`` the first is PUG's character 1).
    Generated scenes carry their render parameters; loaded ones carry ``image_file`` instead.
    """

    objects: tuple[SceneObject, ...]
    world: str = "clevr"
    seed: int | None = None
    background: tuple[float, float, float] = (0.62, 0.62, 0.62)
    image_file: str | None = None
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def colors(self) -> tuple[str, ...]:
        return tuple(o.color for o in self.objects)

    @property
    def shapes(self) -> tuple[str, ...]:
        return tuple(o.shape for o in self.objects)


def scene_seed(seed: int, index: int) -> int:
    """A per-scene seed: scene ``index`` of a run is the same whatever the number of scenes asked for."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def _grid_cells(k: int, rng: np.random.Generator, n: int, allowed: list[int] | None = None) -> list[int]:
    pool = np.arange(k * k) if allowed is None else np.asarray(allowed)
    return [int(c) for c in rng.choice(pool, size=n, replace=False)]


def _place(cells: list[int], k: int, sizes: list[str], rng: np.random.Generator) -> list[tuple[float, float, float]]:
    """Centre and radius for each object inside its own grid cell: objects never overlap."""
    cell = 1.0 / k
    large = min(0.16, 0.45 * cell)
    placed = []
    for c, size in zip(cells, sizes, strict=True):
        r = large if size == "large" else 0.62 * large
        row, col = divmod(c, k)
        slack = max(0.0, cell / 2 - r)
        x = (col + 0.5) * cell + rng.uniform(-slack, slack)
        y = (row + 0.5) * cell + rng.uniform(-slack, slack)
        placed.append((float(x), float(y), float(r)))
    return placed


def _pick(rng: np.random.Generator, vocab: tuple[str, ...], n: int, distinct: bool) -> list[str]:
    if distinct and n > len(vocab):
        raise ValueError(f"cannot draw {n} distinct values from {len(vocab)}: {vocab}")
    idx = rng.choice(len(vocab), size=n, replace=not distinct)
    return [vocab[i] for i in idx]


def sample_scene(
    world: str,
    n_objects: int,
    seed: int,
    *,
    colors: tuple[str, ...] | None = None,
    shapes: tuple[str, ...] = SHAPES,
    distinct_colors: bool | None = None,
    distinct_shapes: bool | None = None,
) -> SceneRecord:
    """Draw one scene of ``world`` from its own seed (see :func:`scene_seed`).

    ``distinct_*=None`` means distinct whenever the vocabulary is large enough for ``n_objects`` (so every
    scene has an attribute-swap negative); ``True`` insists, ``False`` allows repeats.
    """
    if world not in WORLDS:
        raise ValueError(f"unknown world {world!r}; choose one of {WORLDS}")
    if not 1 <= n_objects <= MAX_OBJECTS:
        raise ValueError(f"n_objects must be in 1..{MAX_OBJECTS}, got {n_objects}")
    unknown = [s for s in shapes if s not in SHAPES]
    if unknown:
        raise ValueError(f"unknown shapes {unknown}; the renderer draws {SHAPES}")
    rng = np.random.default_rng(seed)
    if world == "clevr":
        palette = tuple(colors or CLEVR_COLORS)
        bad = [c for c in palette if c not in CLEVR_COLORS]
        if bad:
            raise ValueError(f"unknown colours {bad}; CLEVR's are {tuple(CLEVR_COLORS)}")
        cols = _pick(rng, palette, n_objects, n_objects <= len(palette) if distinct_colors is None else distinct_colors)
        k = max(3, math.ceil(math.sqrt(n_objects)) + 1)
        cells = _grid_cells(k, rng, n_objects)
    else:
        if n_objects != 2:
            raise ValueError(f"the {world!r} world has exactly 2 objects (as PUG:SPAR/SPARE), got {n_objects}")
        if colors is not None:
            raise ValueError(f"the {world!r} world uses PUG:SPAR's paired colours {SPAR_PAIRS}; do not pass colors")
        k = 3
        if world == "spar":
            cols = list(SPAR_PAIRS[rng.integers(len(SPAR_PAIRS))])
            horizontal = bool(rng.integers(2))
            first = [r * 3 + 0 for r in range(3)] if horizontal else [6, 7, 8]  # left column / bottom row
            second = [r * 3 + 2 for r in range(3)] if horizontal else [0, 1, 2]  # right column / top row
            cells = [_grid_cells(k, rng, 1, first)[0], _grid_cells(k, rng, 1, second)[0]]
        else:
            cols = _pick(rng, SPAR_COLORS, 2, True)
            cells = _grid_cells(k, rng, 2)
    shp = _pick(rng, shapes, n_objects, n_objects <= len(shapes) if distinct_shapes is None else distinct_shapes)
    sizes = [("large", "small")[i] for i in rng.integers(2, size=n_objects)]
    materials = [MATERIALS[i] for i in rng.integers(2, size=n_objects)]
    placed = _place(cells, k, sizes, rng)
    objects = [
        SceneObject(shape=s, color=c, size=z, material=m, x=x, y=y, radius=r)
        for s, c, z, m, (x, y, r) in zip(shp, cols, sizes, materials, placed, strict=True)
    ]
    if world == "clevr":  # CLEVR scenes have no privileged object: keep them left to right
        objects.sort(key=lambda o: o.x)
    level = rng.uniform(0.5, 0.75)
    tint = rng.uniform(-0.03, 0.03, size=3)
    background = tuple(float(np.clip(level + t, 0, 1)) for t in tint)
    return SceneRecord(objects=tuple(objects), world=world, seed=seed, background=background)
