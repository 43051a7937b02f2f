"""The package's layering (issue: no import cycles, no upward imports): import-linter's contracts in pyproject.toml
pass on the package, and fail on a copy of it with an upward import added, so the check can fail."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

LINT = Path(sys.executable).with_name("lint-imports")


def _lint(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(LINT), "--config", str(root / "pyproject.toml")], cwd=root, capture_output=True,
                          text=True, env={"PYTHONPATH": str(root), "PATH": str(LINT.parent)}, timeout=300)


@pytest.fixture(scope="module")
def copy(tmp_path_factory) -> Path:
    if not LINT.exists():
        pytest.fail(f"{LINT}: import-linter is not installed (it is in requirements.txt)")
    root = tmp_path_factory.mktemp("layering")
    shutil.copytree(ROOT / "labclip_utils", root / "labclip_utils", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")
    return root


def test_the_package_keeps_its_contracts(copy):
    result = _lint(copy)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


@pytest.mark.parametrize("module, upward", [
    ("profile.py", "from labclip_utils.models import load_encoder  # noqa"),        # settings -> models
    ("io/mirror.py", "from labclip_utils.io.downloads import fetch  # noqa"),      # the old cycle
    ("scenes/world.py", "from labclip_utils.book.tables import show  # noqa"),     # data -> the book's helpers
])
def test_an_upward_import_breaks_the_build(copy, module, upward):
    path = copy / "labclip_utils" / module
    original = path.read_text()
    try:
        path.write_text(original + f"\n\ndef _upward():\n    {upward}\n")
        result = _lint(copy)
    finally:
        path.write_text(original)
    assert result.returncode != 0 and "BROKEN" in result.stdout.upper(), result.stdout[-2000:]
