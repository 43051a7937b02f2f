"""Hand numbers and figures from an executed chapter to other pages of the website (MyST-NB ``glue``).

The landing page and the results page paste these values with ``{glue:text}`` roles, so they are never retyped:
change a chapter's computation and the pages change with it. Outside a Jupyter Book build (Colab, a plain script)
``myst_nb`` may be missing; then nothing is published and the chapter runs the same.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd

from labclip_utils.benchmarks.suite import PAPER_KEYS, SYNTHETIC_HEADLINES
from labclip_utils.book.figures import check_figure, describe
from labclip_utils.book.plots import plot_grouped_bars
from labclip_utils.book.tables import show
from labclip_utils.io.files import atomic_write
from labclip_utils.paper import paper_number, paper_value

FIGURES_ENV = "LABCLIP_FIGURES_DIR"
STATIC_ENV = "LABCLIP_STATIC_DIR"


def _glue(key: str, value: Any) -> None:
    try:
        from myst_nb import glue
    except ImportError:  # not building the book
        return
    glue(key, value, display=False)


def publish(key: str, value: float, *, paper: dict[str, str] | None = None) -> float:
    """Glue ``value`` under ``key``; with ``paper=dict(setting=..., metric=..., model=...)`` also glue the paper's
    reported value under ``key + "_paper"`` (from :data:`labclip_utils.paper.PAPER_NUMBERS`). Returns ``value``."""
    value = float(value)
    if value != value:
        raise ValueError(f"refusing to publish NaN under {key!r}")
    _glue(key, value)
    if paper is not None:
        _glue(f"{key}_paper", paper_value(**paper))
    return value


def publish_paper(key: str, *, setting: str, metric: str, model: str) -> float:
    """Glue the paper's reported value for (setting, metric, model) under ``key`` (from
    :data:`labclip_utils.paper.PAPER_NUMBERS`, with its source), so that prose quotes the paper without typing a
    number. Returns the value."""
    value = paper_value(setting=setting, metric=metric, model=model)
    _glue(key, value)
    return value


def publish_figure(key: str, figure: Any) -> Path | None:
    """Save a matplotlib figure as ``<key>.png`` for a book page to show (``$LABCLIP_FIGURES_DIR``, which the book's
    runner sets to the staged ``book/figures``); elsewhere (Colab, scripts) nothing is written.

    A file rather than glue: MyST-NB pastes text across pages, but an image glued in one notebook and pasted in
    another page is not copied into the website. The write is atomic, so a page never shows half a file. The figure
    must pass the overlap check (:func:`labclip_utils.book.figures.check_figure`); the PNG carries its caption and
    profile as text chunks (``Title``, ``Description``, ``labclip:*``), which the teacher's figure pack reads.
    """
    folder = os.environ.get(FIGURES_ENV)
    if not folder:
        return None
    check_figure(figure, f" (published as {key}.png)")
    about = describe(figure)
    metadata = {"Title": about["caption"], "Description": f"{about['caption']} ({about['profile']})",
                "labclip:name": key.replace("_", "-"), "labclip:caption": about["caption"],
                "labclip:profile": about["profile"]}
    return atomic_write(Path(folder) / f"{key}.png", lambda tmp: figure.savefig(
        tmp, format="png", dpi=150, bbox_inches="tight", metadata=metadata))


def publish_static(name: str, text: str) -> Path | None:
    """Write a file the website serves beside its own scripts (``$LABCLIP_STATIC_DIR``, which the book's runner sets
    to the staged ``book/_static``; the build copies it to the site's ``_static/``), such as the in-browser
    playground's data; elsewhere (Colab, scripts) nothing is written. Atomic: a page never loads half a file."""
    folder = os.environ.get(STATIC_ENV)
    if not folder:
        return None
    return atomic_write(Path(folder) / name, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def slug(label: str) -> str:
    """``"ARO VG-Attribution (macro)"`` → ``"aro_vg_attribution_macro"``: a glue key from a table label."""
    import re

    return re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_")


def publish_ablation(ablation: Any) -> None:
    """The LABCLIP chapter's swap-test table (rows: models, columns: seen / held-out combinations), as
    ``swap_<model>_<seen|heldout>``, plus the landing page's before/after figure ``swap_before_after``."""
    import matplotlib.pyplot as plt

    columns = {"seen combinations": "seen", "held-out combinations": "heldout"}
    for model in ablation.index:
        for column, short in columns.items():
            paper = dict(setting="CLEVR", metric="swap accuracy (test split)", model=model) if (
                short == "heldout" and model in ("CLIP", "LABCLIP", "CLIP-FT")) else None
            publish(f"swap_{slug(model)}_{short}", ablation.loc[model, column], paper=paper)
    fig = plot_grouped_bars(ablation.loc[["CLIP", "LABCLIP"]], chance=0.5,
                            title="Swap test before (CLIP) and after (LABCLIP) the matrix A")
    publish_figure("swap_before_after", fig)
    plt.close(fig)


def publish_headlines(headline: Any, coverage: Any = None) -> None:
    """The benchmark chapter's headline table, as ``bench_<benchmark>_<model>``, plus ``..._paper`` where the row
    was measured under the paper's protocol, and ``paper_<benchmark>_<model>`` (the paper's value, quoted) for
    every headline the paper reports, so that the results page can list those apart from ours.

    With ``coverage`` (:func:`~labclip_utils.benchmarks.suite.run_suite`'s second table), also
    ``bench_not_run_table``: every benchmark that ran no item and why, so that a missing row is never silent."""
    for label, row in headline.iterrows():
        bare = label.removesuffix(" (analogue)")
        for model in ("CLIP", "LABCLIP"):
            key = f"bench_{slug(bare)}_{slug(model)}"
            publish(key, row[model])
            paper = row.get(f"paper: {model}")
            if paper is not None and paper == paper:  # not NaN: same protocol
                _glue(f"{key}_paper", float(paper))
    for label, where in PAPER_KEYS.items():
        for model in ("CLIP", "LABCLIP"):
            _glue(f"paper_{slug(label)}_{slug(model)}", paper_number(**where, model=model).value)
    # The real benchmarks as whole tables: a benchmark whose data is missing (Flickr30k's images are a manual
    # download) is then absent from the results page instead of breaking it.
    real = [label for label in headline.index if label.removesuffix(" (analogue)") not in SYNTHETIC_HEADLINES]
    _glue("bench_real_table", show(headline.loc[real, ["CLIP", "LABCLIP"]].astype(float).rename_axis("benchmark")))
    paper = {label: {model: paper_number(**where, model=model).value for model in ("CLIP", "LABCLIP")}
             for label, where in PAPER_KEYS.items() if label not in SYNTHETIC_HEADLINES}
    _glue("bench_real_paper_table", show(pd.DataFrame(paper).T.rename_axis("benchmark")
                                         .add_prefix("paper: "), precision=2))
    if coverage is not None:
        _glue("bench_not_run_table", show(not_run(coverage)))


def not_run(coverage: pd.DataFrame) -> pd.DataFrame:
    """The benchmarks of a coverage table that ran no item, with the reason (the error, or how many items were
    left out because their words are outside the model's vocabulary); one row saying "none" when all ran."""
    missing = coverage[coverage["items run"] == 0]
    reasons = [row["note"] or (f"all {int(row['left out (vocabulary)'])} items use words outside the model's "
                               "vocabulary" if row["left out (vocabulary)"] else "no items")
               for _, row in missing.iterrows()]
    table = pd.DataFrame({"benchmark": missing["title"].tolist() or ["none"],
                          "why it did not run": reasons or ["every benchmark ran"]})
    return table.set_index("benchmark")
