"""Benchmark metrics exactly as the benchmarks' own code defines them, each a small pure function on scores.

Definitions (and where each comes from, see ``shared/reference/labclip-paper.md`` §1.8, §3):

- **choice accuracy**: an item is right when the true caption scores above every other option. ``ties="strict"``
  (``>``: SugarCrepe's ``main_eval.py``, PUG in LABCLIP's code) or ``"correct"`` (``>=``: LABCLIP's CLEVR code).
  ARO's ``argmax`` picks the *first* maximum, so ties go to whichever option comes first (``"first"``).
- **ARO macro**: the mean of per-group accuracies (VG-R: per relation; VG-A: per attribute pair, only pairs with
  at least 25 items). **ARO micro**: the plain mean over items. ARO's paper reports macro.
- **Recall@K**: text→image (one true image per caption; what LABCLIP's COCO script reports) and image→text
  (any of the image's captions in the top K).
- **SugarCrepe means**: per subset accuracy, then per family (replace, swap, add) both **count-weighted** (the
  SugarCrepe paper's aggregate table) and **unweighted** (LABCLIP's notebook).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Literal

import numpy as np
import pandas as pd
import torch

ChoiceTies = Literal["strict", "correct", "first"]

#: SugarCrepe's subsets by family.
SUGARCREPE_FAMILIES: dict[str, tuple[str, ...]] = {
    "replace": ("replace_obj", "replace_att", "replace_rel"),
    "swap": ("swap_obj", "swap_att"),
    "add": ("add_obj", "add_att"),
}
#: ARO's VG-Attribution keeps attribute pairs with at least this many items in its macro average.
ARO_VGA_MIN_COUNT = 25


def choice_correct(scores: np.ndarray, answer: np.ndarray, ties: ChoiceTies = "strict") -> np.ndarray:
    """Per item: does the true option win? ``scores`` is N×K (one row per item), ``answer`` the true column."""
    scores = np.asarray(scores, dtype=np.float64)
    answer = np.asarray(answer, dtype=np.int64)
    if scores.ndim != 2 or len(scores) != len(answer):
        raise ValueError(f"scores must be N×K with N = len(answer); got {scores.shape} for {len(answer)} answers")
    rows = np.arange(len(scores))
    true = scores[rows, answer]
    others = scores.copy()
    others[rows, answer] = -np.inf
    best_other = others.max(axis=1)
    if ties == "strict":
        return true > best_other
    if ties == "correct":
        return true >= best_other
    if ties == "first":
        return scores.argmax(axis=1) == answer
    raise ValueError(f"unknown tie rule {ties!r}; use 'strict', 'correct' or 'first'")


def macro_accuracy(correct: np.ndarray, groups: Sequence[str], *, min_count: int = 1,
                   exclude: Collection[str] = ()) -> tuple[float, pd.DataFrame]:
    """Mean of per-group accuracies over groups with at least ``min_count`` items and not in ``exclude``.

    Returns the value and the per-group table (accuracy, count, kept), so a reader can see what was dropped.
    """
    frame = pd.DataFrame({"group": np.asarray(groups, dtype=object), "correct": np.asarray(correct, dtype=float)})
    if frame.empty:
        raise ValueError("no items")
    per = frame.groupby("group", sort=True)["correct"].agg(accuracy="mean", count="size")
    per["kept"] = (per["count"] >= min_count) & ~per.index.isin(list(exclude))
    if not per["kept"].any():
        raise ValueError(f"no group has at least {min_count} items outside the excluded ones")
    return float(per.loc[per["kept"], "accuracy"].mean()), per


def micro_accuracy(correct: np.ndarray) -> float:
    """The plain mean over items."""
    correct = np.asarray(correct, dtype=float)
    if correct.size == 0:
        raise ValueError("no items")
    return float(correct.mean())


def ranks_of_true(scores: torch.Tensor, true_column: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
    """0-based rank of each row's true column (how many columns score strictly higher), in row chunks."""
    out = []
    for start in range(0, len(scores), chunk):
        block = scores[start : start + chunk]
        true = block.gather(1, true_column[start : start + chunk, None])
        out.append((block > true).sum(dim=1))
    return torch.cat(out)


def text_to_image_recall(images: torch.Tensor, texts: torch.Tensor, text_image: torch.Tensor,
                         ks: Sequence[int] = (1, 5, 10), chunk: int = 4096) -> dict[int, float]:
    """Share of captions whose own image is among the top-K images (LABCLIP's ``get_results_t2i``)."""
    ranks = torch.cat([ranks_of_true(texts[s : s + chunk] @ images.T, text_image[s : s + chunk])
                       for s in range(0, len(texts), chunk)])
    return {k: (ranks < k).float().mean().item() for k in ks}


def image_to_text_recall(images: torch.Tensor, texts: torch.Tensor, text_image: torch.Tensor,
                         ks: Sequence[int] = (1, 5, 10), chunk: int = 1024) -> dict[int, float]:
    """Share of images with at least one of their captions among the top-K captions."""
    hits = {k: 0 for k in ks}
    kmax = min(max(ks), len(texts))
    for s in range(0, len(images), chunk):
        top = (images[s : s + chunk] @ texts.T).topk(kmax, dim=1).indices
        own = text_image[top] == torch.arange(s, s + len(top))[:, None]
        for k in ks:
            hits[k] += int(own[:, :k].any(dim=1).sum())
    return {k: hits[k] / len(images) for k in ks}


def sugarcrepe_summary(accuracy: Mapping[str, float], counts: Mapping[str, int]) -> pd.DataFrame:
    """Per-family means of SugarCrepe's subset accuracies, count-weighted and unweighted.

    Families with no subset present are left out; a family with some subsets missing is computed from those
    present, and the ``subsets`` column says which.
    """
    rows = []
    for family, subsets in SUGARCREPE_FAMILIES.items():
        present = [s for s in subsets if s in accuracy]
        if not present:
            continue
        acc = np.array([accuracy[s] for s in present])
        n = np.array([counts[s] for s in present], dtype=float)
        rows.append({"family": family, "weighted": float((acc * n).sum() / n.sum()), "unweighted": float(acc.mean()),
                     "items": int(n.sum()), "subsets": ", ".join(present)})
    if not rows:
        raise ValueError(f"no SugarCrepe subset among {sorted(accuracy)}")
    return pd.DataFrame(rows).set_index("family")
