"""Measured records that ship with the package: tables written by the scripts in ``experiments/``.

They are data, not code: a chapter shows them with their provenance (which script wrote them, with what
settings), so that a reader in Colab, who has only the installed package, sees the same tables.

- ``miniature_seeds.csv``: ``experiments/miniature.py --seeds 0 1 2``, the miniature trained from scratch with
  three seeds and diagnosed (the spread the chapters' checks are calibrated on);
- ``miniature_design.csv``: the variants measured while designing the miniature, one seed each.
"""

from __future__ import annotations

from importlib.resources import files

import pandas as pd

RECORDS = ("miniature_seeds.csv", "miniature_design.csv")  # artifacts.json: see labclip_utils.artifacts


def read_record(name: str, **read_csv) -> pd.DataFrame:
    """One shipped record as a table; a clear error for an unknown name or a missing file."""
    if name not in RECORDS:
        raise ValueError(f"unknown record {name!r}; the package ships {RECORDS}")
    path = files(__name__) / name
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the record is missing; run the script in experiments/ that writes it")
    with path.open("rb") as f:
        return pd.read_csv(f, **read_csv)
