"""Hard negatives: small pure functions from a caption's (attribute, object) pairs to a wrong description.

Every function returns pairs that describe a *different* scene (never the positive, as a multiset of pairs)
or raises :class:`NoNegative`. The two swaps keep the caption's bag of words; the others change it.
``rng`` picks among the valid edits; without one the first valid edit is taken.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np

from labclip_utils.scenes.captions import Pair


class NoNegative(ValueError):
    """The caption admits no negative of this kind (e.g. a swap between two objects of the same colour)."""


def _choose(options: Sequence, rng: np.random.Generator | None, what: str):
    if not options:
        raise NoNegative(what)
    return options[0] if rng is None else options[int(rng.integers(len(options)))]


def _swappable(pairs: tuple[Pair, ...]) -> list[tuple[int, int]]:
    return [
        (i, j)
        for i in range(len(pairs))
        for j in range(i + 1, len(pairs))
        if pairs[i][0] != pairs[j][0] and pairs[i][1] != pairs[j][1]
    ]


def swap_attributes(pairs: tuple[Pair, ...], rng: np.random.Generator | None = None) -> tuple[Pair, ...]:
    """The paper's negative: exchange the attributes of two objects.

    "a red cube and a blue sphere" → "a blue cube and a red sphere". Only objects that differ in both
    attribute and object name are eligible, so the result is never the positive.
    """
    i, j = _choose(_swappable(pairs), rng, f"no two objects differ in both attribute and object: {pairs}")
    out = list(pairs)
    out[i], out[j] = (pairs[j][0], pairs[i][1]), (pairs[i][0], pairs[j][1])
    return tuple(out)


def swap_objects(pairs: tuple[Pair, ...], rng: np.random.Generator | None = None) -> tuple[Pair, ...]:
    """Exchange the object names of two objects, keeping the attribute positions.

    "a red cube and a blue sphere" → "a red sphere and a blue cube". For two objects this describes the same
    scene as :func:`swap_attributes` in the other word order; with more objects it is a different edit.
    """
    i, j = _choose(_swappable(pairs), rng, f"no two objects differ in both attribute and object: {pairs}")
    out = list(pairs)
    out[i], out[j] = (pairs[i][0], pairs[j][1]), (pairs[j][0], pairs[i][1])
    return tuple(out)


def replace_attribute(
    pairs: tuple[Pair, ...], attributes: Sequence[str], rng: np.random.Generator | None = None
) -> tuple[Pair, ...]:
    """Give one object an attribute it does not have ("a red cube" → "a green cube")."""
    options = [(i, a) for i, (old, _) in enumerate(pairs) for a in attributes if a != old]
    i, new = _choose(options, rng, f"no other attribute in {list(attributes)}")
    out = list(pairs)
    out[i] = (new, pairs[i][1])
    return tuple(out)


def replace_object(
    pairs: tuple[Pair, ...], objects: Sequence[str], rng: np.random.Generator | None = None
) -> tuple[Pair, ...]:
    """Turn one object into another object name ("a red cube" → "a red cone")."""
    options = [(i, o) for i, (_, old) in enumerate(pairs) for o in objects if o != old]
    i, new = _choose(options, rng, f"no other object in {list(objects)}")
    out = list(pairs)
    out[i] = (pairs[i][0], new)
    return tuple(out)


def add_object(
    pairs: tuple[Pair, ...],
    attributes: Sequence[str],
    objects: Sequence[str],
    rng: np.random.Generator | None = None,
) -> tuple[Pair, ...]:
    """Mention one more object that is not in the scene ("... and a green cone")."""
    present = set(pairs)
    options = [(a, o) for a in attributes for o in objects if (a, o) not in present]
    return (*pairs, _choose(options, rng, "every (attribute, object) combination is already present"))


#: Registry by name; each entry takes (pairs, attributes, objects, rng).
NEGATIVES: dict[str, Callable[[tuple[Pair, ...], Sequence[str], Sequence[str], np.random.Generator | None], tuple]] = {
    "swap_attribute": lambda p, a, o, r: swap_attributes(p, r),
    "swap_object": lambda p, a, o, r: swap_objects(p, r),
    "replace_attribute": lambda p, a, o, r: replace_attribute(p, a, r),
    "replace_object": lambda p, a, o, r: replace_object(p, o, r),
    "add_object": lambda p, a, o, r: add_object(p, a, o, r),
}
#: Negatives that keep the bag of words: a bag-of-words model cannot tell them from the positive.
BAG_PRESERVING = frozenset({"swap_attribute", "swap_object"})


def same_scene(a: tuple[Pair, ...], b: tuple[Pair, ...]) -> bool:
    """Do two pair lists describe the same scene (same multiset of pairs, any order)?"""
    return Counter(a) == Counter(b)
