"""Hand numbers and figures from an executed chapter to other pages of the website (MyST-NB ``glue``).

The landing page and the results page paste these values with ``{glue:text}`` and ``{glue}`` roles, so they are
never retyped: change a chapter's computation and the pages change with it. Outside a Jupyter Book build (Colab,
a plain script) ``myst_nb`` may be missing; then nothing is published and the chapter runs the same.
"""

from __future__ import annotations

from typing import Any


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


def publish_figure(key: str, figure: Any) -> Any:
    """Glue a matplotlib figure under ``key`` (it still shows in the chapter where it was drawn)."""
    _glue(key, figure)
    return figure


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
