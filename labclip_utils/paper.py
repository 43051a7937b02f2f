"""Numbers published for the paper, each with where it comes from, so chapters can show them *labelled* beside
the numbers they compute.

The paper's PDF could not be read when these were collected; every value comes from a secondary source and is
tagged with it (see ``shared/reference/labclip-paper.md`` §0 and §2):

- ``NOTE``: an ICLR-2026 paper note (AI-written summary of the v3 paper);
- ``SEC2``: an essay's sourcing notes, checked against source excerpts;
- ``REV``: the OpenReview ICLR-2026 reviews, quoting the paper's tables.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

SOURCES = {
    "NOTE": "ICLR-2026 paper note (secondary summary of arXiv 2502.03566v3)",
    "SEC2": "essay sourcing notes, checked against source excerpts",
    "REV": "OpenReview ICLR-2026 reviews",
    "SC": "SugarCrepe repository, table image assets/sugarcrepe_eval.png (Hsieh et al., 2023)",
}


@dataclass(frozen=True)
class PaperNumber:
    """One reported value: what it measures, for which model, and the source tag."""

    metric: str
    setting: str
    model: str
    value: float
    source: str
    note: str = ""


PAPER_NUMBERS: tuple[PaperNumber, ...] = (
    PaperNumber("swap accuracy (test split)", "CLEVR", "CLIP", 0.58, "NOTE"),
    PaperNumber("swap accuracy (test split)", "PUG:SPAR", "CLIP", 0.53, "NOTE", "SEC2 gives 0.51"),
    PaperNumber("swap accuracy (test split)", "PUG:SPARE", "CLIP", 0.50, "NOTE"),
    PaperNumber("swap accuracy (test split)", "CLEVR", "LABCLIP", 0.95, "NOTE"),
    PaperNumber("swap accuracy (test split)", "PUG:SPAR", "LABCLIP", 0.97, "NOTE"),
    PaperNumber("swap accuracy (test split)", "PUG:SPARE", "LABCLIP", 0.94, "NOTE"),
    PaperNumber("swap accuracy (test split)", "CLEVR", "CLIP-FT", 1.00, "NOTE"),
    PaperNumber("image probe (per-object colour)", "CLEVR, 2 objects", "CLIP", 0.96, "NOTE"),
    PaperNumber("text probe (per-object colour)", "CLEVR, 2 objects", "CLIP", 1.00, "NOTE"),
    PaperNumber("probe chance", "CLEVR, 2 objects", "-", 0.12, "NOTE", "1/8 colours"),
    PaperNumber("probe-direction cosine, before A", "CLEVR", "CLIP", 0.20, "NOTE"),
    PaperNumber("probe-direction cosine, after A", "CLEVR", "LABCLIP", 0.75, "NOTE"),
    # Real benchmarks, ViT-B/32, LABCLIP trained on COCO with NegCLIP's shuffled negatives (labclip-paper.md §2.3).
    *(PaperNumber(metric, setting, model, value, "NOTE", note)
      for model, values in (("CLIP", (0.63, 0.63, 0.80, 0.62, 0.30)), ("NegCLIP", (0.71, 0.81, 0.85, 0.75, 0.41)),
                            ("LABCLIP", (0.69, 0.82, 0.82, 0.74, 0.41)))
      for (metric, setting, note), value in zip(
          (("macro accuracy", "ARO VG-Attribution", ""), ("macro accuracy", "ARO VG-Relation", ""),
           ("unweighted mean", "SugarCrepe replace", "mean of the 3 replace subsets, as LABCLIP's notebook"),
           ("unweighted mean", "SugarCrepe swap", "mean of the 2 swap subsets, as LABCLIP's notebook"),
           ("text→image R@1", "COCO Karpathy 5k test", "probably text→image, what LABCLIP's COCO script reports")),
          values, strict=True)),
    # SugarCrepe's own table for OpenAI ViT-B-32 (per subset, %/100).
    *(PaperNumber("accuracy", f"SugarCrepe {subset}", "CLIP", value, "SC")
      for subset, value in (("replace_obj", 0.9092), ("replace_att", 0.8008), ("replace_rel", 0.6920),
                            ("swap_obj", 0.6138), ("swap_att", 0.6396), ("add_obj", 0.7721), ("add_att", 0.6879))),
)


def paper_table(metric_contains: str = "", setting_contains: str = "", setting: str | None = None) -> pd.DataFrame:
    """The reported numbers whose metric and setting contain the given strings (or whose setting is exactly
    ``setting``), with their sources."""
    rows = [
        {"metric": p.metric, "setting": p.setting, "model": p.model, "paper value": p.value,
         "source": f"{p.source}: {SOURCES[p.source]}" + (f" ({p.note})" if p.note else "")}
        for p in PAPER_NUMBERS
        if metric_contains in p.metric and setting_contains in p.setting and setting in (None, p.setting)
    ]
    if not rows:
        raise ValueError(f"no reported number matches {metric_contains!r} / {setting_contains!r}")
    return pd.DataFrame(rows)


def beside_paper(ours: dict[tuple[str, str], float], setting_contains: str = "",
                 setting: str | None = None) -> pd.DataFrame:
    """Our numbers (keyed by (metric, model)) in a column next to the paper's, for the rows that have both.

    Pick the paper's rows by a substring of their setting (``"CLEVR"``) or by an exact setting (``"PUG:SPAR"``).
    """
    table = paper_table(setting_contains=setting_contains, setting=setting)
    keep = [(m, k) in ours for m, k in zip(table["metric"], table["model"], strict=True)]
    table = table[keep].copy()
    if table.empty:
        raise ValueError("none of our numbers has a counterpart in the paper's table")
    table.insert(4, "this book", [round(ours[(m, k)], 3) for m, k in zip(table["metric"], table["model"], strict=True)])
    return table.set_index(["metric", "model"])
