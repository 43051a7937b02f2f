"""Splits: the paper's compositional (held-out combination) split, and a plain i.i.d. split.

The compositional split holds out whole *bags of words*: the multiset of attributes plus the multiset of
objects. All scenes that share a bag are attribute permutations of each other, so a held-out combination
and its attribute-swapped hard negative always land in the same split (as in LABCLIP's
``train_val_test_split``), and no held-out combination appears in train. Where LABCLIP samples exactly 10% of
the combinations present, we hash each bag with the seed: the share is about 10%, and the same combinations
are held out in every dataset, so a model trained on one sample can be tested on another.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import pandas as pd

from labclip_utils.scenes.captions import Pair

SPLITS: tuple[str, ...] = ("train", "val", "test")


def combination_key(pairs: Sequence[Pair]) -> tuple[Pair, ...]:
    """Order-invariant identity of a described scene: its sorted pairs."""
    return tuple(sorted(pairs))


def bag_key(pairs: Sequence[Pair]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The bag of words of a description: sorted attributes and sorted objects (the swap orbit)."""
    return tuple(sorted(a for a, _ in pairs)), tuple(sorted(o for _, o in pairs))


def _check_fractions(test: float, val: float) -> None:
    if not (0 <= test < 1 and 0 <= val < 1 and test + val < 1):
        raise ValueError(f"need 0 <= test, val and test + val < 1; got test={test}, val={val}")


def bag_split(bag: tuple, test: float = 0.1, val: float = 0.1, seed: int = 42) -> str:
    """The split of one bag of words: a hash of (seed, bag) mapped to [0, 1), so a combination is held out in
    *every* dataset drawn from the same vocabulary, whatever else that dataset happens to contain."""
    digest = hashlib.sha256(repr((seed, bag)).encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    return "test" if u < test else "val" if u < test + val else "train"


def compositional_split(
    pairs: Sequence[Sequence[Pair]], test: float = 0.1, val: float = 0.1, seed: int = 42
) -> np.ndarray:
    """Assign each scene to train/val/test by its bag of words.

    About ``test`` and ``val`` of all possible bags are held out (each bag independently, by a seeded hash), and
    all scenes of a bag share its split. Scenes generated separately (another seed, another size) agree on
    which combinations are held out.
    """
    _check_fractions(test, val)
    cache: dict = {}
    out = []
    for p in pairs:
        key = bag_key(p)
        if key not in cache:
            cache[key] = bag_split(key, test, val, seed)
        out.append(cache[key])
    return np.array(out, dtype=object)


def iid_split(n: int, test: float = 0.1, val: float = 0.1, seed: int = 42) -> np.ndarray:
    """Assign scenes to train/val/test at random, ignoring what they show."""
    _check_fractions(test, val)
    order = np.random.default_rng(seed).permutation(n)
    n_test, n_val = round(test * n), round(val * n)
    out = np.full(n, "train", dtype=object)
    out[order[:n_test]] = "test"
    out[order[n_test : n_test + n_val]] = "val"
    return out


def split_report(pairs: Sequence[Sequence[Pair]], split: Sequence[str]) -> pd.DataFrame:
    """Per split: scenes, distinct combinations, and how many of those combinations also occur in train."""
    combos = {s: {combination_key(p) for p, t in zip(pairs, split, strict=True) if t == s} for s in SPLITS}
    counts = pd.Series(list(split)).value_counts()
    return pd.DataFrame(
        {
            "scenes": [int(counts.get(s, 0)) for s in SPLITS],
            "distinct combinations": [len(combos[s]) for s in SPLITS],
            "combinations also in train": [len(combos[s] & combos["train"]) if s != "train" else 0 for s in SPLITS],
        },
        index=list(SPLITS),
    )
