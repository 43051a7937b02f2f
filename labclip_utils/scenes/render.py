"""PIL renderer: shaded glyphs of cubes, spheres, cylinders and cones on a softly lit background.

Rendering is a pure function of a :class:`SceneRecord` and the image size, so a scene is stored as its
record (a few numbers) and re-rendered on demand, identically, at any resolution.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw

from labclip_utils.scenes.world import CLEVR_COLORS, SceneObject, SceneRecord

NOISE_SIGMA = 3.0
NOISE_TILES = 64

RGB = tuple[int, int, int]


@lru_cache(maxsize=4096)
def _mix(rgb: RGB, target: float, t: float) -> RGB:
    """Blend a colour towards white (target=255) or black (target=0) by ``t``."""
    return tuple(int(round(c + (target - c) * t)) for c in rgb)  # type: ignore[return-value]


def _light(rgb: RGB, t: float) -> RGB:
    return _mix(rgb, 255.0, t)


def _dark(rgb: RGB, t: float) -> RGB:
    return _mix(rgb, 0.0, t)


def _cube(d: ImageDraw.ImageDraw, cx: float, cy: float, r: float, rgb: RGB) -> None:
    s, dx, dy = 1.3 * r, 0.4 * r, -0.4 * r
    left, top = cx - 0.85 * r, cy - 0.45 * r
    d.polygon([(left, top), (left + dx, top + dy), (left + s + dx, top + dy), (left + s, top)], fill=_light(rgb, 0.35))
    d.polygon(
        [(left + s, top), (left + s + dx, top + dy), (left + s + dx, top + s + dy), (left + s, top + s)],
        fill=_dark(rgb, 0.35),
    )
    d.rectangle([left, top, left + s, top + s], fill=rgb)


def _sphere(d: ImageDraw.ImageDraw, cx: float, cy: float, r: float, rgb: RGB) -> None:
    steps = max(3, min(8, int(r / 2)))
    for k in range(steps):
        t = k / steps
        rr = 0.9 * r * (1 - 0.7 * t)
        ox, oy = cx - 0.3 * r * t, cy - 0.3 * r * t
        colour = _dark(rgb, 0.3 * (1 - 2 * t)) if t < 0.5 else _light(rgb, 0.5 * (t - 0.5))
        d.ellipse([ox - rr, oy - rr, ox + rr, oy + rr], fill=colour)


def _cylinder(d: ImageDraw.ImageDraw, cx: float, cy: float, r: float, rgb: RGB) -> None:
    w, top, bottom, e = 0.65 * r, cy - 0.55 * r, cy + 0.6 * r, 0.3 * r
    d.ellipse([cx - w, bottom - e, cx + w, bottom + e], fill=_dark(rgb, 0.3))
    strips = 4
    for i in range(strips):
        x0 = cx - w + 2 * w * i / strips
        shade = _light(rgb, 0.2 * (1 - i)) if i < 1 else _dark(rgb, 0.12 * i)
        d.rectangle([x0, top, x0 + 2 * w / strips, bottom], fill=shade)
    d.ellipse([cx - w, top - e, cx + w, top + e], fill=_light(rgb, 0.3))


def _cone(d: ImageDraw.ImageDraw, cx: float, cy: float, r: float, rgb: RGB) -> None:
    apex, base, w, e = (cx, cy - 0.9 * r), cy + 0.6 * r, 0.8 * r, 0.25 * r
    d.ellipse([cx - w, base - e, cx + w, base + e], fill=_dark(rgb, 0.35))
    d.polygon([apex, (cx - w, base), (cx, base + e)], fill=_light(rgb, 0.15))
    d.polygon([apex, (cx, base + e), (cx + w, base)], fill=_dark(rgb, 0.25))


GLYPHS = {"cube": _cube, "sphere": _sphere, "cylinder": _cylinder, "cone": _cone}


def _draw_object(d: ImageDraw.ImageDraw, obj: SceneObject, size: int, bg: RGB) -> None:
    cx, cy, r = obj.x * size, obj.y * size, obj.radius * size
    d.ellipse([cx - 0.6 * r, cy + 0.55 * r, cx + 1.2 * r, cy + 1.0 * r], fill=_dark(bg, 0.25))  # shadow
    GLYPHS[obj.shape](d, cx, cy, r, CLEVR_COLORS[obj.color])
    if obj.material == "metal":  # a specular glint
        g = max(1.0, 0.15 * r)
        d.ellipse([cx - 0.35 * r - g, cy - 0.35 * r - g, cx - 0.35 * r + g, cy - 0.35 * r + g], fill=(245, 245, 245))


@lru_cache(maxsize=8)
def _ramp(size: int) -> np.ndarray:
    return np.linspace(1.12, 0.88, size, dtype=np.float32)[:, None, None]  # light from above


@lru_cache(maxsize=4)
def _noise_bank(size: int) -> np.ndarray:
    """A fixed bank of Gaussian noise tiles (drawing fresh noise per scene would triple the render time)."""
    rng = np.random.default_rng(20250205)
    bank = rng.normal(0.0, NOISE_SIGMA, size=(NOISE_TILES, size, size, 3))
    return np.clip(np.round(bank), -127, 127).astype(np.int16)


def render(record: SceneRecord, size: int = 64) -> np.ndarray:
    """Render a generated scene as a ``size``×``size``×3 uint8 array (deterministic per record)."""
    if record.seed is None:
        raise ValueError("only generated scenes (with a seed) can be rendered; this one comes from an image file")
    if size < 16:
        raise ValueError(f"image size must be at least 16 px, got {size}")
    unknown = [o.color for o in record.objects if o.color not in CLEVR_COLORS]
    if unknown:
        raise ValueError(f"cannot render colours {unknown}: the renderer knows {tuple(CLEVR_COLORS)}")
    level = np.asarray(record.background, dtype=np.float32) * 255.0
    canvas = np.broadcast_to(_ramp(size) * level, (size, size, 3))
    image = Image.fromarray(np.clip(canvas, 0, 255).astype(np.uint8))
    bg = tuple(int(v) for v in level)
    draw = ImageDraw.Draw(image)
    for obj in sorted(record.objects, key=lambda o: o.y):  # nearer (lower) objects drawn last
        _draw_object(draw, obj, size, bg)  # type: ignore[arg-type]
    noise = _noise_bank(size)[record.seed % NOISE_TILES]
    return np.clip(np.asarray(image, dtype=np.int16) + noise, 0, 255).astype(np.uint8)
