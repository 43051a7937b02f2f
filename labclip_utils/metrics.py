"""Every metric of the book, as small pure functions on scores or embeddings, with one tie vocabulary.

**Choice accuracy** (the swap test, ARO, SugarCrepe, the order tests): an item is right when its true option
scores above every other option. What happens on a tie is part of each benchmark's definition, so it is always
explicit:

- ``"strict"``: the true option must score strictly higher (SugarCrepe's ``main_eval.py``; PUG in LABCLIP's code);
- ``"correct"``: a tie counts as right (``>=``; LABCLIP's CLEVR code);
- ``"first"``: ``argmax`` decides, so a tie goes to whichever tied option comes first (ARO's code);
- ``"half"``: a tie counts one half (the expected score of a coin flip between the tied options).

**ARO macro**: the mean of per-group accuracies (VG-R: per relation; VG-A: per attribute pair with at least 25
items); **micro**: the plain mean over items. **Recall@K** in both directions, dense (any relevance matrix) or
chunked (one owner image per caption, for 25k×5k sets); an exact tie in a ranking gives one hit, to the later
column, as the paper's code reads a sort (:data:`RETRIEVAL_TIES` has the other rules). **SugarCrepe means**: per
family, count-weighted (the SugarCrepe paper's aggregate table) and unweighted (LABCLIP's notebook).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Literal

import numpy as np
import pandas as pd
import torch

Ties = Literal["strict", "correct", "first", "half"]
TIES: tuple[str, ...] = ("strict", "correct", "first", "half")
#: How each tie rule reads in a result table's ``definition`` column.
TIES_LABEL: dict[str, str] = {
    "strict": "true caption scores strictly higher",
    "correct": "ties count as correct",
    "first": "argmax, ties go to the first option",
    "half": "ties count one half",
}
#: SugarCrepe's subsets by family.
SUGARCREPE_FAMILIES: dict[str, tuple[str, ...]] = {
    "replace": ("replace_obj", "replace_att", "replace_rel"),
    "swap": ("swap_obj", "swap_att"),
    "add": ("add_obj", "add_att"),
}
#: ARO's VG-Attribution keeps attribute pairs with at least this many items in its macro average.
ARO_VGA_MIN_COUNT = 25


def check_ties(ties: str) -> None:
    """Refuse a tie rule outside :data:`TIES` (with the list of valid ones)."""
    if ties not in TIES:
        raise ValueError(f"unknown tie rule {ties!r}; use one of {TIES}")


def choice_credit(scores: np.ndarray, answer: np.ndarray, ties: Ties = "strict") -> np.ndarray:
    """Per item, the credit (1, 0, or ½ under ``"half"``) for the true option. ``scores`` is N×K, one row per
    item; ``answer`` holds the true column of each row."""
    check_ties(ties)
    scores = np.asarray(scores, dtype=np.float64)
    answer = np.asarray(answer)
    if scores.ndim != 2 or len(scores) != len(answer):
        raise ValueError(f"scores must be N×K with N = len(answer); got {scores.shape} for {len(answer)} answers")
    if answer.size and (not np.issubdtype(answer.dtype, np.integer) or answer.min() < 0
                        or answer.max() >= scores.shape[1]):
        raise ValueError(f"answers must be option indices in 0..{scores.shape[1] - 1}; got {np.unique(answer)[:5]}")
    if not np.isfinite(scores).all():
        bad = np.flatnonzero(~np.isfinite(scores).all(axis=1))
        raise ValueError(f"{len(bad)} item(s) have NaN or infinite scores (first: item {bad[0]})")
    if ties == "first":
        return (scores.argmax(axis=1) == answer).astype(np.float64)
    rows = np.arange(len(scores))
    true = scores[rows, answer]
    others = scores.copy()
    others[rows, answer] = -np.inf
    best_other = others.max(axis=1)
    if ties == "strict":
        return (true > best_other).astype(np.float64)
    if ties == "correct":
        return (true >= best_other).astype(np.float64)
    return (true > best_other) + 0.5 * (true == best_other)


def choice_correct(scores: np.ndarray, answer: np.ndarray, ties: Ties = "strict") -> np.ndarray:
    """Per item, is the true option the winner? (Boolean; ``"half"`` is not a yes/no rule, use
    :func:`choice_credit`.)"""
    if ties == "half":
        raise ValueError("ties='half' gives fractional credit: use choice_credit")
    return choice_credit(scores, answer, ties).astype(bool)


def option_scores(images: torch.Tensor, options: torch.Tensor) -> np.ndarray:
    """N×K dot products of each image (N×D) with its K options (N×K×D): every choice metric scores this way."""
    if images.ndim != 2 or options.ndim != 3 or options.shape[0] != images.shape[0] or \
            options.shape[2] != images.shape[1]:
        raise ValueError(f"images must be N×D and options N×K×D; got {tuple(images.shape)} and "
                         f"{tuple(options.shape)}")
    return (images[:, None, :] * options).sum(-1).double().numpy()


def pair_scores(images: torch.Tensor, captions: torch.Tensor, negatives: torch.Tensor) -> np.ndarray:
    """N×2 scores ``[cos(image, negative), cos(image, caption)]`` of unit-norm rows (answer: column 1)."""
    if not (images.shape == captions.shape == negatives.shape) or images.ndim != 2:
        raise ValueError(f"images, captions and negatives must be N×D alike; got {tuple(images.shape)}, "
                         f"{tuple(captions.shape)}, {tuple(negatives.shape)}")
    return option_scores(images, torch.stack([negatives, captions], dim=1))


def swap_accuracy(images: torch.Tensor, captions: torch.Tensor, negatives: torch.Tensor,
                  ties: Ties = "strict") -> float:
    """The swap test: the share of images that score their caption above its attribute-swapped negative.

    Rows whose negative is NaN (the scene admits no swap) are left out, as the paper leaves out CLEVR scenes whose
    two colours are equal; any other non-finite value is refused.
    """
    valid = ~torch.isnan(negatives).any(dim=1)
    if not valid.any():
        raise ValueError("no row has a hard negative")
    scores = pair_scores(images[valid], captions[valid], negatives[valid])
    return float(choice_credit(scores, np.ones(len(scores), dtype=np.int64), ties).mean())


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


RetrievalTies = Literal["last", "first", "correct"]
#: How a retrieval rank treats a column that scores exactly the true one's score (duplicated images, repeated
#: captions, fp16 embeddings).
RETRIEVAL_TIES: dict[str, str] = {
    "last": "a tie is one hit: of tied columns the later one ranks first (LABCLIP's and ARO's argsort, read from "
            "its end)",
    "first": "a tie is one hit: of tied columns the earlier one ranks first (torch.topk on a CPU, CLIP_benchmark)",
    "correct": "every tied column counts as a hit",
}


def check_retrieval_ties(ties: str) -> None:
    """Refuse a retrieval tie rule outside :data:`RETRIEVAL_TIES`."""
    if ties not in RETRIEVAL_TIES:
        raise ValueError(f"unknown retrieval tie rule {ties!r}; use one of {tuple(RETRIEVAL_TIES)}")


def ranks_of_true(scores: torch.Tensor, true_column: torch.Tensor, chunk: int = 4096,
                  ties: RetrievalTies = "last") -> torch.Tensor:
    """0-based rank of each row's true column, in row chunks: the columns scoring strictly higher, plus the tied
    columns that the tie rule puts before it (``"last"``: the later ones; ``"first"``: the earlier ones;
    ``"correct"``: none)."""
    check_retrieval_ties(ties)
    out = []
    for start in range(0, len(scores), chunk):
        block = scores[start : start + chunk]
        col = true_column[start : start + chunk, None]
        true = block.gather(1, col)
        rank = (block > true).sum(dim=1)
        if ties != "correct":
            index = torch.arange(block.shape[1], device=block.device)[None, :]
            before = index > col if ties == "last" else index < col
            rank = rank + ((block == true) & before).sum(dim=1)
        out.append(rank)
    return torch.cat(out)


def best_relevant(scores: torch.Tensor, relevant: torch.Tensor, ties: RetrievalTies = "last"
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row, the relevant column that ranks best (highest score; among equal ones, the one the tie rule puts
    first), and whether the row has any relevant column."""
    check_retrieval_ties(ties)
    masked = scores.masked_fill(~relevant, float("-inf"))
    top = masked.max(dim=1, keepdim=True).values
    index = torch.arange(scores.shape[1], device=scores.device).expand_as(scores)
    candidates = relevant & (masked == top)
    if ties == "last":
        col = index.masked_fill(~candidates, -1).max(dim=1).values
    else:
        col = index.masked_fill(~candidates, scores.shape[1]).min(dim=1).values
    has = relevant.any(dim=1)
    return col.clamp(0, scores.shape[1] - 1), has


def recall_at_k(scores: torch.Tensor, relevant: torch.Tensor, ks: Sequence[int] = (1, 5, 10),
                ties: RetrievalTies = "last") -> dict[int, float]:
    """For each query row, is any relevant column among its top-k scores? Mean over rows, per k; exact ties
    ranked by ``ties`` (:data:`RETRIEVAL_TIES`)."""
    if scores.shape != relevant.shape:
        raise ValueError(f"scores {tuple(scores.shape)} and relevant {tuple(relevant.shape)} differ in shape")
    col, has = best_relevant(scores, relevant.bool(), ties)
    ranks = ranks_of_true(scores, col, ties=ties)
    return {k: (has & (ranks < k)).float().mean().item() for k in ks}


def retrieval(images: torch.Tensor, texts: torch.Tensor, relevant: torch.Tensor | None = None,
              ks: Sequence[int] = (1, 5, 10), ties: RetrievalTies = "last") -> dict[str, float]:
    """Image→text and text→image recall@k. ``relevant[i, j]`` marks text ``j`` as correct for image ``i``
    (default: the diagonal, one caption per image)."""
    scores = images @ texts.T
    relevant = torch.eye(len(images), len(texts), dtype=torch.bool) if relevant is None else relevant.bool()
    i2t, t2i = recall_at_k(scores, relevant, ks, ties), recall_at_k(scores.T, relevant.T, ks, ties)
    return {**{f"i2t_R@{k}": v for k, v in i2t.items()}, **{f"t2i_R@{k}": v for k, v in t2i.items()}}


def caption_set_retrieval(images: torch.Tensor, caption_set: torch.Tensor, true_index: torch.Tensor,
                          swap_index: torch.Tensor, ks: Sequence[int] = (1, 5, 10),
                          ties: RetrievalTies = "last") -> dict[str, float]:
    """The paper's synthetic retrieval: each image against the *whole* caption set.

    Returns image→text R@k and the "reverse recall": the share of images whose top-1 caption is their
    attribute-swapped caption (a bag-of-words model confuses the two).
    """
    scores = images @ caption_set.T
    relevant = torch.zeros_like(scores, dtype=torch.bool)
    relevant[torch.arange(len(images)), true_index] = True
    out = {f"i2t_R@{k}": v for k, v in recall_at_k(scores, relevant, ks, ties).items()}
    top1, _ = best_relevant(scores, torch.ones_like(relevant), ties)  # the top-ranked caption under the tie rule
    out["reverse_R@1"] = (top1 == swap_index).float().mean().item()
    return out


def text_to_image_recall(images: torch.Tensor, texts: torch.Tensor, text_image: torch.Tensor,
                         ks: Sequence[int] = (1, 5, 10), chunk: int = 4096,
                         ties: RetrievalTies = "last") -> dict[int, float]:
    """Share of captions whose own image is among the top-K images (LABCLIP's ``get_results_t2i``)."""
    ranks = torch.cat([ranks_of_true(texts[s : s + chunk] @ images.T, text_image[s : s + chunk], ties=ties)
                       for s in range(0, len(texts), chunk)])
    return {k: (ranks < k).float().mean().item() for k in ks}


def image_to_text_recall(images: torch.Tensor, texts: torch.Tensor, text_image: torch.Tensor,
                         ks: Sequence[int] = (1, 5, 10), chunk: int = 256,
                         ties: RetrievalTies = "last") -> dict[int, float]:
    """Share of images with at least one of their captions among the top-K captions (``chunk`` images at a time:
    each chunk holds a few chunk × captions arrays, 50 MB for 256 × 25,000)."""
    hits = {k: 0 for k in ks}
    for s in range(0, len(images), chunk):
        scores = images[s : s + chunk] @ texts.T
        own = text_image[None, :] == torch.arange(s, s + len(scores))[:, None]
        col, has = best_relevant(scores, own, ties)
        ranks = ranks_of_true(scores, col, ties=ties)
        for k in ks:
            hits[k] += int((has & (ranks < k)).sum())
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
