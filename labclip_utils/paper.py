"""Numbers published for the paper, each with where it comes from and the protocol it was measured under, so
chapters can show them *labelled*, and beside one of ours only when the protocols match.

The paper's PDF could not be read when these were collected; every value comes from a source tagged with it:

- ``NOTE``: an ICLR-2026 paper note (AI-written summary of the v3 paper);
- ``SEC2``: an essay's sourcing notes, checked against source excerpts;
- ``REV``: the OpenReview ICLR-2026 reviews, quoting the paper's tables;
- ``SC``: SugarCrepe's own table (Hsieh et al., 2023);
- ``REPO``: computed from a file of the authors' repository.

Every lookup names its fields: ``paper_value(setting="CLEVR", metric="swap accuracy (test split)",
model="LABCLIP")``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd

SOURCES = {
    "NOTE": "an AI-written summary of the paper (arXiv 2502.03566v3), an ICLR 2026 paper note found in public code "
            "repositories; its numbers were not checked against the paper's PDF",
    "SEC2": "an essay's sourcing notes on the paper, which say they were checked against source excerpts (secondary)",
    "REV": "the paper's OpenReview ICLR 2026 reviews, which quote its tables (secondary)",
    "SC": "SugarCrepe's own repository, table image assets/sugarcrepe_eval.png (Hsieh et al., 2023; primary)",
    "REPO": "the authors' repository (github.com/kdariina/CLIP-not-BoW-unimodally): the released matrix "
            "alignment/weights/labclip_coco_neg_B32.pt, summarised from the file itself (primary)",
}


@dataclass(frozen=True)
class PaperNumber:
    """One reported value: where (setting), what (metric), for which model, under which protocol, from where."""

    setting: str
    metric: str
    model: str
    value: float
    source: str
    protocol: str
    note: str = ""


_SWAP = "swap accuracy (test split)"
PAPER_NUMBERS: tuple[PaperNumber, ...] = (
    PaperNumber("CLEVR", _SWAP, "CLIP", 0.58, "NOTE", "clevr"),
    PaperNumber("PUG:SPAR", _SWAP, "CLIP", 0.53, "NOTE", "pug_spar", "SEC2 gives 0.51"),
    PaperNumber("PUG:SPARE", _SWAP, "CLIP", 0.50, "NOTE", "pug_spare"),
    PaperNumber("CLEVR", _SWAP, "LABCLIP", 0.95, "NOTE", "clevr"),
    PaperNumber("PUG:SPAR", _SWAP, "LABCLIP", 0.97, "NOTE", "pug_spar"),
    PaperNumber("PUG:SPARE", _SWAP, "LABCLIP", 0.94, "NOTE", "pug_spare"),
    PaperNumber("CLEVR", _SWAP, "CLIP-FT", 1.00, "NOTE", "clevr"),
    PaperNumber("CLEVR, 2 objects", "image probe (per-object colour)", "CLIP", 0.96, "NOTE", "probe"),
    PaperNumber("CLEVR, 2 objects", "text probe (per-object colour)", "CLIP", 1.00, "NOTE", "probe"),
    PaperNumber("CLEVR, 2 objects", "probe chance", "-", 0.12, "NOTE", "probe", "1/8 colours"),
    PaperNumber("CLEVR", "probe-direction cosine, before A", "CLIP", 0.20, "NOTE", "clevr"),
    PaperNumber("CLEVR", "probe-direction cosine, after A", "LABCLIP", 0.75, "NOTE", "clevr"),
    # The multi-object probe curve, read off the paper's figure by the secondary source (exact values not found).
    PaperNumber("CLEVR, 3 to 10 objects", "text probe, lowest over object counts (at least)", "CLIP", 0.80, "NOTE",
                "probe_multi", "read off the paper's figure; 'above 0.8 throughout'"),
    PaperNumber("CLEVR, 3 to 10 objects", "image probe, fewest objects (about)", "CLIP", 0.90, "NOTE", "probe_multi",
                "read off the paper's figure"),
    PaperNumber("CLEVR, 3 to 10 objects", "image probe, most objects (about)", "CLIP", 0.60, "NOTE", "probe_multi",
                "read off the paper's figure"),
    PaperNumber("conjunctive search, up to 35 objects", "linear probe accuracy (at least)", "CLIP", 0.80, "NOTE",
                "conjunctive", "the paper states 'above 0.80 even with 35 objects'"),
    # Real benchmarks, ViT-B/32, LABCLIP trained on COCO with NegCLIP's shuffled negatives.
    *(PaperNumber(setting, metric, model, value, "NOTE", protocol, note)
      for model, values in (("CLIP", (0.63, 0.63, 0.80, 0.62, 0.30)), ("NegCLIP", (0.71, 0.81, 0.85, 0.75, 0.41)),
                            ("LABCLIP", (0.69, 0.82, 0.82, 0.74, 0.41)))
      for (setting, metric, protocol, note), value in zip(
          (("ARO VG-Attribution", "macro accuracy", "aro_vga", ""),
           ("ARO VG-Relation", "macro accuracy", "aro_vgr", "no relation dropped, as LABCLIP's notebook"),
           ("SugarCrepe replace", "unweighted mean", "sugarcrepe",
            "mean of the 3 replace subsets, as LABCLIP's notebook"),
           ("SugarCrepe swap", "unweighted mean", "sugarcrepe", "mean of the 2 swap subsets, as LABCLIP's notebook"),
           ("COCO Karpathy 5k test", "text→image R@1", "coco_retrieval",
            "probably text→image, what LABCLIP's COCO script reports")),
          values, strict=True)),
    # SugarCrepe's own table for OpenAI ViT-B-32 (per subset, %/100): its protocol is SugarCrepe's main_eval.py.
    *(PaperNumber(f"SugarCrepe {subset}", "accuracy", "CLIP", value, "SC", "sugarcrepe")
      for subset, value in (("replace_obj", 0.9092), ("replace_att", 0.8008), ("replace_rel", 0.6920),
                            ("swap_obj", 0.6138), ("swap_att", 0.6396), ("add_obj", 0.7721), ("add_att", 0.6879))),
    # The authors' released COCO matrix for ViT-B/32 (D = 512), summarised from the file itself.
    PaperNumber("released COCO A, ViT-B/32", "mean diagonal", "LABCLIP", 1.33, "REPO", "released_A"),
    PaperNumber("released COCO A, ViT-B/32", "mean |off-diagonal|", "LABCLIP", 0.076, "REPO", "released_A"),
)


def paper_number(*, setting: str, metric: str, model: str) -> PaperNumber:
    """The one reported number for (setting, metric, model); a clear error when there is none or several."""
    found = [p for p in PAPER_NUMBERS if (p.setting, p.metric, p.model) == (setting, metric, model)]
    if len(found) != 1:
        raise KeyError(f"{len(found)} paper numbers for setting={setting!r}, metric={metric!r}, model={model!r}")
    return found[0]


def paper_value(*, setting: str, metric: str, model: str) -> float:
    """The value of :func:`paper_number`."""
    return paper_number(setting=setting, metric=metric, model=model).value


def _source(p: PaperNumber) -> str:
    return f"{p.source}: {SOURCES[p.source]}" + (f" ({p.note})" if p.note else "")


def paper_table(*, setting: str | None = None, setting_contains: str = "", metric_contains: str = "") -> pd.DataFrame:
    """The reported numbers whose setting is ``setting`` (or contains ``setting_contains``) and whose metric
    contains ``metric_contains``, with their protocol and source."""
    rows = [{"setting": p.setting, "metric": p.metric, "model": p.model, "paper value": p.value,
             "protocol": p.protocol, "source": _source(p)}
            for p in PAPER_NUMBERS
            if setting in (None, p.setting) and setting_contains in p.setting and metric_contains in p.metric]
    if not rows:
        raise ValueError(f"no reported number matches setting={setting!r}/{setting_contains!r}, "
                         f"metric containing {metric_contains!r}")
    return pd.DataFrame(rows)


#: The column of :func:`beside_paper` that holds the paper's values: they are always real CLIP's.
PAPER_COLUMN = "paper (real CLIP)"


def beside_paper(ours: Iterable[tuple[str, str, str, float]], protocol: str | None = None,
                 ours_label: str = "this book") -> pd.DataFrame:
    """Our numbers, given as ``(setting, metric, model, value)``, in a column (named ``ours_label``, e.g. "this
    book (miniature)") next to the paper's, which is named :data:`PAPER_COLUMN` so that a reader never takes the
    two for the same model.

    ``protocol`` is the protocol our numbers were measured under (a row of :mod:`labclip_utils.book.protocol`); a
    paper number is shown beside ours only when its protocol is the same, otherwise the cell says why not.
    """
    rows = []
    for setting, metric, model, value in ours:
        p = paper_number(setting=setting, metric=metric, model=model)
        same = protocol is None or protocol == p.protocol
        rows.append({"setting": setting, "metric": metric, "model": model, ours_label: round(float(value), 3),
                     PAPER_COLUMN: p.value if same else None, "protocol": p.protocol,
                     "source": _source(p) if same else f"not comparable: measured under protocol {p.protocol!r}"})
    if not rows:
        raise ValueError("none of our numbers has a counterpart in the paper's table")
    return pd.DataFrame(rows).set_index(["setting", "metric", "model"])
