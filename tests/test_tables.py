"""Tables for readers: index as named columns, rounded numbers, missing values shown as a dash."""

from __future__ import annotations

import pandas as pd

from labclip_utils.tables import MISSING, show


def test_tables_read_cleanly():
    named = pd.DataFrame({"accuracy": [0.123456, None]}, index=pd.Index(["image", "text"], name="features"))
    html = show(named).to_html()
    assert html.count("<th ") == 2 and "features" in html and "0.123" in html and "0.1234" not in html
    assert MISSING in html and "nan" not in html.lower()
    multi = pd.DataFrame({"v": [1.0, 2.0]}, index=pd.MultiIndex.from_tuples([("a", "x"), ("b", "y")]))
    assert show(multi).to_html().count("<th ") == 3
    assert show(pd.Series([1.0, 2.0], name="v")).to_html().count("<th ") == 1
