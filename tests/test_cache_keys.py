"""Cached results are keyed by the code that computes them: editing that code recomputes them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

from tests.conftest import ROOT

SCRIPT = """
import json, sys, torch
import torch.nn.functional as F
from labclip_utils.cache import cached_json
from labclip_utils.io.hashing import code_digest
from labclip_utils.metrics import swap_accuracy
g = torch.Generator().manual_seed(0)
x = [F.normalize(torch.randn(50, 8, generator=g), dim=-1) for _ in range(3)]
value, hit = cached_json(sys.argv[1], "test", {"code": code_digest("labclip_utils.metrics")},
                         lambda: swap_accuracy(*x))
print(json.dumps([value, hit, __import__("labclip_utils").__file__]))
"""


def test_editing_the_computing_code_recomputes_the_cached_value(tmp_path):
    src = tmp_path / "src"
    shutil.copytree(ROOT / "labclip_utils", src / "labclip_utils", ignore=shutil.ignore_patterns("__pycache__"))
    env = {**os.environ, "PYTHONPATH": str(src)}

    def run():
        out = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "cache")], cwd=src, env=env,
                             capture_output=True, text=True, check=True).stdout
        return json.loads(out.strip().splitlines()[-1])

    value, hit, used = run()
    assert not hit and used.startswith(str(src)), "the temporary copy of the package is the one imported"
    assert run()[:2] == [value, True], "unchanged code: the cached value is used"
    metrics = src / "labclip_utils" / "metrics.py"
    metrics.write_text(metrics.read_text() + "\n\ndef _an_edit() -> int:\n    return 1\n")
    assert run()[:2] == [value, False], "edited code: the value is computed again"
    helper = src / "labclip_utils" / "book" / "plots.py"  # not imported by metrics: its edits do not matter here
    helper.write_text(helper.read_text() + "\n")
    assert run()[:2] == [value, True]
