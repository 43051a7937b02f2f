"""The notebook runner must fail on a failing cell and must never pass by running nothing."""

from __future__ import annotations

import subprocess
import sys

import nbformat
import pytest

from tests.conftest import ROOT


def _notebook(path, *sources):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    nbformat.write(nb, path)


def _execute(folder, tmp_path):
    cmd = [sys.executable, str(ROOT / "tools" / "book.py"), "execute", "--dir", str(folder), "--workers", "1",
           "--report-dir", str(tmp_path / "reports")]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=300)


@pytest.mark.slow
def test_failing_cell_fails_the_runner_and_passing_one_does_not(tmp_path):
    good, bad = tmp_path / "good", tmp_path / "bad"
    good.mkdir()
    bad.mkdir()
    _notebook(good / "ok.ipynb", "x = 6 * 7", "print(x)")
    _notebook(bad / "broken.ipynb", "x = 1", "raise RuntimeError('deliberate failure in cell 2')", "print('never')")

    passed = _execute(good, tmp_path)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    executed = nbformat.read(good / "ok.ipynb", as_version=4)
    assert executed.cells[1].outputs[0]["text"] == "42\n", "outputs are written back for the site build"

    failed = _execute(bad, tmp_path)
    assert failed.returncode != 0
    assert "deliberate failure in cell 2" in failed.stdout + failed.stderr


def test_empty_folder_fails(tmp_path):
    result = _execute(tmp_path, tmp_path)
    assert result.returncode != 0
    assert "refusing to pass" in result.stdout
