"""The paper's train/val/test splits, item for item, for CLEVR and for PUG:SPAR / PUG:SPARE.

Both hold out whole combinations, drawn with Python's ``random`` seeded at 42 (LABCLIP's
``data_loading/clevr.py::train_val_test_split`` and ``alignment/pug_alignment_utils.py::train_val_test_split``):

- **CLEVR**: the distinct combinations (order-free: a count matrix of object × attribute) are sorted; 10 % of them
  are drawn one at a time for test, each with its attribute-swapped twin, until the test set holds at least 10 % of
  them; then the same for validation among the rest. Every scene goes to the split of its combination.
- **PUG**: the caption set's combinations, de-duplicated up to swapping the two animals or the two textures; 10 %
  drawn for test and 10 % of the rest for validation, each extended to every image with the same two animals and
  textures, in every world, with the animals' positions swapped, the textures swapped, or both. An image can be in
  both lists (two drawn combinations can describe the same pair of animals the other way round); the paper's code
  keeps it in both and leaves it out of training, and so does this one.

Functions return ``(train, val, test)`` lists of row indices, exactly as the paper's code builds them (a test list
may repeat a row; the paper's test accuracy counts it twice).
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence

Label = tuple[str, ...]  # (a1, o1, a2, o2, ...), the paper's pair label
SEED = 42


def _matrix(label: Label, attributes: Sequence[str], objects: Sequence[str]) -> tuple[tuple[int, ...], ...]:
    counts = [[0] * len(attributes) for _ in objects]
    for k in range(0, len(label), 2):
        counts[objects.index(label[k + 1])][attributes.index(label[k])] += 1
    return tuple(tuple(row) for row in counts)


def _canonical(matrix: tuple[tuple[int, ...], ...], attributes: Sequence[str], objects: Sequence[str]) -> Label:
    out: list[str] = []
    for o, row in enumerate(matrix):
        for a, count in enumerate(row):
            out += [attributes[a], objects[o]] * count
    return tuple(out)


def clevr_paper_split(labels: Sequence[Label], ratio: float = 0.1, seed: int = SEED
                      ) -> tuple[list[int], list[int], list[int]]:
    """The paper's CLEVR split of scenes given as pair labels ``(a1, o1, a2, o2)``: ``(train, val, test)``."""
    if not labels:
        raise ValueError("no scenes to split")
    attributes = sorted({label[k] for label in labels for k in range(0, len(label), 2)})
    objects = sorted({label[k] for label in labels for k in range(1, len(label), 2)})
    unique, seen = [], set()
    for label in sorted(set(map(tuple, labels))):
        m = _matrix(label, attributes, objects)
        if m not in seen:
            seen.add(m)
            unique.append(_canonical(m, attributes, objects))
    rng = random.Random(seed)
    target = int(ratio * len(unique))

    def draw(taken: set, blocked: set) -> None:
        while len(taken) < target:
            sample = rng.sample(unique, 1)[0]
            m = _matrix(sample, attributes, objects)
            if m in taken or m in blocked:
                continue
            taken.add(m)
            twin = _matrix((sample[2], sample[1], sample[0], sample[3]), attributes, objects)
            if twin not in taken and twin not in blocked:
                taken.add(twin)

    test: set = set()
    val: set = set()
    draw(test, set())
    draw(val, test)
    train_i, val_i, test_i = [], [], []
    for i, label in enumerate(labels):
        m = _matrix(tuple(label), attributes, objects)
        (test_i if m in test else val_i if m in val else train_i).append(i)
    return train_i, val_i, test_i


def pug_pair_labels(rows: Sequence[Label], texture_pairs: Sequence[tuple[str, str]] | None = None) -> list[Label]:
    """The caption set of a PUG table, in the paper's order. ``rows`` are ``(texture1, animal1, texture2, animal2)``
    per CSV row. PUG:SPAR (``texture_pairs`` given, e.g. ``(("Blue", "Red"), ("Grass", "Stone"))``): each pair of
    different animals with each texture pair; PUG:SPARE: every two different textures on two different animals."""
    animals = list(dict.fromkeys(r[1] for r in rows))
    if texture_pairs is not None:
        return [(t1, o1, t2, o2) for o1 in animals for o2 in animals if o1 != o2 for t1, t2 in texture_pairs]
    textures = list(dict.fromkeys(r[0] for r in rows))
    return [(a1, o1, a2, o2) for a1 in textures for o1 in animals for a2 in textures for o2 in animals
            if o1 != o2 and a1 != a2]


def pug_paper_split(rows: Sequence[Label], pair_labels: Sequence[Label], ratio: float = 0.1, seed: int = SEED
                    ) -> tuple[list[int], list[int], list[int]]:
    """The paper's PUG split of table rows ``(texture1, animal1, texture2, animal2)``: ``(train, val, test)``."""
    if not rows:
        raise ValueError("no rows to split")
    unique: list[Label] = []
    present: set[Label] = set()
    for a1, o1, a2, o2 in pair_labels:
        if (a1, o2, a2, o1) in present or (a2, o1, a1, o2) in present:
            continue
        unique.append((a1, o1, a2, o2))
        present.add((a1, o1, a2, o2))
    where: dict[Label, list[int]] = defaultdict(list)
    for i, (t1, n1, t2, n2) in enumerate(rows):
        where[(n1, n2, t1, t2)].append(i)

    def extend(labels: Sequence[Label]) -> list[int]:
        out: list[int] = []
        for t1, n1, t2, n2 in labels:
            for key in ((n1, n2, t1, t2), (n2, n1, t2, t1), (n1, n2, t2, t1), (n2, n1, t1, t2)):
                out += where.get(key, [])
        return out

    rng = random.Random(seed)
    k = int(ratio * len(unique))
    test_labels = rng.sample(unique, k)
    chosen = set(test_labels)
    test = extend(test_labels)
    val = extend(rng.sample([c for c in unique if c not in chosen], k))
    held = set(test) | set(val)
    return [i for i in range(len(rows)) if i not in held], val, test
