"""Captions: ``"a red cube and a blue sphere"``, built from (attribute, object) pairs."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from labclip_utils.scenes.world import SceneRecord

Pair = tuple[str, str]  # (attribute, object), e.g. ("red", "cube")
Order = Literal["scene", "left-to-right", "random", "caption_set"]
ORDERS: tuple[str, ...] = ("scene", "left-to-right", "random", "caption_set")


@dataclass(frozen=True)
class CaptionStyle:
    """How a scene becomes a caption.

    ``order``: ``scene`` keeps the scene's object order (CLEVR scenes are stored left to right; in
    ``spar``/``spare`` the first object is PUG's character 1), ``left-to-right`` sorts by x, ``random``
    shuffles with the scene's own seed, ``caption_set`` writes the objects as the authors' CLEVR caption set does:
    by colour, then by shape (see :func:`caption_set_key`). ``article=False`` gives the paper's CLEVR format
    ("red cube and blue sphere").
    """

    article: bool = True
    order: Order = "scene"

    def __post_init__(self) -> None:
        if self.order not in ORDERS:
            raise ValueError(f"unknown caption order {self.order!r}; choose one of {ORDERS}")


def caption_set_key(pair: Pair) -> tuple[str, str]:
    """Where an (attribute, object) pair goes in a caption of the authors' CLEVR caption set: by colour, then shape.

    Their code (``get_pair_labels``) builds the 2-object caption set by looping over Python *sets* of colours and
    shapes and keeps, for each combination, the order met first: the colour met first leads, and for two objects of
    one colour, the shape met first. A set's order follows string hashing, which Python randomises per process, so
    their order changes from run to run; we fix it to alphabetical order (their ``attr_list`` and ``obj_list``).
    What every run of theirs shares, and we reproduce, is the consequence: a caption and its attribute-swapped
    negative start with the same colour, and the negative swaps the *shapes* ("purple sphere and red cube" /
    "purple cube and red sphere").
    """
    return pair[0], pair[1]


def caption_order(record: SceneRecord, style: CaptionStyle = CaptionStyle(), salt: int = 0) -> list[int]:
    """Indices of the scene's objects in the order the caption mentions them."""
    n = len(record.objects)
    if style.order == "caption_set":
        return sorted(range(n), key=lambda i: caption_set_key((record.objects[i].color, record.objects[i].shape)))
    if style.order == "left-to-right":
        return sorted(range(n), key=lambda i: record.objects[i].x)
    if style.order == "random":
        key = record.seed if record.seed is not None else salt
        return [int(i) for i in np.random.default_rng([key, 7]).permutation(n)]
    return list(range(n))


def _phrase(attribute: str, obj: str, article: bool) -> str:
    if not article:
        return f"{attribute} {obj}"
    return f"{'an' if attribute[:1].lower() in 'aeiou' else 'a'} {attribute} {obj}"


def caption_text(pairs: tuple[Pair, ...], article: bool = True) -> str:
    """Join the pairs with "and": ``(("red","cube"),("blue","sphere"))`` → ``"a red cube and a blue sphere"``."""
    if not pairs:
        raise ValueError("a caption needs at least one (attribute, object) pair")
    return " and ".join(_phrase(a, o, article) for a, o in pairs)


def bag_of_words(text: str) -> Counter[str]:
    """The caption's words as a multiset (what a bag-of-words model sees)."""
    return Counter(text.lower().split())


def caption_set(attributes: Sequence[str], objects: Sequence[str], distinct_attributes: bool = True,
                article: bool = True) -> tuple[list[tuple[Pair, ...]], list[str]]:
    """Every 2-object description (a1 o1 and a2 o2, o1 ≠ o2), each combination once, as the paper's caption set.

    Returns the combinations (pairs in a canonical order) and their captions. With CLEVR's 8 colours and 3 shapes
    and repeated colours allowed this is the paper's 192 captions.
    """
    combos = set()
    for a1 in attributes:
        for o1 in objects:
            for a2 in attributes:
                for o2 in objects:
                    if o1 != o2 and (a1 != a2 or not distinct_attributes):
                        combos.add(tuple(sorted([(a1, o1), (a2, o2)], key=lambda p: (p[1], p[0]))))
    combos_sorted = sorted(combos)
    return combos_sorted, [caption_text(c, article) for c in combos_sorted]


def combination_indices(pairs: Sequence[Sequence[Pair]], combos: Sequence[tuple]) -> np.ndarray:
    """Where each scene's (attribute, object) pairs sit in a caption set (order-free)."""
    where = {c: i for i, c in enumerate(combos)}
    out = []
    for p in pairs:
        key = tuple(sorted(p, key=lambda q: (q[1], q[0])))
        if key not in where:
            raise ValueError(f"{p} is not in the caption set")
        out.append(where[key])
    return np.asarray(out, dtype=np.int64)
