"""Claims that can fail: the checks behind the book's sentences, and a page whose false sentence fails its run."""

from __future__ import annotations

import math
import os

import nbformat
import pytest

from labclip_utils.book.claims import ClaimError, claim, falls_by, near_chance, nonempty, rises_by, within_seeds
from labclip_utils.records import read_record
from tests.conftest import ROOT

NOTE = "Note (not checked in this profile)"


@pytest.fixture
def offline(monkeypatch):
    """The offline profile, where a false claim raises."""
    monkeypatch.setenv("LABCLIP_PROFILE", "offline")
    monkeypatch.delenv("LABCLIP_ENFORCE_CLAIMS", raising=False)


@pytest.fixture
def paper(monkeypatch):
    """The paper profile, where a false claim prints a note (unless LABCLIP_ENFORCE_CLAIMS=1)."""
    monkeypatch.setenv("LABCLIP_PROFILE", "paper")
    monkeypatch.delenv("LABCLIP_ENFORCE_CLAIMS", raising=False)


def _seeds(column: str) -> list[float]:
    return read_record("miniature_seeds.csv")[column].astype(float).tolist()


# -- claim ----------------------------------------------------------------------------------------------------------
def test_between_includes_both_ends(offline):
    assert claim("at the low end", 0.4, between=(0.4, 0.65))
    assert claim("at the high end", 0.65, between=(0.4, 0.65))
    for outside in (0.3999, 0.6501):
        with pytest.raises(ClaimError, match="outside"):
            claim("just outside", outside, between=(0.4, 0.65))


def test_above_and_below_are_strict(offline):
    assert claim("above", 0.9001, above=0.9) and claim("below", 0.0999, below=0.1)
    with pytest.raises(ClaimError, match="not above 0.900"):
        claim("equal is not above", 0.9, above=0.9)
    with pytest.raises(ClaimError, match="not below 0.100"):
        claim("equal is not below", 0.1, below=0.1)
    assert claim("both", 0.5, above=0.4, below=0.6)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_nan_and_inf_are_refused(offline, value):
    with pytest.raises(ClaimError, match="not a finite number"):
        claim("it is a number", value, between=(-math.inf, math.inf))
    with pytest.raises(ClaimError, match="not a finite number"):
        near_chance("near chance", value, chance=0.5, width=0.1)
    with pytest.raises(ClaimError, match="not a finite number"):
        rises_by("it rises", 0.1, value, at_least=0.1)
    with pytest.raises(ClaimError, match="not a finite number"):
        within_seeds("like the seeds", value, "swap")


def test_nan_is_not_true_in_the_paper_profile_either(paper, capsys):
    assert claim("it is a number", math.nan, above=0) is False
    assert "not a finite number" in capsys.readouterr().out


def test_a_non_number_raises_type_error_and_no_bound_raises_value_error(offline):
    with pytest.raises(TypeError, match="claim 'it works': the value must be a number, got 'high'"):
        claim("it works", "high", above=0.5)
    with pytest.raises(TypeError, match="must be a number, got None"):
        near_chance("near", None, chance=0.5, width=0.1)
    with pytest.raises(ValueError, match="give at least one of between, above, below"):
        claim("no bound", 0.5)


def test_offline_raises_with_the_statement_and_the_value(offline):
    with pytest.raises(ClaimError) as error:
        claim("the swap test is above 0.9", 0.5218, above=0.9)
    assert "'the swap test is above 0.9'" in str(error.value) and "0.522" in str(error.value)
    assert isinstance(error.value, AssertionError)


def test_paper_profile_prints_a_note_and_returns_false(paper, capsys):
    assert claim("the swap test is above 0.9", 0.5218, above=0.9) is False
    out = capsys.readouterr().out
    assert out.startswith(NOTE) and "the swap test is above 0.9" in out and "0.522" in out
    assert claim("true anywhere", 0.95, above=0.9) is True
    assert capsys.readouterr().out == ""


def test_enforce_claims_raises_in_the_paper_profile(paper, monkeypatch):
    monkeypatch.setenv("LABCLIP_ENFORCE_CLAIMS", "1")
    with pytest.raises(ClaimError):
        claim("enforced", 0.5, above=0.9)
    with pytest.raises(ClaimError):
        near_chance("enforced", 0.9, chance=0.5, width=0.1)


# -- near_chance ----------------------------------------------------------------------------------------------------
def test_near_chance_is_two_sided_with_inclusive_edges(offline):
    assert near_chance("at chance", 0.5, chance=0.5, width=0.15)
    assert near_chance("at the upper edge", 0.5 + 0.15, chance=0.5, width=0.15)
    assert near_chance("at the lower edge", 0.5 - 0.15, chance=0.5, width=0.15)
    with pytest.raises(ClaimError, match=r"it is 0\.400 above chance \(0\.5\), more than the stated 0\.15"):
        near_chance("far above chance fails", 0.9, chance=0.5, width=0.15)
    with pytest.raises(ClaimError, match=r"it is 0\.400 below chance \(0\.5\), more than the stated 0\.15"):
        near_chance("far below chance fails", 0.1, chance=0.5, width=0.15)
    with pytest.raises(ClaimError, match="above chance"):
        near_chance("just past the edge", 0.6501, chance=0.5, width=0.15)
    assert near_chance("a width of zero is exact", 0.25, chance=0.25, width=0)


def test_near_chance_refuses_a_meaningless_width(offline):
    for width in (-0.1, math.nan, math.inf):
        with pytest.raises(ValueError, match="width must be a finite number"):
            near_chance("near", 0.5, chance=0.5, width=width)


# -- rises_by / falls_by --------------------------------------------------------------------------------------------
def test_rises_by_checks_the_size_of_the_rise(offline):
    assert rises_by("rises by at least 0.3", 0.5, 0.9, at_least=0.3)
    assert rises_by("at least is inclusive", 0.5, 0.75, at_least=0.25)
    assert rises_by("between", 0.5, 0.6, at_least=0.05, at_most=0.2)
    assert rises_by("at most is inclusive", 0.5, 0.75, at_most=0.25)
    with pytest.raises(ClaimError, match=r"it rises by 0\.100 \(from 0\.500\), less than 0\.3"):
        rises_by("rises by at least 0.3", 0.5, 0.6, at_least=0.3)
    with pytest.raises(ClaimError, match=r"it rises by 0\.400 \(from 0\.500\), more than 0\.2"):
        rises_by("rises by at most 0.2", 0.5, 0.9, at_most=0.2)
    with pytest.raises(ClaimError, match=r"it does not rise: from 0\.500 to 0\.400"):
        rises_by("rises by at most 0.2", 0.5, 0.4, at_most=0.2)
    with pytest.raises(ClaimError, match="does not rise"):
        rises_by("an unchanged value does not rise", 0.5, 0.5, at_most=0.2)


def test_falls_by_states_falls_as_positive_amounts(offline):
    assert falls_by("falls by at least 0.1", 0.6, 0.4, at_least=0.1)
    assert falls_by("falls by at most 0.05", 0.6, 0.58, at_most=0.05)
    with pytest.raises(ClaimError, match=r"it falls by 0\.020 \(from 0\.600\), less than 0\.1"):
        falls_by("falls by at least 0.1", 0.6, 0.58, at_least=0.1)
    with pytest.raises(ClaimError, match=r"it does not fall: from 0\.600 to 0\.900"):
        falls_by("falls by at least 0.1", 0.6, 0.9, at_least=0.1)


def test_changes_refuse_meaningless_amounts(offline):
    with pytest.raises(ValueError, match="give at least one of at_least, at_most"):
        rises_by("no amount", 0.1, 0.2)
    with pytest.raises(ValueError, match="at_least must be a finite number, not negative"):
        falls_by("a negative amount", 0.6, 0.4, at_least=-0.1)
    with pytest.raises(ValueError, match=r"at_least \(0\.3\) is above at_most \(0\.2\)"):
        rises_by("crossed amounts", 0.1, 0.5, at_least=0.3, at_most=0.2)


def test_changes_only_note_in_the_paper_profile(paper, capsys):
    assert falls_by("falls", 0.6, 0.7, at_least=0.1) is False
    assert NOTE in capsys.readouterr().out


# -- within_seeds ---------------------------------------------------------------------------------------------------
def test_within_seeds_uses_the_spread_of_the_record_plus_the_tolerance_only(offline):
    swap = _seeds("swap")
    low, high = min(swap), max(swap)
    assert len(swap) >= 2 and high > low
    assert within_seeds("a seed's own value", swap[0], "swap")
    assert within_seeds("at the high end plus the tolerance", high + 0.02, "swap", tolerance=0.02)
    assert within_seeds("at the low end minus the tolerance", low - 0.02, "swap", tolerance=0.02)
    with pytest.raises(ClaimError, match="outside"):  # not widened by the spread's width (> 0.1 here)
        within_seeds("just past the tolerance", high + 0.02 + 0.001, "swap", tolerance=0.02)
    with pytest.raises(ClaimError, match="outside"):
        within_seeds("just below the tolerance", low - 0.02 - 0.001, "swap", tolerance=0.02)
    assert within_seeds("a tolerance of zero is the seeds' range", high, "swap", tolerance=0)
    with pytest.raises(ClaimError):
        within_seeds("a tolerance of zero is the seeds' range", high + 0.001, "swap", tolerance=0)


def test_within_seeds_message_names_the_column_the_range_and_the_seeds(offline):
    heldout = _seeds("swap_after_A_heldout")
    with pytest.raises(ClaimError) as error:
        within_seeds("LABCLIP's swap test holds on held-out combinations", 0.5, "swap_after_A_heldout")
    message = str(error.value)
    assert "'swap_after_A_heldout'" in message
    assert f"from {min(heldout):.3f} to {max(heldout):.3f}" in message
    assert f"over {len(heldout)} seeds (miniature_seeds.csv)" in message and "0.02" in message


def test_within_seeds_refuses_an_unknown_column_or_record_in_every_profile(paper):
    with pytest.raises(ValueError, match=r"miniature_seeds\.csv has no column 'swapp'; it has \[.*'swap'"):
        within_seeds("a typo", 0.5, "swapp")
    with pytest.raises(ValueError, match="unknown record"):
        within_seeds("a typo", 0.5, "swap", record="nope.csv")
    with pytest.raises(ValueError, match="tolerance must be a finite number, not negative"):
        within_seeds("a negative tolerance", 0.5, "swap", tolerance=-0.01)


# -- nonempty -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("profile", ["offline", "paper"])
def test_nonempty_raises_on_an_empty_loop_in_every_profile(monkeypatch, profile):
    monkeypatch.setenv("LABCLIP_PROFILE", profile)
    monkeypatch.delenv("LABCLIP_ENFORCE_CLAIMS", raising=False)
    with pytest.raises(ClaimError, match="the swap columns is empty"):
        nonempty("the swap columns", [])
    with pytest.raises(ClaimError, match="empty"):
        nonempty("the swap labels", (label for label in ["replace-obj", "add-att"] if "swap" in label))
    assert nonempty("the swap labels", (label for label in ["swap-att", "add-att"] if "swap" in label)) == \
        ["swap-att"]
    with pytest.raises(TypeError, match="not the string"):
        nonempty("a string by mistake", "swap")


# -- a page whose false sentence fails its run ------------------------------------------------------------------------
SENTENCE_FALSE = "the swap test on held-out combinations is above 0.9"
SENTENCE_TRUE = "the swap test on held-out combinations is near chance"
READ = ('from labclip_utils.book.claims import claim, near_chance\n'
        'from labclip_utils.records import read_record\n'
        'swap = read_record("miniature_seeds.csv").set_index("seed").loc[0, "swap"]')


def _page(sentence: str, check: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(READ), nbformat.v4.new_markdown_cell(f"On held-out combinations {sentence}."),
                nbformat.v4.new_code_cell(check, metadata={"tags": ["remove-cell"]}),
                nbformat.v4.new_code_cell("print('the page ran to the end')")]
    return nb


def test_a_false_sentence_fails_the_page_and_the_true_one_passes(tmp_path, monkeypatch):
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    monkeypatch.setenv("LABCLIP_PROFILE", "offline")
    monkeypatch.delenv("LABCLIP_ENFORCE_CLAIMS", raising=False)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    assert read_record("miniature_seeds.csv").set_index("seed").loc[0, "swap"] < 0.9, "the false page must be false"

    def run(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
        NotebookClient(nb, timeout=60, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
        return nb

    false_page = _page(SENTENCE_FALSE, f"claim({SENTENCE_FALSE!r}, swap, above=0.9)")
    with pytest.raises(CellExecutionError) as error:
        run(false_page)
    assert error.value.ename == "ClaimError" and SENTENCE_FALSE in error.value.evalue
    assert not false_page.cells[3].outputs, "the page stops at the false sentence"

    true_page = run(_page(SENTENCE_TRUE, f"near_chance({SENTENCE_TRUE!r}, swap, chance=0.5, width=0.15)"))
    assert true_page.cells[3].outputs[0]["text"] == "the page ran to the end\n"
