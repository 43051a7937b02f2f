import pytest

from labclip_utils.book.environment import environment_report, notebook_run_times, paper_downloads_table, profiles_table
from labclip_utils.book.plots import plot_run_times
from labclip_utils.profile import current_profile

JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" tests="2">
<testcase classname="" name="_stage/notebooks/01_scenes.ipynb" time="12.5"/>
<testcase classname="" name="_stage/notebooks/02_miniature.ipynb" time="200.0"><failure message="x"/></testcase>
</testsuite></testsuites>
"""


def test_environment_report_names_profile_and_versions():
    table = environment_report(current_profile("offline"))
    assert table.loc["profile", "value"] == "offline"
    assert table.loc["torch", "value"] != "not installed"
    assert table.loc["device used", "value"] in {"cpu (fp32)", "cuda (fp32)"}


def test_profile_tables():
    assert set(profiles_table().index) == {"offline", "paper"}
    assert profiles_table().loc["offline", "downloads"] == "nothing"
    assert len(paper_downloads_table()) >= 5


def test_run_times_from_junit(tmp_path):
    report = tmp_path / "nb.xml"
    report.write_text(JUNIT)
    times = notebook_run_times(report)
    assert list(times.index) == ["01_scenes", "02_miniature"]
    assert times.loc["02_miniature", "seconds"] == 200.0
    assert not times.loc["02_miniature", "passed"]
    fig = plot_run_times(times)
    assert "212 s" in fig.axes[0].get_title()


def test_run_times_missing_and_broken(tmp_path, monkeypatch):
    monkeypatch.delenv("LABCLIP_RUN_REPORT", raising=False)
    assert notebook_run_times() is None
    assert notebook_run_times(tmp_path / "absent.xml") is None
    bad = tmp_path / "bad.xml"
    bad.write_text("<testsuites><testcase")
    with pytest.raises(ValueError, match="bad.xml"):
        notebook_run_times(bad)
    empty = tmp_path / "empty.xml"
    empty.write_text("<testsuites/>")
    with pytest.raises(ValueError, match="no test cases"):
        notebook_run_times(empty)
    monkeypatch.setenv("LABCLIP_RUN_REPORT", str(bad))
    with pytest.raises(ValueError, match="bad.xml"):
        notebook_run_times()
