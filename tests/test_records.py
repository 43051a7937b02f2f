"""The shipped records: measured by the code installed now, and refused (naming the script to rerun) when not."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

import labclip_utils.records as records
from labclip_utils.io.hashing import code_digest
from labclip_utils.records import StaleRecordError, read_record, record_digest


def test_the_seed_record_was_measured_by_the_code_installed_now():
    # the check the chapters rely on: this fails as soon as the training or diagnosis code changes without
    # `python experiments/miniature.py` being run again
    table = read_record("miniature_seeds.csv", index_col="seed")
    assert set(table["code_digest"]) == {record_digest("miniature_seeds.csv")}
    assert len(table) == 8 and table.index.is_unique


@pytest.fixture()
def design_script(monkeypatch):
    """experiments/miniature_design.py as a module (it imports experiments/miniature.py by name, as a script)."""
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "experiments"))
    import miniature_design

    yield miniature_design
    sys.modules.pop("miniature_design", None)
    sys.modules.pop("miniature", None)


def test_the_design_record_is_the_scripts_variants_measured_by_the_code_installed_now(design_script):
    design = read_record("miniature_design.csv", index_col="step")
    assert set(design["code_digest"]) == {record_digest("miniature_design.csv")}
    # every row says how to measure it again, and says what the script measures: no row typed by hand
    assert list(design.index) == [step for step, _, _ in design_script.VARIANTS]
    assert list(design["variant"]) == [variant for _, variant, _ in design_script.VARIANTS]
    assert list(design["arguments"].fillna("")) == [arguments for _, _, arguments in design_script.VARIANTS]
    for step, _, arguments in design_script.VARIANTS:
        overrides, _ = design_script.parse_arguments(arguments)
        described = design_script.describe(overrides)
        assert design.loc[step, list(described)].to_dict() == described, f"step {step}"


def test_the_design_records_chosen_architecture_is_the_seed_records_seed_0(design_script):
    # step 5 is the book's miniature on seed 0, trained again: the same numbers up to run-to-run noise, or one of
    # the two records was measured differently from what it says
    design = read_record("miniature_design.csv", index_col="step").loc[5]
    seed0 = read_record("miniature_seeds.csv", index_col="seed").loc[0]
    pairs = {"swap (held-out)": "swap", "image probe (held-out)": "image_probe",
             "text probe (held-out)": "text_probe_heldout", "centroid gap": "gap",
             "LABCLIP swap (held-out)": "swap_after_A_heldout"}
    for design_column, seed_column in pairs.items():
        assert design[design_column] == pytest.approx(seed0[seed_column], abs=0.02), design_column
    assert design_script.VARIANTS[4][2] == "" and design_script.parse_arguments("") == ({}, design_script.POOL)


def test_a_design_row_with_arguments_the_script_refuses_is_refused(design_script):
    with pytest.raises(SystemExit, match="expected FIELD=VALUE"):
        design_script.parse_arguments("--set no_such_field=1")
    with pytest.raises(SystemExit, match="takes --set and --pool"):
        design_script.parse_arguments("--seeds 3")


def test_a_record_from_other_code_is_refused_with_the_script_to_run(tmp_path, monkeypatch):
    table = read_record("miniature_seeds.csv")
    table.assign(code_digest="0123456789abcdef").to_csv(tmp_path / "miniature_seeds.csv", index=False)
    monkeypatch.setattr(records, "files", lambda _: tmp_path)
    with pytest.raises(StaleRecordError, match=r"measured by code 0123456789abcdef.*python experiments/miniature\.py"):
        read_record("miniature_seeds.csv")
    assert len(read_record("miniature_seeds.csv", check_code=False)) == len(table)  # an explicit opt-out still reads


def test_a_record_without_a_digest_is_refused(tmp_path, monkeypatch):
    pd.DataFrame({"seed": [0], "swap": [0.5]}).to_csv(tmp_path / "miniature_seeds.csv", index=False)
    monkeypatch.setattr(records, "files", lambda _: tmp_path)
    with pytest.raises(StaleRecordError, match=r"measured by code \(none\)"):
        read_record("miniature_seeds.csv")


def test_the_record_digest_follows_the_computing_code_only():
    modules, exclude = records.RECORD_CODE["miniature_seeds.csv"][1], records.NOT_NUMBERS
    assert record_digest("miniature_seeds.csv") == code_digest(*modules, exclude=exclude)
    # excluding code that does not compute numbers changes the digest, and excluding nothing is the full closure
    assert code_digest(*modules) != record_digest("miniature_seeds.csv")
    assert code_digest(*modules, exclude=()) == code_digest(*modules)


def test_exclude_leaves_out_a_module_and_everything_only_it_imports(tmp_path, monkeypatch):
    pkg = tmp_path / "digestpkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "core.py").write_text("from digestpkg import helper\nfrom digestpkg.sub import labels\n")
    (pkg / "helper.py").write_text("X = 1\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "labels.py").write_text("from digestpkg import only_labels\n")
    (pkg / "only_labels.py").write_text("Y = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    before = code_digest("digestpkg.core", exclude=("digestpkg.sub.*",))
    (pkg / "only_labels.py").write_text("Y = 2\n")  # reached only through the excluded subpackage
    assert code_digest("digestpkg.core", exclude=("digestpkg.sub.*",)) == before
    assert code_digest("digestpkg.core") != code_digest("digestpkg.core", exclude=("digestpkg.sub.*",))
    (pkg / "helper.py").write_text("X = 2\n")  # computing code: the digest moves
    assert code_digest("digestpkg.core", exclude=("digestpkg.sub.*",)) != before
