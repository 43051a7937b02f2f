"""The book's figures (seaborn/matplotlib). Each function returns the matplotlib Figure it drew."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns


def set_book_style() -> None:
    """One look for every figure in the book."""
    sns.set_theme(context="notebook", style="whitegrid", palette="colorblind")
    plt.rcParams.update({"figure.dpi": 110, "savefig.bbox": "tight", "axes.titleweight": "bold"})


def plot_run_times(times: pd.DataFrame) -> plt.Figure:
    """Horizontal bars: seconds each chapter took to execute (from :func:`notebook_run_times`)."""
    if "seconds" not in times.columns or times.empty:
        raise ValueError("expected a non-empty table with a 'seconds' column")
    data = times.reset_index().sort_values("seconds", ascending=True)
    fig, ax = plt.subplots(figsize=(6.5, 0.45 * len(data) + 1.2))
    ax.barh(data["notebook"], data["seconds"], color=sns.color_palette()[0])
    for y, s in enumerate(data["seconds"]):
        ax.text(s, y, f" {s:.0f} s", va="center")
    ax.set_xlabel("execution time (seconds)")
    ax.set_title(f"Executing the book: {data['seconds'].sum():.0f} s of notebook time")
    ax.set_xlim(0, data["seconds"].max() * 1.25 + 1)
    fig.tight_layout()
    return fig
