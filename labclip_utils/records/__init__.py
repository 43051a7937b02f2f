"""Measured records that ship with the package: tables written by the scripts in ``experiments/``.

They are data, not code: a chapter shows them with their provenance (which script wrote them, with what
settings), so that a reader in Colab, who has only the installed package, sees the same tables.

- ``miniature_seeds.csv``: ``experiments/miniature.py`` (seeds 0–4 and 10–12), the miniature trained from scratch
  with eight seeds and diagnosed, each row with the ``code_digest`` of the code that measured it (the spread the
  chapters' checks are calibrated on);
- ``miniature_design.csv``: ``experiments/miniature_design.py``, the variants tried while designing the miniature,
  re-measured with today's code on seed 0, each row with the arguments of ``experiments/miniature.py`` that measure
  it and the ``code_digest`` of the code that did;
- ``class_rehearsal.csv``: ``python tools/rehearse.py --record``, what each chapter of the paper profile fetched and
  encoded at class size in a rehearsal (stand-in data at 1% of the full size), the real data's download and the T4
  time estimated from it, and the commit it ran at.
"""

from __future__ import annotations

from importlib.resources import files

import pandas as pd

from labclip_utils.io.hashing import code_digest

RECORDS = ("miniature_seeds.csv", "miniature_design.csv")  # artifacts.json: see labclip_utils.artifacts

#: For each record with a ``code_digest`` column: the script that writes it, and the code whose edits change its
#: numbers (the modules and everything of the package they import, minus the code that only stores, downloads,
#: labels or checks results, so that editing those does not make the record stale).
_MEASURING_CODE = ("labclip_utils.models.miniature_training", "labclip_utils.diagnosis", "labclip_utils.scenes")
RECORD_CODE: dict[str, tuple[str, tuple[str, ...]]] = {
    "miniature_seeds.csv": ("python experiments/miniature.py", _MEASURING_CODE),
    "miniature_design.csv": ("python experiments/miniature_design.py", _MEASURING_CODE),
}
NOT_NUMBERS = ("labclip_utils", "labclip_utils.profile", "labclip_utils.paper", "labclip_utils.benchmarks.*",
               "labclip_utils.io.*", "labclip_utils.artifacts", "labclip_utils.progress", "labclip_utils.cache",
               "labclip_utils.models.openclip", "labclip_utils.book.*", "labclip_utils.records")


REHEARSAL = "class_rehearsal.csv"


def read_rehearsal(required: bool = True) -> pd.DataFrame | None:
    """The last recorded rehearsal's per-chapter table at class size (``python tools/rehearse.py --record``); None
    when there is none and it is not ``required`` (a rehearsal that is about to record its first)."""
    path = files(__name__) / REHEARSAL
    if not path.is_file():
        if not required:
            return None
        raise FileNotFoundError(f"{path}: no rehearsal recorded; run `python tools/rehearse.py --record`")
    with path.open("rb") as f:
        return pd.read_csv(f).set_index("chapter")


class StaleRecordError(RuntimeError):
    """A shipped record was measured by other code than the installed package's."""


def record_digest(name: str) -> str:
    """The digest that the code computing ``name``'s numbers has now (what a fresh run would write)."""
    return code_digest(*RECORD_CODE[name][1], exclude=NOT_NUMBERS)


def read_record(name: str, *, check_code: bool = True, **read_csv) -> pd.DataFrame:
    """One shipped record as a table; a clear error for an unknown name or a missing file, and (``check_code``)
    :class:`StaleRecordError` when the record's ``code_digest`` is not the digest of the code installed now."""
    if name not in RECORDS:
        raise ValueError(f"unknown record {name!r}; the package ships {RECORDS}")
    path = files(__name__) / name
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the record is missing; run the script in experiments/ that writes it")
    with path.open("rb") as f:
        table = pd.read_csv(f, **read_csv)
    if check_code and name in RECORD_CODE:
        script = RECORD_CODE[name][0]
        found = set(table["code_digest"]) if "code_digest" in table else {"(none)"}
        now = record_digest(name)
        if found != {now}:
            raise StaleRecordError(
                f"{path}: measured by code {', '.join(sorted(map(str, found)))}, but the code that computes these "
                f"numbers is now {now}; the chapters' checks would compare against stale numbers. Regenerate the "
                f"record with `{script}` (it trains the miniature once per row).")
    return table
