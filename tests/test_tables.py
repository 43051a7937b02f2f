"""Tables for readers: index as named columns, rounded numbers, missing values shown as a dash."""

from __future__ import annotations

import pandas as pd

from labclip_utils.book.tables import MISSING, html_table, show


def test_tables_read_cleanly():
    named = pd.DataFrame({"accuracy": [0.123456, None]}, index=pd.Index(["image", "text"], name="features"))
    html = show(named).to_html()
    assert html.count("<th ") == 2 and "features" in html and "0.123" in html and "0.1234" not in html
    assert MISSING in html and "nan" not in html.lower()
    multi = pd.DataFrame({"v": [1.0, 2.0]}, index=pd.MultiIndex.from_tuples([("a", "x"), ("b", "y")]))
    assert show(multi).to_html().count("<th ") == 3
    assert show(pd.Series([1.0, 2.0], name="v")).to_html().count("<th ") == 1


def test_counts_print_as_whole_numbers_and_accuracies_keep_their_decimals():
    frame = pd.DataFrame({"items": [242.0, 474.0], "accuracy": [1.0, 0.0], "seconds": [359.2, 12.0]},
                         index=pd.Index(["a", "b"], name="benchmark"))
    html = show(frame).to_html()
    assert ">242<" in html and "242.000" not in html  # a count
    assert ">1.000<" in html and ">0.000<" in html  # an accuracy that happens to be whole
    assert ">359.200<" in html  # not whole: decimals kept


def test_a_named_column_axis_adds_no_header_row_and_the_callers_frame_is_untouched():
    frame = pd.DataFrame({"CLIP": [0.5], "LABCLIP": [0.9]}, index=pd.Index(["swap"], name="benchmark"))
    frame.columns.name = "model"  # what pivot_table leaves
    html = show(frame).to_html()
    assert html.count("<tr>") == 2 and "model" not in html  # one header row, one body row
    assert frame.columns.name == "model" and frame.index.name == "benchmark"


def test_html_table_sets_backticks_as_code_and_escapes_the_rest():
    frame = pd.DataFrame({"paper's code": ["files `images_{N}obj/` & <b>"]}, index=pd.Index(["data"], name="choice"))
    html = html_table(frame, classes="protocol-table")
    assert "<code>images_<wbr>{N}obj/<wbr></code>" in html and "&amp; &lt;b&gt;" in html and "`" not in html
    assert "protocol-table" in html and html.count("<tr") == 2 and ">choice<" in html


def test_text_in_angle_brackets_reads_as_written():
    """A cell or header such as "<cache>/data" is escaped: unescaped, the browser drops it as an unknown tag."""
    frame = pd.DataFrame({"<default>": ["<cache>/data", "a & b"]}, index=pd.Index(["X", "Y"], name="setting"))
    html = show(frame).to_html()
    assert "&lt;cache&gt;/data" in html and "a &amp; b" in html and "&lt;default&gt;" in html
    assert "<cache>" not in html
    marked = html_table(pd.DataFrame({"c": ["Python *sets* of colours, `a*b`, 2 * 3"]}))
    assert "<em>sets</em>" in marked and "<code>a*b</code>" in marked and "2 * 3" in marked
