"""Checks on the built website (`make test` runs these after `tools/book.py build`)."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

import labclip_utils
from tests.conftest import ROOT

pytestmark = pytest.mark.built_site
HTML = ROOT / "_build" / "html"


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.figures = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "a" and attrs.get("href"):
            self.hrefs.append(attrs["href"])
        if tag == "img" and "_images/" in (attrs.get("src") or ""):
            self.figures += 1  # an image produced by a cell (myst-nb writes them to _images/)


def _page(doc: str) -> tuple[str, _Links]:
    path = HTML / f"{doc}.html"
    assert path.is_file(), f"{path} was not built: run `make book`"
    text = path.read_text()
    parser = _Links()
    parser.feed(text)
    return text, parser


def _chapters(book_tool):
    return book_tool.toc_notebooks()


def test_index_exists():
    assert (HTML / "index.html").is_file(), "run `make book` first"


def test_every_toc_page_is_built(book_tool):
    for doc in book_tool.toc_files():
        _page(doc)


def test_chapters_are_rendered_with_outputs_and_a_figure(book_tool):
    for doc in _chapters(book_tool):
        text, links = _page(doc)
        assert "cell_output" in text, f"{doc}: no executed outputs on the page"
        assert "Traceback" not in text, f"{doc}: a traceback was rendered"
        assert links.figures >= 1, f"{doc}: no figure produced by a cell on the page"


def test_colab_link_ends_in_the_chapters_ipynb(book_tool):
    repo = labclip_utils.REPOSITORY_URL.removeprefix("https://github.com/")
    for doc in _chapters(book_tool):
        _, links = _page(doc)
        colab = [h for h in links.hrefs if h.startswith("https://colab.research.google.com/")]
        assert colab, f"{doc}: no Colab launch button"
        expected = f"https://colab.research.google.com/github/{repo}/blob/main/{doc}.ipynb"
        assert colab == [expected] * len(colab), f"{doc}: {colab}"


def test_internal_links_resolve(book_tool):
    pages = sorted(HTML.rglob("*.html"))
    assert pages
    broken = []
    for page in pages:
        if "_static" in page.parts or "_sources" in page.parts:
            continue
        parser = _Links()
        parser.feed(page.read_text())
        for href in parser.hrefs:
            parts = urlsplit(href)
            if parts.scheme or parts.netloc or not parts.path or href.startswith("mailto:"):
                continue
            target = (page.parent / unquote(parts.path)).resolve()
            if not target.exists():
                broken.append(f"{page.relative_to(HTML)} -> {href}")
    assert not broken, "\n".join(broken)


def test_the_old_setup_chapter_address_sends_readers_to_its_new_place():
    # the setup chapter was chapter 0 (notebooks/00_setup.html); bookmarks and links from elsewhere still point there
    old = (HTML / "notebooks" / "00_setup.html").read_text()
    target = re.search(r'http-equiv="refresh" content="0; url=([^"]+)"', old)
    assert target and target.group(1) == "11_setup.html", "00_setup.html must redirect to the setup chapter"
    assert (HTML / "notebooks" / target.group(1)).is_file()


def test_setup_chapter_reports_this_runs_times(book_tool):
    text = (HTML / "notebooks" / "11_setup.html").read_text()
    others = len(_chapters(book_tool)) - 1
    assert re.search(rf"\b{others} chapters? executed before this one", text), "the setup chapter must time the others"
    assert "Profile &#39;offline&#39;" in text or "Profile 'offline'" in text


def test_source_files_are_not_published():
    assert not list(HTML.rglob("_stage")) and not (HTML / ".venv").exists()
    assert not any(Path(p).suffix == ".py" for p in (HTML / "_sources").rglob("*.py"))


_GLUE = re.compile(r"\{glue:text\}`(?P<path>[^:`]+)::(?P<key>[A-Za-z0-9_]+):(?P<fmt>[^`]+)`")


def _glued_values(notebook: Path) -> dict[str, str]:
    """``key → text/plain`` of every value glued in an executed notebook."""
    import json

    out = {}
    for cell in json.loads(notebook.read_text())["cells"]:
        for output in cell.get("outputs", []):
            meta = output.get("metadata", {}).get("scrapbook", {})
            text = output.get("data", {}).get(meta.get("mime_prefix", "") + "text/plain")
            if meta.get("name") and text is not None:
                out[meta["name"]] = "".join(text)
    return out


@pytest.mark.parametrize("doc", ["book/results", "book/intro", "book/teaching"])
def test_pasted_numbers_come_from_the_executed_chapters(doc):
    """Every number on the results and landing pages is pasted from a chapter's glue output (never typed), and the
    rendered page shows exactly the value that the executed chapter computed."""
    source = (ROOT / f"{doc}.md").read_text()
    refs = list(_GLUE.finditer(source))
    assert len(refs) >= (30 if doc == "book/results" else 4), f"{doc}: expected pasted values"
    outside = _GLUE.sub("", source)
    typed = re.findall(r"(?<![\w.$])0\.\d+|\b\d+\.\d{2,}", outside)
    assert not typed, f"{doc}: numbers typed into the page instead of pasted: {typed}"
    text, _ = _page(doc)
    stage = ROOT / "_stage" / Path(doc).parent
    for ref in refs:
        glued = _glued_values((stage / ref["path"]).resolve())
        assert ref["key"] in glued, f"{doc}: {ref['path']} did not glue {ref['key']}"
        value = format(float(glued[ref["key"]]), ref["fmt"])
        assert value in text, f"{doc}: {ref['key']} should read {value} (from {ref['path']})"


def test_the_teachers_kit_is_built():
    """The figure pack holds every chapter's figures; the instructor edition has every chapter and the solutions."""
    import zipfile

    kit = ROOT / "_build" / "html" / "teaching"
    with zipfile.ZipFile(kit / "labclip-figures.zip") as z:
        names = z.namelist()
        chapters = {name.split("/")[0] for name in names}
        assert len(names) >= 20 and {"00_landing", "02_miniature", "04_probing", "06_labclip"} <= chapters
        assert "00_landing/swap-before-after.png" in names, "the landing figure the lesson plan starts with"
        pngs = [n for n in names if n.endswith(".png")]
        unnamed = [n for n in pngs if re.fullmatch(r".*/figure-\d+\.png", n)]
        assert not unnamed, f"figures named by number, not by what they show: {unnamed}"
        readme, captions = z.read("README.md").decode(), z.read("captions.csv").decode()
        for name in pngs:
            assert f"`{name}`" in readme and name in captions, f"{name} is not listed in README.md / captions.csv"
        assert "offline profile: miniature CLIP, generated data" in captions
    edition = (kit / "instructor" / "index.html").read_text()
    assert "instructor.js" in edition and edition.count("Solutions") >= 8
    for title in ("The binding is there", "One matrix fixes it", "Mind the gap"):
        assert title in edition, f"the instructor edition lacks {title!r}"
