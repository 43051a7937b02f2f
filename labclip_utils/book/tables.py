"""Tables as a reader should see them: named columns, rounded numbers, no index noise, missing values explained."""

from __future__ import annotations

import pandas as pd

#: What an empty cell shows (and what the page says it means).
MISSING = "–"


def show(table: pd.DataFrame | pd.Series, precision: int = 3, missing: str = MISSING):
    """A pandas Styler for display: the index becomes ordinary first column(s) named as the index was (so there is no
    extra header row and no row numbers), numbers are rounded to ``precision`` decimals and empty cells show
    ``missing``."""
    frame = (table.to_frame() if isinstance(table, pd.Series) else table).copy()
    if not isinstance(frame.index, pd.RangeIndex) or any(n is not None for n in frame.index.names):
        # unnamed levels get distinct blank names, so that their columns have empty headers
        names = [n if n is not None else " " * k for k, n in enumerate(frame.index.names)]
        frame = frame.rename_axis(names).reset_index()
    if isinstance(frame.columns, pd.MultiIndex):
        frame.columns = [" / ".join(str(c) for c in col if str(c)) for col in frame.columns]
    frame.columns.name = None  # a columns name would add a header row of its own
    counts = [c for c in frame.columns if _is_count(frame[c])]
    # text is escaped: a cell such as "<cache>/data" must read as written, not vanish as an unknown HTML tag
    return (frame.style.hide(axis="index").format(precision=precision, na_rep=missing, escape="html")
            .format("{:.0f}", subset=counts, na_rep=missing, escape="html").format_index(escape="html", axis=1))


def _is_count(column: pd.Series) -> bool:
    """A column of whole numbers beyond 1 (items, scenes, seconds rounded): printed without decimals, so that 242
    items do not read "242.000". Accuracies that happen to be 0 or 1 keep their decimals."""
    if not pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
        return False
    values = column.dropna()
    return len(values) > 0 and bool((values == values.round()).all()) and bool((values.abs() > 1).any())


def html_table(frame: pd.DataFrame, classes: str = "") -> str:
    """``frame`` as an HTML table whose text cells may hold inline code in backticks and *emphasis* (the protocol
    table): the text is escaped, code and emphasis are set as such, and long identifiers may break after ``.``,
    ``_`` and ``/`` instead of widening the table."""
    import html
    import re

    def cell(value: object) -> str:
        parts = re.split(r"`([^`]*)`", html.escape(str(value), quote=False))
        for i in range(1, len(parts), 2):
            parts[i] = "<code>" + re.sub(r"([._/])", r"\1<wbr>", parts[i]) + "</code>"
        for i in range(0, len(parts), 2):
            parts[i] = re.sub(r"(?<![\w*])\*([^*\s][^*]*?)\*(?![\w*])", r"<em>\1</em>", parts[i])
        return "".join(parts)

    named = any(n is not None for n in frame.index.names)
    frame = frame.reset_index() if named else frame
    return frame.map(cell).to_html(classes=classes, escape=False, index=not named)
