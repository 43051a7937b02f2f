"""Checks that tie the book's prose to its numbers: a sentence that states a result is followed by a (hidden) cell
that checks it, so a change that makes the sentence false fails the build instead of publishing it.

>>> claim("the swap test sits close to chance", swap, between=(0.40, 0.65))
>>> claim("LABCLIP lifts the swap test", labclip_swap, above=clip_swap + 0.2)
>>> near_chance("the swap test is near chance", swap, chance=0.5, width=0.15)
>>> rises_by("binding rises after A by at least 0.1", before, after, at_least=0.1)
>>> falls_by("the gap falls by at most 0.05", before, after, at_most=0.05)
>>> within_seeds("seed 0 is typical of the miniature", swap, "swap")
>>> for column in nonempty("the swap columns", swap_columns):
...     claim(f"{column} is near chance", table[column], between=(0.35, 0.65))

- :func:`claim`: a value inside a band (``between``, ends included) or strictly ``above``/``below`` a bound;
- :func:`near_chance`: two-sided, ``|value - chance| <= width``: far above chance fails as well as far below;
- :func:`rises_by` / :func:`falls_by`: the size of a change (``after - before``, or ``before - after``), both
  amounts stated as positive numbers, so a fall never reads as a negative rise;
- :func:`within_seeds`: the value inside the spread a shipped seed record measured, ``[min, max]`` of a column
  over the seeds, widened by a stated ``tolerance`` only;
- :func:`nonempty`: a guard for loops of claims; a loop over nothing checks nothing, so an empty list always
  raises, in every profile (it is a bug in the page, not a number).

Bands come from the records (``labclip_utils.records``, written by ``experiments/miniature.py`` over several
seeds) or are stated tolerances written next to the claim; a band is never widened by its own width (a spread of
0.15 between seeds does not make 0.15 more acceptable), so the sentence stays as narrow as the numbers allow.

The prose describes the offline profile's results; in the paper profile (a real CLIP, or a random-init stand-in
in a rehearsal) a claim that does not hold is reported, not raised, unless ``LABCLIP_ENFORCE_CLAIMS=1``. NaN,
infinities and non-numbers are refused in every profile's check: they never make a sentence true.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TypeVar

from labclip_utils.profile import claims_enforced, current_profile
from labclip_utils.records import read_record

T = TypeVar("T")


class ClaimError(AssertionError):
    """A sentence of the book is no longer true of the numbers it is about."""


def _enforced() -> bool:
    """Whether a false claim stops the chapter (the chapter's profile and ``$LABCLIP_ENFORCE_CLAIMS``)."""
    return claims_enforced(current_profile())


def _number(statement: str, value: object, what: str = "value") -> float:
    """``value`` as a float; a TypeError naming the claim for anything that is not a number."""
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise TypeError(f"claim {statement!r}: the {what} must be a number, got {value!r}") from None


def _bound(statement: str, name: str, amount: object, *, positive: bool = True) -> float:
    """A stated bound or tolerance: a finite number (and not negative when ``positive``); a ValueError if not,
    since a claim with a meaningless bound checks nothing."""
    number = _number(statement, amount, name)
    if not math.isfinite(number) or (positive and number < 0):
        kind = "a finite number, not negative" if positive else "a finite number"
        raise ValueError(f"claim {statement!r}: {name} must be {kind}, got {amount!r}")
    return number


def _verdict(statement: str, value: float, problems: list[str]) -> bool:
    """True when nothing is wrong; else raise :class:`ClaimError` (enforced) or print a note and return False."""
    if not problems:
        return True
    message = f"The text says: {statement!r}, but the value is {value:.3f}: {'; '.join(problems)}."
    if _enforced():
        raise ClaimError(message)
    print(f"Note (not checked in this profile): {message}")
    return False


def claim(statement: str, value: float, *, between: tuple[float, float] | None = None, above: float | None = None,
          below: float | None = None) -> bool:
    """Check that ``value`` makes ``statement`` true: inside ``between`` (inclusive), strictly ``above`` and/or
    strictly ``below`` the given bounds. Raises :class:`ClaimError` (offline) or prints a note (paper profile)."""
    if between is None and above is None and below is None:
        raise ValueError("give at least one of between, above, below")
    value = _number(statement, value)
    problems = []
    if not math.isfinite(value):
        problems.append("it is not a finite number")
    if between is not None and not between[0] <= value <= between[1]:
        problems.append(f"it is outside [{between[0]:g}, {between[1]:g}]")
    if above is not None and not value > above:
        problems.append(f"it is not above {above:.3f}")
    if below is not None and not value < below:
        problems.append(f"it is not below {below:.3f}")
    return _verdict(statement, value, problems)


def near_chance(statement: str, value: float, *, chance: float, width: float) -> bool:
    """Check that ``value`` is within ``width`` of ``chance`` on both sides (``chance - width <= value <=
    chance + width``): "near chance" is false for a value far above chance as much as for one far below."""
    value = _number(statement, value)
    chance = _bound(statement, "chance", chance, positive=False)
    width = _bound(statement, "width", width)
    low, high = chance - width, chance + width
    problems = []
    if not math.isfinite(value):
        problems.append("it is not a finite number")
    elif value > high:
        problems.append(f"it is {value - chance:.3f} above chance ({chance:g}), more than the stated {width:g}")
    elif value < low:
        problems.append(f"it is {chance - value:.3f} below chance ({chance:g}), more than the stated {width:g}")
    return _verdict(statement, value, problems)


def _changes_by(statement: str, before: float, after: float, direction: int, at_least: float | None,
                at_most: float | None) -> bool:
    """The change in ``direction`` (+1 rise, -1 fall): strictly positive, and within the stated amounts."""
    verb, name = ("rises", "rises_by") if direction > 0 else ("falls", "falls_by")
    if at_least is None and at_most is None:
        raise ValueError(f"{name}: give at least one of at_least, at_most")
    before, after = _number(statement, before, "value before"), _number(statement, after, "value after")
    low = None if at_least is None else _bound(statement, "at_least", at_least)
    high = None if at_most is None else _bound(statement, "at_most", at_most)
    if low is not None and high is not None and low > high:
        raise ValueError(f"claim {statement!r}: at_least ({low:g}) is above at_most ({high:g})")
    change = direction * (after - before)
    problems = []
    if not (math.isfinite(before) and math.isfinite(after)):
        problems.append(f"it is not a finite number (before {before}, after {after})")
    elif change <= 0:
        problems.append(f"it does not {verb[:-1]}: from {before:.3f} to {after:.3f}")
    else:
        if low is not None and change < low:
            problems.append(f"it {verb} by {change:.3f} (from {before:.3f}), less than {low:g}")
        if high is not None and change > high:
            problems.append(f"it {verb} by {change:.3f} (from {before:.3f}), more than {high:g}")
    return _verdict(statement, after, problems)


def rises_by(statement: str, before: float, after: float, *, at_least: float | None = None,
             at_most: float | None = None) -> bool:
    """Check that the value rises from ``before`` to ``after`` (strictly) by an amount in ``[at_least, at_most]``
    (ends included; give one or both, as positive numbers)."""
    return _changes_by(statement, before, after, +1, at_least, at_most)


def falls_by(statement: str, before: float, after: float, *, at_least: float | None = None,
             at_most: float | None = None) -> bool:
    """Check that the value falls from ``before`` to ``after`` (strictly) by an amount in ``[at_least, at_most]``
    (ends included; give one or both, as positive numbers: "falls by at least 0.1" is ``at_least=0.1``)."""
    return _changes_by(statement, before, after, -1, at_least, at_most)


def within_seeds(statement: str, value: float, column: str, *, tolerance: float = 0.02,
                 record: str = "miniature_seeds.csv") -> bool:
    """Check that ``value`` lies in ``[min - tolerance, max + tolerance]`` of ``column`` over the seeds of a shipped
    record: the spread the seeds measured plus a stated tolerance, never widened by the spread's own width.
    An unknown column, or a column with missing or non-numeric entries, raises in every profile (a bug, not a
    result)."""
    value = _number(statement, value)
    tolerance = _bound(statement, "tolerance", tolerance)
    table = read_record(record)
    if column not in table.columns:
        raise ValueError(f"claim {statement!r}: {record} has no column {column!r}; it has {list(table.columns)}")
    try:
        seeds = table[column].astype(float)
    except (TypeError, ValueError):
        raise TypeError(f"claim {statement!r}: column {column!r} of {record} is not numeric") from None
    if seeds.empty or not seeds.map(math.isfinite).all():
        raise ValueError(f"claim {statement!r}: column {column!r} of {record} is empty or has missing values")
    low, high = float(seeds.min()), float(seeds.max())
    problems = []
    if not math.isfinite(value):
        problems.append("it is not a finite number")
    elif not low - tolerance <= value <= high + tolerance:
        problems.append(f"it is outside [{low - tolerance:.3f}, {high + tolerance:.3f}]: {column!r} ranged from "
                        f"{low:.3f} to {high:.3f} over {len(seeds)} seeds ({record}), give or take {tolerance:g}")
    return _verdict(statement, value, problems)


def nonempty(what: str, items: Iterable[T]) -> list[T]:
    """``items`` as a list, or :class:`ClaimError` when there are none, in every profile: a loop of claims over
    nothing checks nothing, so an empty list is a bug in the page (a renamed column, a filter that matches no
    label), never a result."""
    if isinstance(items, str):
        raise TypeError(f"nonempty({what!r}): give a collection of items, not the string {items!r}")
    listed = list(items)
    if not listed:
        raise ClaimError(f"{what} is empty: the claims in a loop over it would check nothing")
    return listed
