"""Attribution models: how one conversion's credit is shared among its touchpoints.

Pure functions. Touchpoints come oldest first, ties in time in arrival order. Credits are
Decimals with 6 places that sum to exactly 1; a value is shared in cents that sum to exactly
the value. Both use the largest-remainder method: every exact share is rounded down, then
the units left over go one each to the shares with the largest dropped remainders (ties:
the later touchpoint first).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal, localcontext
from enum import StrEnum
from fractions import Fraction
from typing import Protocol

PLACES = 6
CREDIT_UNITS = 10**PLACES  # credits are stored as integer millionths
DEFAULT_HALF_LIFE_DAYS = 7
DIRECT_CHANNEL = "Direct"
DIRECT_SOURCE_TYPE = "direct_signup"


class AttributionModel(StrEnum):
    FIRST_TOUCH = "first_touch"
    LAST_TOUCH = "last_touch"
    LAST_NON_DIRECT = "last_non_direct"
    LINEAR = "linear"
    TIME_DECAY = "time_decay"
    POSITION_BASED = "position_based"


class Touch(Protocol):
    @property
    def occurred_at(self) -> datetime: ...
    @property
    def source_type(self) -> str: ...
    @property
    def channel(self) -> str | None: ...


def is_direct(touch: Touch) -> bool:
    """Direct by its channel; an event stored before channels existed, by its source type."""
    if touch.channel is not None:
        return touch.channel == DIRECT_CHANNEL
    return touch.source_type == DIRECT_SOURCE_TYPE


def _one_hot(n: int, index: int) -> list[Fraction]:
    return [Fraction(1 if i == index else 0) for i in range(n)]


def _decay(age_days: Fraction, half_life_days: Fraction) -> Fraction:
    """2 ** -(age / half-life), to 28 significant digits."""
    with localcontext() as ctx:
        ctx.prec = 28
        halvings = age_days / half_life_days
        weight = Decimal(2) ** (Decimal(-halvings.numerator) / Decimal(halvings.denominator))
    return Fraction(weight)


def weights(
    model: AttributionModel,
    touches: Sequence[Touch],
    converted_at: datetime,
    half_life_days: float = DEFAULT_HALF_LIFE_DAYS,
) -> list[Fraction]:
    """Exact (unrounded) shares of credit, summing to 1; empty for no touchpoints."""
    n = len(touches)
    if n == 0:
        return []
    if model is AttributionModel.FIRST_TOUCH:
        return _one_hot(n, 0)
    if model is AttributionModel.LAST_TOUCH:
        return _one_hot(n, n - 1)
    if model is AttributionModel.LAST_NON_DIRECT:
        index = next((i for i in range(n - 1, -1, -1) if not is_direct(touches[i])), n - 1)
        return _one_hot(n, index)
    if model is AttributionModel.LINEAR:
        return [Fraction(1, n)] * n
    if model is AttributionModel.POSITION_BASED:
        if n <= 2:
            return [Fraction(1, n)] * n
        middle = Fraction(1, 5) / (n - 2)
        return [Fraction(2, 5), *([middle] * (n - 2)), Fraction(2, 5)]
    # Time decay: weight halves for every half-life between the touch and the conversion.
    half_life = Fraction(half_life_days)
    raw = []
    for touch in touches:
        seconds = max(0, int((converted_at - touch.occurred_at).total_seconds()))
        raw.append(_decay(Fraction(seconds, 86400), half_life))
    total = sum(raw, Fraction(0))
    return [w / total for w in raw]


def apportion(total_units: int, shares: Sequence[Fraction]) -> list[int]:
    """Split ``total_units`` in proportion to ``shares`` (summing to 1), largest remainder."""
    exact = [share * total_units for share in shares]
    floors = [int(x) for x in exact]  # shares are non-negative: int() is floor
    left = total_units - sum(floors)
    # Largest dropped remainder first; ties go to the later touchpoint.
    order = sorted(range(len(exact)), key=lambda i: (exact[i] - floors[i], i), reverse=True)
    for i in order[:left]:
        floors[i] += 1
    return floors


def credits(
    model: AttributionModel,
    touches: Sequence[Touch],
    converted_at: datetime,
    half_life_days: float = DEFAULT_HALF_LIFE_DAYS,
) -> list[Decimal]:
    """Each touchpoint's credit, 6 decimal places, summing to exactly 1 (empty: none)."""
    units = apportion(CREDIT_UNITS, weights(model, touches, converted_at, half_life_days))
    return [Decimal(u).scaleb(-PLACES) for u in units]


def split_value(value: Decimal, credit: Sequence[Decimal]) -> list[Decimal]:
    """Share a value (2 decimal places) in the credits' proportions, in cents summing to it."""
    if not credit:
        return []
    cents = int((value * 100).to_integral_value())
    shares = [Fraction(c) for c in credit]
    return [Decimal(c).scaleb(-2) for c in apportion(cents, shares)]


def all_credits(
    touches: Sequence[Touch],
    converted_at: datetime,
    half_life_days: float = DEFAULT_HALF_LIFE_DAYS,
) -> dict[AttributionModel, list[Decimal]]:
    return {m: credits(m, touches, converted_at, half_life_days) for m in AttributionModel}
