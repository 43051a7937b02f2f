"""The book's figures: the overlap check catches a bad figure and passes good ones, every figure names its profile,
and the figure pack names files by what they show, with a README of captions."""

from __future__ import annotations

import ast
import base64
import io
import json
import zipfile

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import nbformat  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from labclip_utils.book import figures, plots  # noqa: E402


@pytest.fixture(autouse=True)
def book_style(monkeypatch):
    monkeypatch.setenv("LABCLIP_PROFILE", "offline")
    with matplotlib.rc_context():
        plots.set_book_style()
        yield
    plt.close("all")


def bad_figure():
    """The two faults issue 26 names: a legend on top of the tick labels, and x labels running into each other."""
    fig, ax = plt.subplots(figsize=(4, 3))
    names = [f"a long category name {i}" for i in range(6)]
    ax.bar(names, np.arange(6), label="values")
    ax.set_title("A bad figure")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.02))
    return fig


def good_figure():
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.plot([0, 1, 2], [0, 1, 4], label="squares")
    ax.plot([0, 1, 2], [0, 1, 2], label="line")
    ax.set(xlabel="x", ylabel="y", title="A good figure")
    ax.legend(loc="upper left")
    fig.tight_layout()
    return fig


def test_a_bad_figure_is_caught_naming_the_figure_and_both_elements():
    fig = bad_figure()
    problems = figures.overlaps(fig)
    assert any("tick label 'a long category name 0'" in p and "overlaps the x tick label 'a long category name 1'"
               in p for p in problems), problems
    assert any("legend" in p and "tick label" in p for p in problems), problems
    with pytest.raises(figures.FigureOverlapError, match=r"(?s)figure 'A bad figure'.*legend"):
        figures.check_figure(fig)


def test_a_good_figure_passes_quickly():
    import time

    fig = good_figure()
    figures.overlaps(fig)  # fonts load on the first draw
    start = time.perf_counter()
    assert figures.overlaps(fig) == []
    assert time.perf_counter() - start < 1.0  # one draw without rasterising, then box arithmetic
    figures.check_figure(fig)


def test_labels_that_touch_read_as_one_and_are_caught():
    fig, ax = plt.subplots(figsize=(9, 3))
    pd.DataFrame({"CLIP": [0.2, 0.3, 0.1, 0.04], "LABCLIP": [0.1, 0.4, 0.5, 0.2]},  # chapter 5's chart before
                 index=[*(f"probe directions, C = {c}" for c in ("0.01", "1", "100")), "binding directions"]
                 ).plot.bar(rot=0, ax=ax)
    assert any("is too close to" in p or "overlaps" in p for p in figures.overlaps(fig))


def test_a_legend_on_the_data_and_a_marker_through_a_value_label_are_caught():
    fig, ax = plt.subplots(figsize=(5, 4))
    x = np.linspace(0, 1, 200)
    ax.plot(x, x, label="rising")
    ax.plot(x, 1 - x, label="falling")
    ax.set_title("Crossing lines")
    ax.legend(loc="center")
    assert any("legend" in p and "covers the line 'rising'" in p for p in figures.overlaps(fig))

    fig, ax = plt.subplots(figsize=(5, 2))  # the benchmarks chart before: the paper's tick through "0.49"
    ax.barh([0], [0.49])
    ax.text(0.50, 0, "0.49", va="center")
    ax.scatter([0.52], [0], marker="|", s=200, color="black", label="paper")
    ax.set_xlim(0, 1)
    assert any("the text '0.49'" in p and "lies on the markers 'paper'" in p for p in figures.overlaps(fig))


def test_rotated_labels_are_compared_as_rotated_boxes():
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.bar(["image emb.", "text emb.", "bag of words", "bag of bigrams (text)"], [1, 2, 3, 4])
    ax.tick_params(axis="x", labelrotation=20)
    fig.tight_layout()
    assert figures.overlaps(fig) == []  # their upright boxes overlap, the slanted texts do not


def test_every_figure_names_its_profile_below_everything_else(tmp_path):
    fig = good_figure()
    labels = [a for a in fig.artists if isinstance(a, figures.ProfileLabel)]
    assert [a.get_text() for a in labels] == ["offline profile: miniature CLIP, generated data"]
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    label = labels[0].get_window_extent(renderer)
    for ax in fig.axes:
        assert label.y1 <= ax.get_tightbbox(renderer).y0
    fig.savefig(tmp_path / "good.png")  # the tight crop keeps it
    from PIL import Image

    image = np.asarray(Image.open(tmp_path / "good.png").convert("L"))
    assert (image[-40:, -150:] < 200).any(), "the bottom-right corner should hold the label's text"
    assert figures.describe(fig) == {"name": "a-good-figure", "caption": "A good figure",
                                     "profile": "offline profile: miniature CLIP, generated data"}


def test_the_paper_profile_names_its_clip(monkeypatch):
    monkeypatch.setenv("LABCLIP_PROFILE", "paper")
    monkeypatch.setenv("LABCLIP_DEVICE", "cpu")
    label = figures.profile_label()
    assert "ViT-L-14/openai" in label and "ViT-B-32/openai" in label and "paper profile" in label
    assert "miniature" not in label


def test_the_cell_end_check_keeps_the_last_value_and_fails_on_a_bad_figure():
    source = "import matplotlib.pyplot as plt\nfig = plt.figure()\n1 + 1"
    module = figures._CheckAtCellEnd().visit(ast.parse(source))
    last = module.body[-1]
    assert isinstance(last, ast.Expr) and isinstance(last.value, ast.Name)
    namespace: dict = {}
    exec(compile(module, "<cell>", "exec"), namespace)
    assert namespace["_labclip_cell_value"] == 2
    plt.close("all")
    bad = ("import matplotlib.pyplot as plt\nfig, ax = plt.subplots(figsize=(3, 2))\n"
           "ax.bar([f'label number {i}' for i in range(5)], range(5))")
    module = figures._CheckAtCellEnd().visit(ast.parse(bad))
    with pytest.raises(figures.FigureOverlapError, match="tick label 'label number 0'"):
        exec(compile(module, "<cell>", "exec"), {})


def test_the_book_plot_helpers_pass_the_check():
    probes = pd.DataFrame({"seen combinations": [.95, 1, .5, 1, .46, 1, .5],
                           "held-out combinations": [.88, .86, .51, 1, .4, .86, .42]},
                          index=pd.Index(["image emb.", "text emb.", "bag of words", "bag of bigrams (text)",
                                          "random-init image", "random-init text", "raw pixels (8×8)"],
                                         name="features"))
    rng = np.random.default_rng(0)
    labels = ["CLEVR swap test", "PUG:SPAR swap test", "ARO COCO-Order", "COCO text→image R@1"]
    headline = pd.DataFrame({"CLIP": [.49, .55, .22, .43], "LABCLIP": [.78, .68, .40, .25],
                             "paper: CLIP": [.58, .54, np.nan, np.nan], "paper: LABCLIP": [.95, .97, np.nan, np.nan]},
                            index=labels)
    drawn = {
        "probes": plots.plot_grouped_bars(probes, chance=0.125, title="Per-object colour probes (2 objects)"),
        "landing": plots.plot_grouped_bars(probes.iloc[:2], chance=0.5, title="Swap test before and after"),
        "benchmarks": plots.plot_benchmarks(headline),
        "clouds": plots.plot_clouds(rng.normal(0, 1, (2000, 8)) + 3, rng.normal(0, 1, (50, 8)) - 3),
        # a bar just under the chance line (its label above would be struck) and one at 1 (its label under the title)
        "scores": plots.plot_scores({"CLEVR": .47, "PUG:SPAR": 1.0, "PUG:SPARE": .62},
                                    title="A caption-only model (never sees the image), mirrored negatives"),
    }
    for name, fig in drawn.items():
        assert figures.overlaps(fig) == [], name


def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=30)
    return base64.b64encode(buffer.getvalue()).decode()


def test_the_figure_pack_names_files_by_what_they_show_and_lists_captions(tmp_path, monkeypatch):
    import importlib.util

    from labclip_utils.book import publish

    spec = importlib.util.spec_from_file_location("book", figures.__file__.replace(
        "labclip_utils/book/figures.py", "tools/book.py"))
    book = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(book)
    stage = tmp_path / "_stage"
    (stage / "notebooks").mkdir(parents=True)
    (stage / "_toc.yml").write_text("format: jb-book\nroot: book/intro\nchapters:\n- file: notebooks/06_labclip\n")
    monkeypatch.setenv(publish.FIGURES_ENV, str(stage / "book" / "figures"))
    landing = plots.plot_grouped_bars(pd.DataFrame({"seen": [.6, .98]}, index=pd.Index(["CLIP", "LABCLIP"],
                                                                                           name="model")),
                                      chance=0.5, title="Swap test before (CLIP) and after (LABCLIP) the matrix A")
    publish.publish_figure("swap_before_after", landing)
    fig = good_figure()
    untitled, _ = plt.subplots()
    output = nbformat.from_dict({"output_type": "display_data", "data": {"image/png": _png(fig)},
              "metadata": {"image/png": {"labclip": figures.describe(fig)}}})
    twice = nbformat.from_dict(json.loads(json.dumps(output)))
    bare = nbformat.from_dict({"output_type": "display_data", "data": {"image/png": _png(untitled)}, "metadata": {}})
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# One matrix fixes it"),
                                         nbformat.v4.new_code_cell("x", outputs=[output, twice, bare])])
    nbformat.write(nb, stage / "notebooks" / "06_labclip.ipynb")
    rows = book.figure_pack(stage, tmp_path / "pack.zip")
    with zipfile.ZipFile(tmp_path / "pack.zip") as z:
        names = z.namelist()
        readme = z.read("README.md").decode()
        captions = pd.read_csv(io.BytesIO(z.read("captions.csv")))
    assert names == ["README.md", "captions.csv", "00_landing/swap-before-after.png", "06_labclip/a-good-figure.png",
                     "06_labclip/a-good-figure-2.png", "06_labclip/figure-03.png"]
    assert [r["file"] for r in rows] == names[2:] == list(captions["file"])
    assert captions.loc[0, "caption"] == "Swap test before (CLIP) and after (LABCLIP) the matrix A"
    assert set(captions["profile"].iloc[:3]) == {"offline profile: miniature CLIP, generated data"}
    assert "06_labclip: One matrix fixes it" in readme and "offline profile: miniature CLIP, generated data" in readme
    assert "lesson plan" in captions.loc[0, "page"]
