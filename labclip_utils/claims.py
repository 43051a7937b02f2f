"""Checks that tie the book's prose to its numbers: a sentence that states a result is followed by a (hidden) cell
that checks it, so a change that makes the sentence false fails the build instead of publishing it.

>>> claim("the swap test sits close to chance", swap, between=(0.40, 0.65))
>>> claim("LABCLIP lifts the swap test", labclip_swap, above=clip_swap + 0.2)

Bands come from runs of the miniature over several seeds (``experiments/miniature.py``): wide enough for the
spread between seeds, narrow enough that the sentence stays true. The prose describes the offline profile's
results; in the paper profile (a real CLIP, or a random-init stand-in in a rehearsal) a claim that does not hold
is reported, not raised.
"""

from __future__ import annotations

import math
import os


class ClaimError(AssertionError):
    """A sentence of the book is no longer true of the numbers it is about."""


def _enforced() -> bool:
    from labclip_utils.profile import current_profile

    return current_profile().is_offline or os.environ.get("LABCLIP_ENFORCE_CLAIMS") == "1"


def claim(statement: str, value: float, *, between: tuple[float, float] | None = None, above: float | None = None,
          below: float | None = None) -> bool:
    """Check that ``value`` makes ``statement`` true: inside ``between`` (inclusive), strictly ``above`` and/or
    strictly ``below`` the given bounds. Raises :class:`ClaimError` (offline) or prints a note (paper profile)."""
    if between is None and above is None and below is None:
        raise ValueError("give at least one of between, above, below")
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"claim {statement!r}: the value must be a number, got {value!r}") from None
    problems = []
    if not math.isfinite(value):
        problems.append("it is not a finite number")
    if between is not None and not between[0] <= value <= between[1]:
        problems.append(f"it is outside [{between[0]:g}, {between[1]:g}]")
    if above is not None and not value > above:
        problems.append(f"it is not above {above:.3f}")
    if below is not None and not value < below:
        problems.append(f"it is not below {below:.3f}")
    if not problems:
        return True
    message = f"The text says: {statement!r}, but the value is {value:.3f}: {'; '.join(problems)}."
    if _enforced():
        raise ClaimError(message)
    print(f"Note (not checked in this profile): {message}")
    return False
