"""Hand numbers and figures from an executed chapter to other pages of the website (MyST-NB ``glue``).

The landing page and the results page paste these values with ``{glue:text}`` roles, so they are never retyped:
change a chapter's computation and the pages change with it. Outside a Jupyter Book build (Colab, a plain script)
``myst_nb`` may be missing; then nothing is published and the chapter runs the same.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

FIGURES_ENV = "LABCLIP_FIGURES_DIR"


def _glue(key: str, value: Any) -> None:
    try:
        from myst_nb import glue
    except ImportError:  # not building the book
        return
    glue(key, value, display=False)


def publish(key: str, value: float, *, paper: tuple[str, str, str] | None = None) -> float:
    """Glue ``value`` under ``key``; with ``paper=(metric, setting, model)`` also glue the paper's reported value
    under ``key + "_paper"`` (from :data:`labclip_utils.paper.PAPER_NUMBERS`). Returns ``value``."""
    value = float(value)
    _glue(key, value)
    if paper is not None:
        from labclip_utils.paper import PAPER_NUMBERS

        metric, setting, model = paper
        found = [p.value for p in PAPER_NUMBERS if (p.metric, p.setting, p.model) == (metric, setting, model)]
        if len(found) != 1:
            raise KeyError(f"no single paper number for {paper}")
        _glue(f"{key}_paper", float(found[0]))
    return value


def publish_figure(key: str, figure: Any) -> Path | None:
    """Save a matplotlib figure as ``<key>.png`` for a book page to show (``$LABCLIP_FIGURES_DIR``, which the book's
    runner sets to the staged ``book/figures``); elsewhere (Colab, scripts) nothing is written.

    A file rather than glue: MyST-NB pastes text across pages, but an image glued in one notebook and pasted in
    another page is not copied into the website. The write is atomic, so a page never shows half a file.
    """
    folder = os.environ.get(FIGURES_ENV)
    if not folder:
        return None
    path = Path(folder) / f"{key}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}.png")
    try:
        figure.savefig(tmp, dpi=150, bbox_inches="tight")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def slug(label: str) -> str:
    """``"ARO VG-Attribution (macro)"`` → ``"aro_vg_attribution_macro"``: a glue key from a table label."""
    import re

    return re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_")


def publish_ablation(ablation: Any) -> None:
    """The LABCLIP chapter's swap-test table (rows: models, columns: seen / held-out combinations), as
    ``swap_<model>_<seen|heldout>``, plus the landing page's before/after figure ``swap_before_after``."""
    import matplotlib.pyplot as plt

    from labclip_utils.plots import plot_grouped_bars

    columns = {"seen combinations": "seen", "held-out combinations": "heldout"}
    for model in ablation.index:
        for column, short in columns.items():
            paper = ("swap accuracy (test split)", "CLEVR", model) if short == "heldout" and model in (
                "CLIP", "LABCLIP", "CLIP-FT") else None
            publish(f"swap_{slug(model)}_{short}", ablation.loc[model, column], paper=paper)
    fig = plot_grouped_bars(ablation.loc[["CLIP", "LABCLIP"]], chance=0.5,
                            title="Swap test before (CLIP) and after (LABCLIP) the matrix A")
    publish_figure("swap_before_after", fig)
    plt.close(fig)


def publish_headlines(headline: Any) -> None:
    """The benchmark chapter's headline table, as ``bench_<benchmark>_<model>`` (and ``..._paper`` where the
    paper reports the number)."""
    for label, row in headline.iterrows():
        for model in ("CLIP", "LABCLIP"):
            key = f"bench_{slug(label)}_{slug(model)}"
            publish(key, row[model])
            paper = row.get(f"paper: {model}")
            if paper is not None and paper == paper:  # not NaN
                _glue(f"{key}_paper", float(paper))
