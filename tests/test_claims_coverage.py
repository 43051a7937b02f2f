"""Every sentence of the book that states a result is checked by a claim.

A chapter's markdown cell whose sentences carry a number or a word of comparison ("near chance", "rises",
"higher"...) must sit next to a code cell that checks them (``claim``, ``near_chance``, ``rises_by``, ``falls_by`` or
``within_seeds``): the code cells right after it or right before it. A cell that only describes a method, a
definition or the paper is tagged ``method`` (``# %% [markdown] tags=["method"]``), which this test lists so a
reviewer can see every exemption. The book's other pages cannot run code, so they may not type a result at all:
their numbers are pasted from chapters with ``{glue:text}``.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import jupytext
import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py"))
PAGES = sorted((ROOT / "book").glob("*.md"))

RESULT_WORDS = re.compile(
    r"\b(near chance|above chance|at chance|far above|far below|well above|well below|higher|lower|rises?|rising|"
    r"falls?|falling|drops?|improves?|stays?|beats?|barely|at least as|more than|less than|better|worse|nearly|"
    r"almost|perfectly|exceeds?|outperforms?|twice)\b", re.IGNORECASE)
NUMBER = re.compile(r"(?<![\w.])\d+\.\d+|\d+\s?%")
CHECKS = re.compile(r"\b(claim|near_chance|rises_by|falls_by|within_seeds)\(")
EXEMPT_TAG = "method"


def _plain(markdown: str) -> str:
    """The prose of a markdown cell: code, maths and MyST roles (glued numbers, links, terms) blanked out."""
    text = re.sub(r"```.*?```", " ", markdown, flags=re.DOTALL)
    text = re.sub(r"\{(glue:text|glue|doc|term|cite|ref|numref)\}`[^`]*`", " ROLE ", text)
    text = re.sub(r"`[^`]*`", " CODE ", text)
    text = re.sub(r"\$[^$]*\$", " MATH ", text)
    return text


def result_sentences(markdown: str) -> list[str]:
    """The sentences of ``markdown`` that state a result: a typed number or a word of comparison (questions and
    headings are not statements)."""
    sentences = re.split(r"(?<=[.!?])\s+", " ".join(line.lstrip("#> ").strip() for line in
                                                     _plain(markdown).splitlines() if not line.startswith("#")))
    sentences = [s.strip() for s in sentences if s.strip() and not s.strip().endswith("?")]
    return [s for s in sentences if NUMBER.search(s) or RESULT_WORDS.search(s)]


def unchecked(source: str) -> tuple[list[str], list[str]]:
    """``(unchecked, exempt)``: result sentences with no check in the code cells next to their cell, and the first
    sentence of each cell tagged ``method``."""
    cells = jupytext.reads(source, fmt="py:percent").cells
    missing, exempt = [], []
    for i, cell in enumerate(cells):
        if cell.cell_type != "markdown":
            continue
        found = result_sentences(cell.source)
        if not found:
            continue
        if EXEMPT_TAG in cell.metadata.get("tags", []):
            exempt.append(found[0])
            continue
        neighbours = []
        for step in (1, -1):  # the run of code cells right after, and right before
            j = i + step
            while 0 <= j < len(cells) and cells[j].cell_type == "code":
                neighbours.append(cells[j].source)
                j += step
        if not any(CHECKS.search(code) for code in neighbours):
            missing.extend(found)
    return missing, exempt


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_every_result_sentence_of_a_chapter_is_checked(chapter):
    missing, _ = unchecked(chapter.read_text(encoding="utf-8"))
    assert not missing, (f"{chapter.name}: {len(missing)} sentence(s) state a result with no claim next to them "
                         "(add a claim in a hidden cell after the text, or tag the cell 'method' if it states no "
                         "result):\n- " + "\n- ".join(missing))


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.stem)
def test_pages_type_no_numbers(page):
    typed = [line.strip() for line in _plain(page.read_text(encoding="utf-8")).splitlines() if NUMBER.search(line)]
    assert not typed, f"{page.name}: numbers typed instead of glued from a chapter:\n- " + "\n- ".join(typed)


def test_the_exemptions_are_few_and_listed():
    exempt = {chapter.name: unchecked(chapter.read_text(encoding="utf-8"))[1] for chapter in CHAPTERS}
    print("\n".join(f"{name}: {sentence}" for name, found in exempt.items() for sentence in found))
    assert sum(map(len, exempt.values())) <= 20, "more cells exempted than stated here: review the 'method' tags"


def test_the_scan_catches_an_unchecked_result_and_accepts_a_checked_one():
    page = ('# %% [markdown]\n# The swap test on held-out combinations is above 0.9.\n\n'
            '# %%\nshow(table)\n\n# %% [markdown]\n# ## Next\n')
    missing, _ = unchecked(page)
    assert missing == ["The swap test on held-out combinations is above 0.9."]
    checked = page.replace("show(table)", "show(table)\n\n# %% tags=[\"remove-cell\"]\nclaim(\"...\", x, above=0.9)")
    assert unchecked(checked) == ([], [])
    words = '# %% [markdown]\n# LABCLIP scores higher than CLIP. Why is that?\n'
    assert unchecked(words)[0] == ["LABCLIP scores higher than CLIP."]  # a comparison, without any number
    method = '# %% [markdown] tags=["method"]\n# A bag of words scores 0.5.\n'
    assert unchecked(method) == ([], ["A bag of words scores 0.5."])
    glued = "Our value is {glue:text}`swap:.3f` (see {doc}`results`), about $0.5$.\n"
    assert result_sentences(glued) == [] and not NUMBER.search(_plain(glued))


#: A pasted value: ``{glue:text}`key``` (this page's) or ``{glue:text}`[../notebooks/]chapter.ipynb::key```.
GLUE_REF = re.compile(r"\{glue(?::text)?\}`(?:[./]*(?:notebooks/)?(\w+)\.ipynb::)?([A-Za-z_]\w*)")
PUBLISHERS = {"publish", "publish_paper", "glue"}


def pasted(text: str) -> list[tuple[str, str]]:
    """``(chapter stem, key)`` of each value ``text`` pastes; the stem is empty for the page's own values."""
    return GLUE_REF.findall(text)


def offline_only_glue(source: str) -> set[str]:
    """Glue keys that the prose of chapter ``source`` pastes from itself but that only a branch under
    ``if profile.is_offline:`` publishes: the paper profile's build would then miss them."""
    cells = jupytext.reads(source, fmt="py:percent").cells
    own = {key for cell in cells if cell.cell_type == "markdown" for doc, key in pasted(cell.source) if not doc}
    return own & offline_only_keys(source)


def offline_only_keys(source: str) -> set[str]:
    """The glue keys a chapter publishes only under ``if profile.is_offline:`` (keys built at run time are not
    seen)."""
    import ast

    cells = jupytext.reads(source, fmt="py:percent").cells
    everywhere, offline = set(), set()

    def visit(node: ast.AST, under_offline: bool) -> None:
        if isinstance(node, ast.If) and "is_offline" in ast.unparse(node.test) and \
                not isinstance(node.test, ast.UnaryOp):
            for child in node.body:
                visit(child, True)
            for child in node.orelse:
                visit(child, under_offline)
            return
        if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) in PUBLISHERS \
                and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            (offline if under_offline else everywhere).add(node.args[0].value)
        for child in ast.iter_child_nodes(node):
            visit(child, under_offline)

    for cell in cells:
        if cell.cell_type == "code":
            code = "\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!")))
            visit(ast.parse(code), False)
    return offline - everywhere


@functools.cache
def _offline_only_by_chapter() -> dict[str, frozenset[str]]:
    """Each chapter's offline-only keys, scanned once for all the pages that paste from it."""
    return {c.stem: frozenset(offline_only_keys(c.read_text(encoding="utf-8"))) for c in CHAPTERS}


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_prose_pastes_no_value_only_the_offline_profile_publishes(chapter):
    missing = offline_only_glue(chapter.read_text(encoding="utf-8"))
    assert not missing, (f"{chapter.name}: the prose pastes {sorted(missing)}, published only under "
                         "`if profile.is_offline:`; the paper profile's build fails on them (print the value under "
                         "the figure instead, or publish it in both profiles)")


@pytest.mark.parametrize("page", [*CHAPTERS, *PAGES], ids=lambda p: p.name)
def test_pages_paste_no_value_only_the_offline_profile_publishes(page):
    """Values pasted from a chapter (the book's pages, and chapters quoting each other)."""
    offline = _offline_only_by_chapter()
    missing = sorted(f"{stem}::{key}" for stem, key in pasted(page.read_text(encoding="utf-8"))
                     if stem and key in offline.get(stem, frozenset()))
    assert not missing, (f"{page.name} pastes {missing}, which the chapter publishes only in the offline profile: "
                         "the paper profile's build fails on them")


def test_the_offline_glue_scan_sees_a_key_only_the_offline_branch_publishes():
    page = ('# %% [markdown]\n# It picks it {glue:text}`acc:.0%` of the time, {glue:text}`both:.2f`.\n\n'
            '# %%\nif profile.is_offline:\n    publish("acc", 0.9)\n    publish("both", 1)\nelse:\n'
            '    publish("both", 2)\n')
    assert offline_only_glue(page) == {"acc"}
    assert offline_only_glue(page.replace('publish("acc"', 'print("acc"')) == set()
    assert pasted("CLIP {glue:text}`../notebooks/06_labclip.ipynb::swap_clip:.2f`, {glue:text}`03_x.ipynb::k`, "
                  "{glue:text}`own:.2f`") == [("06_labclip", "swap_clip"), ("03_x", "k"), ("", "own")]
    assert offline_only_glue(page.replace("`acc:", "`02_miniature.ipynb::acc:")) == set()  # another chapter's key
    assert sum(len(pasted(p.read_text(encoding="utf-8"))) for p in PAGES) > 10
