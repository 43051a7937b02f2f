"""Cross-modal binding metrics: the swap test and retrieval, each a small function on embeddings.

All inputs are L2-normalised embeddings (rows), so a dot product is a cosine similarity.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch

Ties = Literal["strict", "correct", "half"]


def swap_accuracy(images: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor,
                  ties: Ties = "strict") -> float:
    """Share of images that score their caption above its attribute-swapped negative.

    ``ties="strict"`` needs ``>`` (PUG in the paper's code); ``"correct"`` counts ``>=`` (the paper's CLEVR code);
    ``"half"`` counts a tie as half. Rows whose negative is NaN (no negative exists) are left out, as the paper
    leaves out CLEVR scenes whose two colours are equal.
    """
    valid = ~torch.isnan(negatives).any(dim=1)
    if not valid.any():
        raise ValueError("no row has a hard negative")
    pos = (images[valid] * positives[valid]).sum(-1)
    neg = (images[valid] * negatives[valid]).sum(-1)
    if ties == "strict":
        return (pos > neg).float().mean().item()
    if ties == "correct":
        return (pos >= neg).float().mean().item()
    if ties == "half":
        return ((pos > neg).float() + 0.5 * (pos == neg).float()).mean().item()
    raise ValueError(f"unknown tie rule {ties!r}")


def recall_at_k(scores: torch.Tensor, relevant: torch.Tensor, ks: Sequence[int] = (1, 5, 10)) -> dict[int, float]:
    """For each query row, is any relevant column among its top-k scores? Mean over rows, per k."""
    if scores.shape != relevant.shape:
        raise ValueError(f"scores {tuple(scores.shape)} and relevant {tuple(relevant.shape)} differ in shape")
    top = scores.topk(min(max(ks), scores.shape[1]), dim=1).indices
    hit = relevant.gather(1, top)
    return {k: hit[:, :k].any(dim=1).float().mean().item() for k in ks}


def retrieval(images: torch.Tensor, texts: torch.Tensor, relevant: torch.Tensor | None = None,
              ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
    """Image→text and text→image recall@k. ``relevant[i, j]`` marks text ``j`` as correct for image ``i``
    (default: the diagonal, one caption per image)."""
    scores = images @ texts.T
    relevant = torch.eye(len(images), len(texts), dtype=torch.bool) if relevant is None else relevant.bool()
    i2t, t2i = recall_at_k(scores, relevant, ks), recall_at_k(scores.T, relevant.T, ks)
    return {**{f"i2t_R@{k}": v for k, v in i2t.items()}, **{f"t2i_R@{k}": v for k, v in t2i.items()}}


def caption_set_retrieval(images: torch.Tensor, caption_set: torch.Tensor, true_index: torch.Tensor,
                          swap_index: torch.Tensor, ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
    """The paper's synthetic retrieval: each image against the *whole* caption set.

    Returns image→text R@k and the "reverse recall": the share of images whose top-1 caption is their
    attribute-swapped caption (a bag-of-words model confuses the two).
    """
    scores = images @ caption_set.T
    relevant = torch.zeros_like(scores, dtype=torch.bool)
    relevant[torch.arange(len(images)), true_index] = True
    out = {f"i2t_R@{k}": v for k, v in recall_at_k(scores, relevant, ks).items()}
    out["reverse_R@1"] = (scores.argmax(dim=1) == swap_index).float().mean().item()
    return out


def caption_set(attributes: Sequence[str], objects: Sequence[str], distinct_attributes: bool = True,
                article: bool = True) -> tuple[list[tuple[tuple[str, str], ...]], list[str]]:
    """Every 2-object description (a1 o1 and a2 o2, o1 ≠ o2), each combination once, as the paper's caption set.

    Returns the combinations (pairs in a canonical order) and their captions. With CLEVR's 8 colours and 3 shapes
    and repeated colours allowed this is the paper's 192 captions.
    """
    from labclip_utils.scenes.captions import caption_text

    combos = set()
    for a1 in attributes:
        for o1 in objects:
            for a2 in attributes:
                for o2 in objects:
                    if o1 != o2 and (a1 != a2 or not distinct_attributes):
                        combos.add(tuple(sorted([(a1, o1), (a2, o2)], key=lambda p: (p[1], p[0]))))
    combos_sorted = sorted(combos)
    return combos_sorted, [caption_text(c, article) for c in combos_sorted]


def combination_indices(pairs: Sequence[Sequence[tuple[str, str]]], combos: Sequence[tuple]) -> torch.Tensor:
    """Where each scene's (attribute, object) pairs sit in a caption set (order-free)."""
    where = {c: i for i, c in enumerate(combos)}
    out = []
    for p in pairs:
        key = tuple(sorted(p, key=lambda q: (q[1], q[0])))
        if key not in where:
            raise ValueError(f"{p} is not in the caption set")
        out.append(where[key])
    return torch.tensor(out)
