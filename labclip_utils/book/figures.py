"""What every figure of the book carries, and the check every figure passes.

- **A profile label.** Each figure says, in its bottom-right corner and below everything else it draws, which
  profile built it: "offline profile: miniature CLIP, generated data", or the paper profile's CLIP backbones. A slide
  cut from the book can then not be mistaken for a figure of OpenAI's CLIP.
  :func:`labclip_utils.book.plots.set_book_style` installs it as a matplotlib figure hook
  (``rcParams["figure.hooks"]``), so it covers every figure pyplot creates: the plot helpers, pandas' and seaborn's
  plots, a chapter's own ``plt.subplots``.
- **A name and a caption.** :func:`describe` gives a figure's caption (what :func:`set_caption` set, else its
  suptitle or axes titles), a file name made from it and the profile label. In a notebook each displayed figure
  carries them in its output's metadata (``labclip``), where the teacher's figure pack reads them.
- **No overlaps.** :func:`overlaps` lists every pair of things that cover each other: a legend on tick labels, axis
  labels, titles or data; tick labels on each other; a text on a text; a value label struck by a line or a marker.
  With ``$LABCLIP_FIGURE_CHECK=1`` (the book's runner sets it) every cell ends by checking the figures it drew, and a
  figure that fails stops the chapter with a message naming the figure and the two elements.
"""

from __future__ import annotations

import ast
import os
import re
from dataclasses import dataclass

import numpy as np
from matplotlib.text import Text
from matplotlib.transforms import Affine2D, Bbox

from labclip_utils.profile import Profile, current_profile

#: The smallest font size of the book's figures (tick labels, legends, value labels, profile labels).
MIN_FONT = 10
CHECK_ENV = "LABCLIP_FIGURE_CHECK"
HOOK = "labclip_utils.book.figures:label_profile"
#: Two boxes must share more than this many pixels (each way) to count as overlapping: touching is not covering.
TOLERANCE_PX = 1.0
#: Neighbouring tick labels of one axis must be at least this far apart (in em of a 10-point font).
TICK_GAP_EM = 0.5


class FigureOverlapError(AssertionError):
    """A figure in which two elements cover each other."""


# --------------------------------------------------------------------------------------------- the profile label


def profile_label() -> str:
    """How a figure names the profile behind it: ``"offline profile: miniature CLIP, generated data"``, or in the
    paper profile the CLIP backbones (``"CLIP ViT-L-14/openai (synthetic scenes), ViT-B-32/openai (real data),
    paper profile"``)."""
    profile = _chapter_profile()
    if profile.is_offline:
        return "offline profile: miniature CLIP, generated data"

    def name(model: str, weights: str | None) -> str:
        return model if weights is None else f"{model}/{os.path.basename(weights)}"

    synthetic = name(*profile.backbone("synthetic"))
    real = name(*profile.backbone("real"))
    models = f"CLIP {real}" if synthetic == real else f"CLIP {synthetic} (synthetic scenes), {real} (real data)"
    fraction = f", fraction {profile.fraction:g}" if profile.fraction < 1 else ""
    return f"{models}, {profile.name} profile{fraction}"


def _chapter_profile():
    """The profile a chapter runs: the ``profile`` its first cell made with ``use_profile(PROFILE)`` (the PROFILE
    parameter wins over ``$LABCLIP_PROFILE``), else the one the environment selects."""
    try:
        from IPython import get_ipython

        shell = get_ipython()
    except ImportError:
        shell = None
    chosen = shell.user_ns.get("profile") if shell is not None else None
    return chosen if isinstance(chosen, Profile) else current_profile()


class ProfileLabel(Text):
    """A small grey text right-aligned under everything else the figure draws (placed anew at every draw, so that
    it never covers a tick label, a legend or a caption however the figure is laid out or cropped)."""

    def __init__(self, text: str, **kwargs):
        super().__init__(0, 0, text, ha="right", va="top", fontsize=MIN_FONT, color="0.35", style="italic", **kwargs)
        self._pixel_xy = (0.0, 0.0)
        self._placing = False
        self._placed_for = None

    def get_transform(self):
        return Affine2D().translate(*self._pixel_xy)

    def _place(self, renderer, force: bool = True) -> None:
        fig = self.figure
        if self._placing or fig is None:
            return
        key = (fig.dpi, tuple(fig.bbox.bounds))
        if not force and key == self._placed_for:
            return
        self._placing = True
        try:
            boxes = [b for b in (_content_bbox(a, renderer) for a in _figure_content(fig, self)) if b is not None]
            if boxes:
                union = Bbox.union(boxes)
                self._pixel_xy = (union.x1, union.y0 - renderer.points_to_pixels(3))
            self._placed_for = key
        finally:
            self._placing = False

    def draw(self, renderer):
        self._place(renderer)
        super().draw(renderer)

    def get_window_extent(self, renderer=None, dpi=None):
        if renderer is None:
            renderer = self.figure._get_renderer()
        self._place(renderer, force=False)  # where the last draw put it (a draw always places it anew)
        return super().get_window_extent(renderer, dpi)


def _figure_content(fig, exclude=None) -> list:
    content = [ax for ax in fig.axes if ax.get_visible()]
    content += [a for a in (*fig.texts, *fig.legends, *fig.artists, *fig.images)
                if a is not exclude and a.get_visible() and not isinstance(a, ProfileLabel)]
    return content


def _content_bbox(artist, renderer):
    if isinstance(artist, Text) and not artist.get_text().strip():
        return None
    bbox = artist.get_tightbbox(renderer)
    if bbox is None or not (np.isfinite(bbox.width) and np.isfinite(bbox.height)) or (bbox.width == bbox.height == 0):
        return None
    return bbox


def label_profile(fig) -> None:
    """The figure hook: add the profile label to a new figure (once)."""
    _wrap_png_formatter()  # pyplot loads its backend (which registers the figure formatter) on the first figure
    if any(isinstance(a, ProfileLabel) for a in fig.artists):
        return
    try:
        text = profile_label()
    except Exception:  # an unusable profile setting must not break a plot; use_profile reports it
        return
    fig.add_artist(ProfileLabel(text))


# -------------------------------------------------------------------------------------- names and captions


def set_caption(fig, caption: str, name: str | None = None):
    """Give a figure a caption (and a file name other than the caption's slug) for the figure pack."""
    fig._labclip_caption = caption
    if name is not None:
        fig._labclip_name = name
    return fig


def slug(text: str, max_chars: int = 60) -> str:
    """``"Swap test: CLIP, SB and LABCLIP"`` → ``"swap-test-clip-sb-and-labclip"`` (cut between words)."""
    words = re.sub(r"[^a-z0-9]+", " ", text.lower().replace("×", "x")).split()
    out = ""
    for word in words:
        if out and len(out) + 1 + len(word) > max_chars:
            break
        out = f"{out}-{word}" if out else word
    return out[:max_chars] or "figure"


def caption_of(fig) -> str:
    """What :func:`set_caption` set, else the suptitle, else the titles of the axes (joined by "; ")."""
    explicit = getattr(fig, "_labclip_caption", None)
    if explicit:
        return explicit
    suptitle = getattr(fig, "_suptitle", None)
    if suptitle is not None and suptitle.get_text().strip():
        return suptitle.get_text().strip()
    titles = []
    for ax in fig.axes:
        for title in (ax.title, ax._left_title, ax._right_title):
            text = " ".join(title.get_text().split())
            if text and text not in titles:
                titles.append(text)
    return "; ".join(titles)


def describe(fig) -> dict[str, str]:
    """``{"name", "caption", "profile"}`` of a figure (the figure pack's file name, caption and profile)."""
    caption = caption_of(fig)
    label = next((a.get_text() for a in fig.artists if isinstance(a, ProfileLabel)), "")
    name = getattr(fig, "_labclip_name", None) or (slug(caption) if caption else "")
    return {"name": name, "caption": caption, "profile": label}


# ------------------------------------------------------------------------------------------- the overlap check


@dataclass
class _Box:
    name: str
    bbox: Bbox
    kind: str  # "text", "tick", "legend", "axtext" (a text inside an axes: checked against its data too)
    angle: float = 0.0  # degrees, for rotated text
    size: tuple[float, float] | None = None  # unrotated (width, height) of rotated text
    axes: object = None


def _short(text: str, n: int = 40) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def _text_box(t: Text, renderer, name: str, kind: str, axes=None) -> _Box | None:
    if not t.get_visible() or not t.get_text().strip():
        return None
    bbox = t.get_window_extent(renderer)
    if bbox.width <= 0 or bbox.height <= 0 or not np.isfinite(bbox.get_points()).all():
        return None
    angle = float(t.get_rotation()) % 180
    size = None
    if min(angle % 90, 90 - angle % 90) > 1:  # rotated: find the unrotated size from the line height
        lines = max(1, t.get_text().count("\n") + 1)
        _, line_h, _ = renderer.get_text_width_height_descent("lp", t.get_fontproperties(), ismath=False)
        try:
            spacing = float(t.get_linespacing())
        except (TypeError, ValueError):  # "normal"
            spacing = 1.2
        h = line_h * (1 + (lines - 1) * spacing)
        c, s = abs(np.cos(np.radians(angle))), abs(np.sin(np.radians(angle)))
        w = (bbox.width - h * s) / c if c >= s else (bbox.height - h * c) / s
        size = (max(w, 1.0), h)
    return _Box(name, bbox, kind, angle, size, axes)


def _axes_name(ax) -> str:
    title = " ".join(ax.get_title().split())
    return f" of the axes '{_short(title, 30)}'" if title else ""


def _text_boxes(fig, renderer) -> list[_Box]:
    boxes: list[_Box] = []

    def add(box):
        if box is not None:
            boxes.append(box)

    several = sum(ax.get_visible() for ax in fig.axes) > 1
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        where = _axes_name(ax) if several else ""
        for title in (ax.title, ax._left_title, ax._right_title):
            add(_text_box(title, renderer, f"the title '{_short(title.get_text())}'", "text", ax))
        if ax.axison:
            for letter, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
                if not axis.get_visible():
                    continue
                add(_text_box(axis.label, renderer, f"the {letter} label '{_short(axis.label.get_text())}'{where}",
                              "text", ax))
                add(_text_box(axis.offsetText, renderer, f"the {letter} offset '{axis.offsetText.get_text()}'",
                              "text", ax))
                for tick in axis._update_ticks():
                    for label in (tick.label1, tick.label2):
                        add(_text_box(label, renderer, f"the {letter} tick label '{_short(label.get_text())}'{where}",
                                      "tick", (ax, letter)))
        for t in ax.texts:
            add(_text_box(t, renderer, f"the text '{_short(t.get_text())}'{where}", "axtext", ax))
        legend = ax.get_legend()
        if legend is not None and legend.get_visible():
            boxes.append(_Box(f"the legend{where}", legend.get_window_extent(renderer), "legend", axes=ax))
    for t in fig.texts:
        add(_text_box(t, renderer, f"the figure text '{_short(t.get_text())}'", "text"))
    for a in fig.artists:
        if isinstance(a, ProfileLabel):
            add(_text_box(a, renderer, f"the profile label '{_short(a.get_text())}'", "text"))
    for legend in fig.legends:
        if legend.get_visible():
            boxes.append(_Box("the figure legend", legend.get_window_extent(renderer), "legend"))
    return boxes


def _corners(box: _Box) -> np.ndarray:
    b = box.bbox
    if box.size is None:
        return np.array([[b.x0, b.y0], [b.x1, b.y0], [b.x1, b.y1], [b.x0, b.y1]])
    w, h = box.size
    a = np.radians(box.angle)
    u, v = np.array([np.cos(a), np.sin(a)]) * w / 2, np.array([-np.sin(a), np.cos(a)]) * h / 2
    c = np.array([(b.x0 + b.x1) / 2, (b.y0 + b.y1) / 2])
    return np.array([c - u - v, c + u - v, c + u + v, c - u + v])


def _polygons_overlap(p: np.ndarray, q: np.ndarray, tol: float) -> bool:
    """Separating-axis test for two convex quadrilaterals; they must overlap by more than ``tol`` along every axis."""
    for poly in (p, q):
        for i in range(4):
            edge = poly[(i + 1) % 4] - poly[i]
            axis = np.array([-edge[1], edge[0]])
            norm = np.hypot(*axis)
            if norm == 0:
                continue
            axis /= norm
            a, b = p @ axis, q @ axis
            if min(a.max(), b.max()) - max(a.min(), b.min()) <= tol:
                return False
    return True


def _aabb_pairs(bboxes: np.ndarray, tol: float) -> list[tuple[int, int]]:
    x0, y0, x1, y1 = bboxes.T
    ox = np.minimum(x1[:, None], x1[None, :]) - np.maximum(x0[:, None], x0[None, :])
    oy = np.minimum(y1[:, None], y1[None, :]) - np.maximum(y0[:, None], y0[None, :])
    hit = np.triu((ox > tol) & (oy > tol), k=1)
    return [(int(i), int(j)) for i, j in zip(*np.nonzero(hit), strict=True)]


def _segments_hit_box(xy: np.ndarray, bbox: Bbox, tol: float, as_points: bool) -> bool:
    """Whether a polyline (pixel vertices) enters a box shrunk by ``tol``."""
    x0, y0, x1, y1 = bbox.x0 + tol, bbox.y0 + tol, bbox.x1 - tol, bbox.y1 - tol
    if x0 >= x1 or y0 >= y1 or len(xy) == 0:
        return False
    inside = (xy[:, 0] > x0) & (xy[:, 0] < x1) & (xy[:, 1] > y0) & (xy[:, 1] < y1)
    if inside.any():
        return True
    if as_points or len(xy) < 2:
        return False
    p, d = xy[:-1], np.diff(xy, axis=0)
    ok = np.isfinite(p).all(axis=1) & np.isfinite(d).all(axis=1)
    p, d = p[ok], d[ok]
    t0, t1 = np.zeros(len(p)), np.ones(len(p))
    for k, (lo, hi) in enumerate(((x0, x1), (y0, y1))):
        dk, pk = d[:, k], p[:, k]
        flat = np.abs(dk) < 1e-12
        with np.errstate(divide="ignore", invalid="ignore"):
            a, b = (lo - pk) / dk, (hi - pk) / dk
        t0 = np.where(flat, np.where((pk > lo) & (pk < hi), t0, 2.0), np.maximum(t0, np.minimum(a, b)))
        t1 = np.where(flat, t1, np.minimum(t1, np.maximum(a, b)))
    return bool((t0 < t1).any())


def _data_elements(ax, renderer) -> list[tuple[str, object]]:
    """``(name, test)`` for each thing an axes plots, ``test(bbox)`` telling whether it enters a box (a bar's test
    takes ``text=True`` for a text, which may sit wholly inside a bar: a value label written on its bar)."""
    from matplotlib.cbook import STEP_LOOKUP_MAP
    from matplotlib.collections import PathCollection
    from matplotlib.patches import Rectangle

    elements = []
    for line in ax.lines:
        if not line.get_visible():
            continue
        x, y = (np.asarray(v, dtype=float) for v in line.get_data(orig=False))
        if len(x) == 0:
            continue
        style = line.get_drawstyle()
        if style in STEP_LOOKUP_MAP and style != "default" and len(x) > 1:
            x, y = STEP_LOOKUP_MAP[style](x, y)
        xy = line.get_transform().transform(np.column_stack([x, y]))
        as_points = line.get_linestyle() in ("None", "none", "", " ")
        label = line.get_label()
        name = f"the line '{_short(label)}'" if not label.startswith("_") else "a line"
        elements.append((name, lambda bbox, xy=xy, p=as_points, text=False:
                         _segments_hit_box(xy, bbox, TOLERANCE_PX, p)))
    for patch in ax.patches:
        if not patch.get_visible() or not isinstance(patch, Rectangle):
            continue
        extent = patch.get_window_extent(renderer)
        if extent.width < 1 or extent.height < 1:
            continue
        label = patch.get_label()
        name = f"a bar of '{_short(label)}'" if label and not label.startswith("_") else "a bar"
        elements.append((name, lambda bbox, e=extent, text=False: _overlap(e, bbox) and not (
            text and e.x0 <= bbox.x0 and bbox.x1 <= e.x1 and e.y0 <= bbox.y0 and bbox.y1 <= e.y1)))
    for coll in ax.collections:
        if not coll.get_visible() or not isinstance(coll, PathCollection) or not len(coll.get_offsets()):
            continue
        offsets = coll.get_offset_transform().transform(np.asarray(coll.get_offsets(), dtype=float))
        paths, transforms = coll.get_paths(), coll.get_transforms()
        marker = paths[0].get_extents(Affine2D(transforms[0]) if len(transforms) else None)
        # a line marker ("|", "_") has no area: its stroke gives it one
        half = max(float(np.max(coll.get_linewidths(), initial=1.0)) * renderer.points_to_pixels(1.0) / 2, 0.5)
        marker = Bbox.from_extents(marker.x0 - half, marker.y0 - half, marker.x1 + half, marker.y1 + half)
        boxes = np.column_stack([offsets[:, 0] + marker.x0, offsets[:, 1] + marker.y0,
                                 offsets[:, 0] + marker.x1, offsets[:, 1] + marker.y1])
        label = coll.get_label()
        name = f"the markers '{_short(label)}'" if label and not label.startswith("_") else "markers"
        elements.append((name, lambda bbox, b=boxes, text=False: bool(
            ((np.minimum(b[:, 2], bbox.x1) - np.maximum(b[:, 0], bbox.x0) > TOLERANCE_PX)
             & (np.minimum(b[:, 3], bbox.y1) - np.maximum(b[:, 1], bbox.y0) > TOLERANCE_PX)).any())))
    return elements


def _overlap(a: Bbox, b: Bbox, tol: float = TOLERANCE_PX) -> bool:
    return min(a.x1, b.x1) - max(a.x0, b.x0) > tol and min(a.y1, b.y1) - max(a.y0, b.y0) > tol


def overlaps(fig) -> list[str]:
    """Every pair of elements of ``fig`` that cover each other, as sentences (empty: the figure is clean).

    Texts (titles, axis labels, tick labels, texts and annotations, figure texts, the profile label) and legends
    are checked against each other; legends and the texts inside an axes also against what the axes plots (lines,
    bars, markers). Rotated labels are compared as rotated boxes. Draws the figure once (no rasterising)."""
    import matplotlib

    interactive = matplotlib.is_interactive()
    matplotlib.interactive(False)  # a draw must not trigger another (pyplot redraws stale figures when interactive)
    try:
        fig.draw_without_rendering()
        renderer = fig._get_renderer()
        boxes = _text_boxes(fig, renderer)
        problems = []
        if boxes:
            array = np.array([[b.bbox.x0, b.bbox.y0, b.bbox.x1, b.bbox.y1] for b in boxes])
            # neighbouring tick labels of one axis must also keep a gap (half an em): closer, they read as one text
            gap = renderer.points_to_pixels(TICK_GAP_EM * 10) / 2
            ticks = np.array([b.kind == "tick" for b in boxes])
            padded = array + np.where(ticks[:, None], np.array([-gap, -gap, gap, gap]), 0.0)
            for i, j in _aabb_pairs(padded, TOLERANCE_PX):
                a, b = boxes[i], boxes[j]
                neighbours = a.kind == b.kind == "tick" and a.axes == b.axes
                if not neighbours and not _overlap(a.bbox, b.bbox):  # only tick labels of one axis are padded
                    continue
                rotated = a.size is not None or b.size is not None
                tol = -2 * gap if neighbours else TOLERANCE_PX
                if rotated and not _polygons_overlap(_corners(a), _corners(b), tol):
                    continue
                touching = neighbours and not _overlap(a.bbox, b.bbox) and a.size is None and b.size is None
                problems.append(f"{a.name} {'is too close to' if touching else 'overlaps'} {b.name}")
        data = {id(ax): _data_elements(ax, renderer) for ax in fig.axes if ax.get_visible()}
        for box in boxes:
            if box.kind == "legend":
                covered = [(name, test) for elements in data.values() for name, test in elements]
            elif box.kind == "axtext":
                covered = data.get(id(box.axes), [])
            else:
                continue
            for name, test in covered:
                if test(box.bbox, text=box.kind != "legend"):
                    verb = "covers" if box.kind == "legend" else "lies on"
                    problems.append(f"{box.name} {verb} {name}")
        return problems
    finally:
        matplotlib.interactive(interactive)


def check_figure(fig, where: str = "") -> None:
    """Raise :class:`FigureOverlapError` naming the figure and the elements if anything in ``fig`` overlaps."""
    problems = overlaps(fig)
    if problems:
        caption = caption_of(fig) or "(untitled)"
        more = f"\n  (and {len(problems) - 12} more)" if len(problems) > 12 else ""
        listed = "\n  - ".join(problems[:12]) + more
        raise FigureOverlapError(f"figure '{caption}'{where}: elements overlap\n  - {listed}")


def check_open_figures() -> None:
    """Check every open pyplot figure (the end of a notebook cell, before the figures are shown)."""
    import matplotlib.pyplot as plt

    for n, num in enumerate(plt.get_fignums(), 1):
        check_figure(plt.figure(num), f" (figure {n} of this cell)")


class _CheckAtCellEnd(ast.NodeTransformer):
    """Appends :func:`check_open_figures` to every cell, keeping the cell's last expression as its displayed value."""

    def visit_Module(self, node: ast.Module) -> ast.Module:
        check = ast.parse("__import__('labclip_utils.book.figures').book.figures.check_open_figures()").body[0]
        if node.body and isinstance(node.body[-1], ast.Expr):
            last = node.body[-1]
            keep = ast.Assign(targets=[ast.Name("_labclip_cell_value", ast.Store())], value=last.value)
            node.body[-1:] = [keep, check, ast.Expr(ast.Name("_labclip_cell_value", ast.Load()))]
        else:
            node.body.append(check)
        return ast.fix_missing_locations(node)


def install() -> None:
    """Label every new pyplot figure with the profile; in IPython, give displayed figures their name, caption and
    profile as output metadata, and with ``$LABCLIP_FIGURE_CHECK=1`` check every cell's figures at its end."""
    import matplotlib as mpl

    hooks = [h for h in mpl.rcParams["figure.hooks"] if h != HOOK]
    mpl.rcParams["figure.hooks"] = [*hooks, HOOK]
    try:
        from IPython import get_ipython
    except ImportError:
        return
    ip = get_ipython()
    if ip is None:
        return
    if os.environ.get(CHECK_ENV, "") not in ("", "0") and \
            not any(isinstance(t, _CheckAtCellEnd) for t in ip.ast_transformers):
        ip.ast_transformers.append(_CheckAtCellEnd())
    _wrap_png_formatter()


def _wrap_png_formatter() -> None:
    """In IPython, make the PNG formatter of figures (the inline backend's) also return the figure's name, caption
    and profile as the output's metadata (``labclip``), where the figure pack reads them. Idempotent."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    ip = get_ipython()
    formatter = getattr(ip, "display_formatter", None) if ip is not None else None
    png = formatter.formatters.get("image/png") if formatter is not None else None
    if png is None:
        return
    from matplotlib.figure import Figure

    try:
        printer = png.lookup_by_type(Figure)
    except KeyError:  # no figure formatter (yet)
        return
    if getattr(printer, "_labclip", False):
        return

    def with_metadata(fig):
        data = printer(fig)
        return None if data is None else (data, {"labclip": describe(fig)})

    with_metadata._labclip = True
    png.for_type(Figure, with_metadata)
