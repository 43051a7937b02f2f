"""The command line: fit A from an embeddings file, evaluate it, and clear errors on bad input."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from labclip_utils.cli import main
from labclip_utils.labclip import load_labclip, synthetic_binding_embeddings
from labclip_utils.triplets import write_embeddings


def _file(tmp_path):
    images, pos, neg = synthetic_binding_embeddings(1500, dim=32, code_dim=8, seed=0)
    split = np.array(["train"] * 1000 + ["val"] * 250 + ["test"] * 250)
    return write_embeddings(tmp_path / "emb.safetensors", images, pos, neg, split, encoder="synthetic")


def test_fit_then_eval(tmp_path, capsys):
    emb = _file(tmp_path)
    assert main(["fit", str(emb), "--out", str(tmp_path / "A.safetensors"), "--epochs", "10", "--quiet"]) == 0
    model, meta = load_labclip(tmp_path / "A.safetensors", expected_dim=32)
    assert meta["encoder"] == "synthetic" and meta["loss"] == "hnb"
    assert main(["eval", str(emb), "--labclip", str(tmp_path / "A.safetensors"), "--split", "test"]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    values = dict(kv.split("=") for kv in line.split())
    assert values["rows"] == "250" and float(values["swap_before"]) < 0.7 < 0.95 < float(values["swap_after"])


def test_bad_inputs_name_the_file(tmp_path, capsys):
    assert main(["fit", str(tmp_path / "none.safetensors"), "--out", str(tmp_path / "A.safetensors")]) == 2
    assert "none.safetensors: no such embeddings file" in capsys.readouterr().err
    (tmp_path / "junk.safetensors").write_bytes(b"junk")
    assert main(["eval", str(tmp_path / "junk.safetensors"), "--labclip", "x"]) == 2
    assert "junk.safetensors: not a safetensors embeddings file" in capsys.readouterr().err
    emb = _file(tmp_path)
    write_embeddings(tmp_path / "small.safetensors", *synthetic_binding_embeddings(10, dim=16, code_dim=4))
    main(["fit", str(tmp_path / "small.safetensors"), "--out", str(tmp_path / "A16.safetensors"), "--epochs", "1",
          "--quiet"])
    assert main(["eval", str(emb), "--labclip", str(tmp_path / "A16.safetensors")]) == 2
    assert "A is 16×16 but the embeddings have D=32" in capsys.readouterr().err


def test_module_entry_point_runs():
    out = subprocess.run([sys.executable, "-m", "labclip_utils", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "fit" in out.stdout and "embed" in out.stdout
