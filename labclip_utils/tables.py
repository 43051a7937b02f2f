"""Tables as a reader should see them: named columns, rounded numbers, no index noise, missing values explained."""

from __future__ import annotations

import pandas as pd

#: What an empty cell shows (and what the page says it means).
MISSING = "–"


def show(table: pd.DataFrame | pd.Series, precision: int = 3, missing: str = MISSING):
    """A pandas Styler for display: the index becomes ordinary first column(s) named as the index was (so there is no
    extra header row and no row numbers), numbers are rounded to ``precision`` decimals and empty cells show
    ``missing``."""
    frame = table.to_frame() if isinstance(table, pd.Series) else table
    if not isinstance(frame.index, pd.RangeIndex) or any(n is not None for n in frame.index.names):
        # unnamed levels get distinct blank names, so that their columns have empty headers
        names = [n if n is not None else " " * k for k, n in enumerate(frame.index.names)]
        frame = frame.rename_axis(names).reset_index()
    if isinstance(frame.columns, pd.MultiIndex):
        frame.columns = [" / ".join(str(c) for c in col if str(c)) for col in frame.columns]
    return frame.style.hide(axis="index").format(precision=precision, na_rep=missing)
