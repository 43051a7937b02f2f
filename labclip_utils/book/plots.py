"""The book's figures (seaborn/matplotlib). Each function returns the matplotlib Figure it drew."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from labclip_utils.book.figures import MIN_FONT, install, set_caption, slug

#: The smallest font any figure uses (points). Figures are at most ~9 inches wide, so that on the page they are not
#: scaled down much and their text stays readable.


def set_book_style() -> None:
    """One look for every figure in the book, and tables rounded to 3 decimals. Every figure pyplot creates from
    now on names its profile in a corner, and in a notebook carries its name and caption for the figure pack
    (:func:`labclip_utils.book.figures.install`; with ``$LABCLIP_FIGURE_CHECK=1`` each cell's figures are also checked
    for overlapping elements)."""
    sns.set_theme(context="notebook", style="whitegrid", palette="colorblind")
    plt.rcParams.update({"figure.dpi": 110, "savefig.bbox": "tight", "axes.titleweight": "bold",
                         "font.size": 11, "axes.titlesize": 12, "axes.labelsize": 11, "xtick.labelsize": MIN_FONT,
                         "ytick.labelsize": MIN_FONT, "legend.fontsize": MIN_FONT, "legend.title_fontsize": MIN_FONT})
    pd.set_option("display.precision", 3)
    install()


def integer_ticks(ax: plt.Axes, values) -> None:
    """Ticks at exactly these (integer) x values, e.g. object counts."""
    ax.set_xticks(sorted({int(v) for v in values}))


def legend_outside(ax: plt.Axes, title: str | None = None):
    """The legend to the right of the axes, where it cannot cover data; returns it (None when nothing is labelled)."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        return ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, title=title)
    return None


def chance_line(ax: plt.Axes, chance: float, label: str = "chance") -> None:
    """A dashed line at the chance level, named just outside the right edge of the axes (where no bar or value
    label can sit on the name)."""
    ax.axhline(chance, ls="--", color="0.4", lw=1)
    ax.text(1.01, chance, label, transform=ax.get_yaxis_transform(), va="center", ha="left", color="0.3",
            fontsize=MIN_FONT)


def value_labels(ax: plt.Axes, bars, chance: float | None = None, fontsize: float = MIN_FONT) -> None:
    """Each bar's value above it; a bar that ends just under the chance line gets its value inside its top instead,
    in white, so that the dashed line never strikes the number."""
    span = float(np.diff(ax.get_ylim())[0]) or 1.0
    for bar in bars:
        value = bar.get_height()
        if not np.isfinite(value) or bar.get_width() == 0:
            continue
        inside = chance is not None and chance - 0.12 * span < value < chance and value > 0.12 * span
        ax.annotate(f"{value:.2f}", (bar.get_x() + bar.get_width() / 2, value), xytext=(0, -3 if inside else 2),
                    textcoords="offset points", ha="center", va="top" if inside else "bottom", fontsize=fontsize,
                    color="white" if inside else "0.15")


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
    return set_caption(fig, ax.get_title(), name="chapter-execution-times")  # the title's total changes every run


def _wrap(text: str, width: int = 26) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width))


def plot_scene_gallery(datasets: dict, n: int = 4, captions: bool = True) -> plt.Figure:
    """A grid of example scenes: one row per dataset (label → :class:`SceneDataset`), with each scene's
    caption (green, ✓) and hard negative (red, ✗) underneath."""
    rows = len(datasets)
    fig, axes = plt.subplots(rows, n, figsize=(2.2 * n, (2.2 + 1.1 * captions) * rows), squeeze=False)
    for r, (label, ds) in enumerate(datasets.items()):
        for c in range(n):
            ax = axes[r, c]
            image, caption, negative, _ = ds[c]
            ax.imshow(image, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(label, fontsize=11, fontweight="bold")
            if captions:
                ax.text(0.5, -0.03, f"✓ {_wrap(caption, 24)}", fontsize=MIN_FONT, color="#1a7f37", ha="center",
                        va="top", transform=ax.transAxes)
                if negative is not None:
                    ax.text(0.5, -0.3, f"✗ {_wrap(negative, 24)}", fontsize=MIN_FONT, color="#b42318", ha="center",
                            va="top", transform=ax.transAxes)
    fig.subplots_adjust(left=0.05, right=0.99, top=0.99, bottom=0.12 if captions else 0.01,
                        hspace=0.75 if captions else 0.05, wspace=0.08)
    what = "with their caption (✓) and hard negative (✗)" if captions else ""
    return set_caption(fig, f"Example scenes: {', '.join(map(str, datasets))} {what}".strip())


def plot_scores(scores: dict[str, float], *, chance: float | None = 0.5, title: str = "",
                ylabel: str = "accuracy", ylim: tuple[float, float] = (0, 1.15)) -> plt.Figure:
    """Bars for a few named scores, with the chance level drawn as a dashed line."""
    fig, ax = plt.subplots(figsize=(1.1 * len(scores) + 2.5, 3.2))
    names, values = list(scores), list(scores.values())
    bars = ax.bar(names, values, color=sns.color_palette()[: len(names)])
    ax.set_ylim(*ylim)
    value_labels(ax, bars, chance)
    if chance is not None:
        chance_line(ax, chance)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_object_counts(images: list, labels: list[str]) -> plt.Figure:
    """Images with a label under each (e.g. scenes with 1..10 objects), five per row."""
    cols = min(5, len(images))
    rows = -(-len(images) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.8 * cols, 2.1 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, label in zip(axes.flat, images, labels, strict=False):
        ax.imshow(image, interpolation="nearest")
        ax.set_title(label, fontsize=MIN_FONT + 1)
    fig.tight_layout()
    return set_caption(fig, f"Scenes with {labels[0]} to {labels[-1]}" if len(labels) > 1 else labels[0])


def _smooth(values, window: int = 20):
    import numpy as np

    v = np.asarray(values, dtype=float)
    if len(v) < window:
        return v
    return np.convolve(v, np.ones(window) / window, mode="valid")


def plot_training_curves(history: dict[str, dict[str, list[float]]]) -> plt.Figure:
    """The miniature's three training stages side by side (moving averages over 20 steps)."""
    panels = [("image_tower", "loss", "exact_match", "1. image tower: bag of concepts", "exact match"),
              ("text_tower", "loss", "accuracy", "2. text tower: phrase order", "pair accuracy"),
              ("heads", "loss", "logit_scale", "3. heads: CLIP loss", "logit scale")]
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.4))
    for ax, (stage, left, right, title, right_label) in zip(axes, panels, strict=True):
        ax.plot(_smooth(history[stage][left]), color=sns.color_palette()[0])
        ax.set_title(title, fontsize=MIN_FONT + 1)
        ax.set_xlabel("step")
        ax.set_ylabel(left, color=sns.color_palette()[0])
        twin = ax.twinx()
        twin.plot(_smooth(history[stage][right]), color=sns.color_palette()[1])
        twin.set_ylabel(right_label, color=sns.color_palette()[1])
        twin.grid(False)
    fig.tight_layout()
    return set_caption(fig, "Training the miniature: image tower, text tower, heads (loss and score per step)",
                       name="miniature-training-curves")


def plot_grouped_bars(table: pd.DataFrame, chance: float | None = None, title: str = "") -> plt.Figure:
    """Grouped bars: rows of ``table`` are what is compared (features, models), columns are test sets. The legend
    sits right of the axes (under them, it met the slanted x labels)."""
    long = table.reset_index().melt(id_vars=table.index.name or "index", var_name="scenes", value_name="accuracy")
    fig, ax = plt.subplots(figsize=(min(1.3 * len(table) + 4, 9.5), 3.6), layout="constrained")
    sns.barplot(data=long, x=table.index.name or "index", y="accuracy", hue="scenes", ax=ax)
    ax.set_ylim(0, 1.1)
    for container in ax.containers:
        value_labels(ax, container, chance, fontsize=MIN_FONT - 1)
    if chance is not None:
        chance_line(ax, chance)
    ax.set_xlabel("")
    ax.set_title(title)
    ax.tick_params(axis="x", labelrotation=20)
    for label in ax.get_xticklabels():
        label.set_horizontalalignment("right")
        label.set_rotation_mode("anchor")
    legend_outside(ax)
    return fig


def plot_curves(data: pd.DataFrame, x: str, y: str, hue: str, title: str, ylim: tuple[float, float] = (0, 1.02)
                ) -> plt.Figure:
    """One line per ``hue`` value of ``y`` against an integer ``x`` (e.g. accuracy against the number of objects),
    ticks at the measured ``x`` values and the legend beside the axes."""
    fig, ax = plt.subplots(figsize=(8, 3.6))
    sns.lineplot(data=data, x=x, y=y, hue=hue, marker="o", ax=ax)
    ax.set_ylim(*ylim)
    ax.set_title(title)
    integer_ticks(ax, data[x])
    legend_outside(ax)
    return fig


def plot_sweep(sweep: pd.DataFrame) -> plt.Figure:
    """Swap accuracy against alignment training steps, with and without in-batch hard negatives."""
    fig, ax = plt.subplots(figsize=(6.5, 3.4))
    sns.lineplot(data=sweep, x="head steps", y="swap accuracy", hue="batches", style="scenes", markers=True, ax=ax)
    ax.axhline(0.5, ls="--", color="0.4", lw=1)
    ax.set_xscale("log")
    ax.set_ylim(0.4, 1.02)
    ax.set_title("In-batch hard negatives teach the alignment to bind")
    legend_outside(ax)
    fig.tight_layout()
    return fig


def plot_labclip_history(history: pd.DataFrame, best_epoch: int | None = None) -> plt.Figure:
    """LABCLIP's training: loss, validation swap accuracy and the learned logit scale, per epoch."""
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.2))
    for ax, col, label in zip(axes, ("loss", "val_swap", "logit_scale"),
                              ("training loss", "validation swap accuracy", "logit scale exp(t)"), strict=True):
        if col in history:
            ax.plot(history.index, history[col], marker="o", ms=3)
        ax.set_xlabel("epoch")
        ax.set_title(label, fontsize=MIN_FONT + 1)
        if best_epoch is not None:
            ax.axvline(best_epoch, ls=":", color="0.4")
    fig.tight_layout()
    kept = f" (dotted: the kept epoch, {best_epoch})" if best_epoch is not None else ""
    return set_caption(fig, f"LABCLIP training: loss, validation swap accuracy and logit scale per epoch{kept}",
                       name="labclip-training-history")


def plot_spectrum(A, title: str = "What A changed") -> plt.Figure:
    """Singular values of A − I (how far A moves each direction) and the entries of A as an image."""
    import torch

    A = torch.as_tensor(A).detach().float()
    eye = torch.eye(A.shape[0])
    sv = torch.linalg.svdvals(A - eye).numpy()
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4), gridspec_kw={"width_ratios": [1.4, 1]})
    left.plot(range(1, len(sv) + 1), sv, marker=".", ms=3)
    left.set_yscale("log")
    left.set_xlabel("direction (sorted)")
    left.set_ylabel("singular value of A − I")
    left.set_title(title, fontsize=MIN_FONT + 1)
    lim = float((A - eye).abs().max())
    im = right.imshow((A - eye).numpy(), cmap="RdBu_r", vmin=-lim, vmax=lim)
    right.set_title("entries of A − I", fontsize=MIN_FONT + 1)
    right.set_xticks([])
    right.set_yticks([])
    fig.colorbar(im, ax=right, fraction=0.046)
    fig.tight_layout()
    return set_caption(fig, f"{title}: singular values and entries of A − I")


def plot_swap_gallery(ds, indices, positive_scores, negative_scores, title: str = "") -> plt.Figure:
    """Scenes with their caption and swapped caption, each with its cosine score; green frame = the model
    prefers the true caption, red = it prefers the swap."""
    n = len(indices)
    fig, axes = plt.subplots(1, n, figsize=(2.3 * n, 4.0), squeeze=False)
    for ax, i in zip(axes[0], indices, strict=True):
        i = int(i)
        pos, neg = float(positive_scores[i]), float(negative_scores[i])
        ax.imshow(ds.image(i), interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        win = pos > neg
        for spine in ax.spines.values():
            spine.set_edgecolor("#1a7f37" if win else "#b42318")
            spine.set_linewidth(3)
        ax.text(0.5, -0.03, f"✓ {_wrap(ds.captions[i], 22)}\n{pos:.3f}", fontsize=MIN_FONT, color="#1a7f37",
                ha="center", va="top", transform=ax.transAxes)
        ax.text(0.5, -0.42, f"✗ {_wrap(ds.negatives[i], 22)}\n{neg:.3f}", fontsize=MIN_FONT, color="#b42318",
                ha="center", va="top", transform=ax.transAxes)
    fig.suptitle(title, fontsize=11, fontweight="bold")
    fig.subplots_adjust(left=0.01, right=0.99, top=0.88, bottom=0.38, wspace=0.1)
    return set_caption(fig, f"Swap test, {title or 'examples'}: each scene's caption (✓) and its swap (✗) with their "
                       "cosines; green frame: the caption wins", name=f"swap-test-{slug(title or 'examples')}")


def plot_histograms(groups: dict[str, object], title: str = "", xlabel: str = "cosine similarity",
                    ax: plt.Axes | None = None) -> plt.Figure:
    """A few named sets of values (e.g. cosines of true, swapped and random pairs) as cumulative distributions: a
    narrow set and a wide one stay equally visible, and two panels with a shared x axis compare directly."""
    import numpy as np

    if ax is None:
        fig, ax = plt.subplots(figsize=(6.5, 3.4))
    else:
        fig = ax.figure
    for name, values in groups.items():
        v = np.asarray(values, dtype=float)
        sns.ecdfplot(v[~np.isnan(v)], label=name, ax=ax, lw=2)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("share of pairs below")
    ax.set_title(title, fontsize=MIN_FONT + 1)
    ax.legend(loc="best")
    fig.tight_layout()
    return fig


def plot_clouds(images, texts, title: str = "Image and text embeddings (PCA of both)") -> plt.Figure:
    """Both normalised embedding clouds projected on the first two principal directions of their union."""
    import torch
    import torch.nn.functional as F
    from sklearn.decomposition import PCA

    x = F.normalize(torch.as_tensor(images).float(), dim=-1).numpy()
    y = F.normalize(torch.as_tensor(texts).float(), dim=-1).numpy()
    import numpy as np

    pca = PCA(n_components=2, random_state=0).fit(np.concatenate([x, y]))
    a, b = pca.transform(x), pca.transform(y)
    fig, ax = plt.subplots(figsize=(5.2, 4.4))
    ax.scatter(a[:, 0], a[:, 1], s=4, alpha=0.4, label="images")
    ax.scatter(b[:, 0], b[:, 1], s=4, alpha=0.4, label="captions")
    ax.scatter(*a.mean(0), marker="X", s=150, color=sns.color_palette()[0], edgecolor="k", label="image centroid")
    ax.scatter(*b.mean(0), marker="X", s=150, color=sns.color_palette()[1], edgecolor="k", label="caption centroid")
    ax.set_xlabel(f"PC1 ({pca.explained_variance_ratio_[0]:.0%} of variance)")
    ax.set_ylabel(f"PC2 ({pca.explained_variance_ratio_[1]:.0%})")
    ax.set_title(title, fontsize=MIN_FONT + 1)
    # the clouds fill the axes: inside, the legend would cover points; one marker size for all four entries
    legend = legend_outside(ax)
    for handle in legend.legend_handles:
        handle.set_sizes([60])
        handle.set_alpha(1)
    fig.tight_layout()
    return fig


def plot_spectra(spectra: dict[str, object], title: str = "How the variance is spread") -> plt.Figure:
    """Explained-variance share of the first principal directions, one line per cloud."""
    fig, ax = plt.subplots(figsize=(6, 3.2))
    for name, values in spectra.items():
        v = list(values)
        ax.plot(range(1, len(v) + 1), v, marker="o", ms=3, label=name)
    ax.set_xlabel("principal direction")
    ax.set_ylabel("share of variance")
    ax.set_title(title, fontsize=MIN_FONT + 1)
    ax.legend()
    fig.tight_layout()
    return fig


def plot_benchmarks(headline: pd.DataFrame, models: tuple[str, ...] = ("CLIP", "LABCLIP"),
                    title: str = "Benchmarks: CLIP and LABCLIP") -> plt.Figure:
    """Horizontal bars per benchmark headline and model; the paper's values, where known, as black ticks."""
    fig, ax = plt.subplots(figsize=(9, 0.55 * len(headline) + 1.2))
    y = np.arange(len(headline))
    height = 0.8 / len(models)
    for k, model in enumerate(models):
        pos = y + (k - (len(models) - 1) / 2) * height
        ax.barh(pos, headline[model], height=height, label=f"{model} (this book)")
        # "paper: CLIP", or with the paper's model named ("paper, real CLIP ViT-L/14: CLIP")
        columns = [c for c in headline.columns if str(c).startswith("paper") and str(c).endswith(f": {model}")]
        paper = headline[columns[0]] if columns else None
        # each value label right of its bar and of the paper's tick, so that the tick never strikes it
        ends = headline[model].astype(float).to_numpy()
        if paper is not None:  # a row without a paper value keeps its own end (no NaN reaches the maximum)
            ends = np.maximum(ends, paper.astype(float).fillna(-np.inf).to_numpy())
        for p, v, end in zip(pos, headline[model], ends, strict=True):
            ax.text(end + 0.015, p, f"{v:.2f}", va="center", fontsize=MIN_FONT - 1)
        if paper is not None and paper.notna().any():
            ax.scatter(paper, pos, marker="|", s=200, color="black", zorder=3,
                       label="paper (real CLIP, real data)" if k == 0 else None)
    ax.set_yticks(y, headline.index)
    ax.invert_yaxis()
    ax.set_xlim(0, 1.1)
    ax.set_xlabel("accuracy / recall")
    ax.set_title(title)
    legend_outside(ax)  # above the axes it met the title (how far apart they are depends on the number of rows)
    fig.tight_layout()
    return fig
