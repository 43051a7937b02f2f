"""The shipped records: measured by the code installed now, and refused (naming the script to rerun) when not."""

from __future__ import annotations

import pandas as pd
import pytest

import labclip_utils.records as records
from labclip_utils.cache import code_digest
from labclip_utils.records import StaleRecordError, read_record, record_digest


def test_the_seed_record_was_measured_by_the_code_installed_now():
    # the check the chapters rely on: this fails as soon as the training or diagnosis code changes without
    # `python experiments/miniature.py` being run again
    table = read_record("miniature_seeds.csv", index_col="seed")
    assert set(table["code_digest"]) == {record_digest("miniature_seeds.csv")}
    assert len(table) == 8 and table.index.is_unique


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
