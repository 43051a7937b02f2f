"""Captions: ``"a red cube and a blue sphere"``, built from (attribute, object) pairs."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Literal

import numpy as np

from labclip_utils.scenes.world import SceneRecord

Pair = tuple[str, str]  # (attribute, object), e.g. ("red", "cube")
Order = Literal["scene", "left-to-right", "random"]
ORDERS: tuple[str, ...] = ("scene", "left-to-right", "random")


@dataclass(frozen=True)
class CaptionStyle:
    """How a scene becomes a caption.

    ``order``: ``scene`` keeps the scene's object order (CLEVR scenes are stored left to right; in
    ``spar``/``spare`` the first object is PUG's character 1), ``left-to-right`` sorts by x, ``random``
    shuffles with the scene's own seed. ``article=False`` gives the paper's CLEVR format
    ("red cube and blue sphere").
    """

    article: bool = True
    order: Order = "scene"

    def __post_init__(self) -> None:
        if self.order not in ORDERS:
            raise ValueError(f"unknown caption order {self.order!r}; choose one of {ORDERS}")


def caption_order(record: SceneRecord, style: CaptionStyle = CaptionStyle(), salt: int = 0) -> list[int]:
    """Indices of the scene's objects in the order the caption mentions them."""
    n = len(record.objects)
    if style.order == "left-to-right":
        return sorted(range(n), key=lambda i: record.objects[i].x)
    if style.order == "random":
        key = record.seed if record.seed is not None else salt
        return [int(i) for i in np.random.default_rng([key, 7]).permutation(n)]
    return list(range(n))


def scene_pairs(record: SceneRecord, style: CaptionStyle = CaptionStyle(), salt: int = 0) -> tuple[Pair, ...]:
    """The scene's (attribute, object) pairs in caption order."""
    return tuple((record.objects[i].color, record.objects[i].shape) for i in caption_order(record, style, salt))


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
