"""Attribution models: how one conversion's credit is shared among its touchpoints.

Pure functions. Touchpoints come oldest first, ties in time in arrival order. Credits are
Decimals with 6 places that sum to exactly 1; a value is shared in cents that sum to exactly
the value. Both use the largest-remainder method: every exact share is rounded down, then
the units left over go one each to the shares with the largest dropped remainders (ties:
the later touchpoint first).
"""

from __future__ import annotations

import math
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


def _age_seconds(touch: Touch, converted_at: datetime) -> int:
    return max(0, int((converted_at - touch.occurred_at).total_seconds()))


def _decay_decimal(seconds: int, half_life_days: Fraction) -> Decimal:
    """2 ** -(age / half-life), to 28 significant digits: the definition of the weights."""
    halvings = Fraction(seconds, 86400) / half_life_days
    with localcontext() as ctx:
        ctx.prec = 28
        return Decimal(2) ** (Decimal(-halvings.numerator) / Decimal(halvings.denominator))


def weights(
    model: AttributionModel,
    touches: Sequence[Touch],
    converted_at: datetime,
    half_life_days: float = DEFAULT_HALF_LIFE_DAYS,
) -> list[Fraction]:
    """Exact (unrounded) shares of credit, summing to 1; empty for no touchpoints.

    The definition; ``credit_units`` computes the same credits without Fractions.
    """
    n = len(touches)
    if n == 0:
        return []
    if model is AttributionModel.FIRST_TOUCH:
        return _one_hot(n, 0)
    if model is AttributionModel.LAST_TOUCH:
        return _one_hot(n, n - 1)
    if model is AttributionModel.LAST_NON_DIRECT:
        return _one_hot(n, _last_non_direct(touches))
    if model is AttributionModel.LINEAR:
        return [Fraction(1, n)] * n
    if model is AttributionModel.POSITION_BASED:
        if n <= 2:
            return [Fraction(1, n)] * n
        middle = Fraction(1, 5) / (n - 2)
        return [Fraction(2, 5), *([middle] * (n - 2)), Fraction(2, 5)]
    # Time decay: weight halves for every half-life between the touch and the conversion.
    half_life = Fraction(half_life_days)
    raw = [Fraction(_decay_decimal(_age_seconds(t, converted_at), half_life)) for t in touches]
    total = sum(raw, Fraction(0))
    return [w / total for w in raw]


def _last_non_direct(touches: Sequence[Touch]) -> int:
    n = len(touches)
    return next((i for i in range(n - 1, -1, -1) if not is_direct(touches[i])), n - 1)


def apportion(total_units: int, shares: Sequence[Fraction]) -> list[int]:
    """Split ``total_units`` in proportion to ``shares`` (summing to 1), largest remainder."""
    if not shares:
        return []
    denominator = math.lcm(*(share.denominator for share in shares))
    numerators = [share.numerator * (denominator // share.denominator) for share in shares]
    return apportion_ratios(total_units, numerators, denominator)


def apportion_ratios(total_units: int, numerators: Sequence[int], denominator: int) -> list[int]:
    """``apportion`` of the shares ``numerators[i] / denominator`` (summing to 1), in integers.

    Every exact share is rounded down; the units left go one each to the largest dropped
    remainders (all over the same denominator, so compared as integers), ties to the later.
    """
    floors = []
    remainders = []
    for numerator in numerators:
        floor, remainder = divmod(numerator * total_units, denominator)
        floors.append(floor)
        remainders.append(remainder)
    left = total_units - sum(floors)
    if left:
        order = sorted(range(len(floors)), key=lambda i: (remainders[i], i), reverse=True)
        for i in order[:left]:
            floors[i] += 1
    return floors


def _one_hot_units(total_units: int, n: int, index: int) -> list[int]:
    units = [0] * n
    units[index] = total_units
    return units


# Time decay without 28-digit powers. Each weight 2 ** -x is a float relative to the youngest
# touchpoint's (exactly 1.0, so the total is at least 1), the largest-remainder rounding is
# done in floats, and every decision it makes (each floor, and which remainders get the units
# left) is checked against a bound on the float error; when one is too close to call, the
# exact computation decides. The bound, relative to a weight: x as a float is within
# x * 2**-53 of x and pow within an ulp, so (x + 2) * 2**-52; the correctly rounded total,
# the scale and the product add an ulp each. A weight below 2**-1022 (x > 1022) is subnormal
# or zero: off by less than 2**-1074 absolutely, which the constant term covers, as it covers
# the definition's 28-digit rounding (of the exponent too: < 1e-20 for any age a datetime can
# hold). Everything doubled for margin.
_NORMAL_HALVINGS = 1024


def _time_decay_units(
    ages: Sequence[int], half_life_days: Fraction, total_units: int
) -> list[int] | None:
    """Time-decay credits from float weights, or None when a rounding decision is unsure."""
    youngest = min(ages)
    if youngest == max(ages):  # one age: equal weights, 1/n each (floats would need 1/n exact)
        return apportion_ratios(total_units, [1] * len(ages), len(ages))
    per_second = Fraction(1, 86400) / half_life_days  # halvings per second of age
    num, den = per_second.numerator, per_second.denominator
    halvings = [(age - youngest) * num / den for age in ages]
    raw = [2.0**-x for x in halvings]
    scale = total_units / math.fsum(raw)
    most = min(max(halvings), _NORMAL_HALVINGS)
    error = total_units * (4 * (most + 2) * 2.0**-52 + 2.0**-48) + 1e-12
    floors = []
    remainders = []
    for weight in raw:
        exact = weight * scale
        # Every exact share is > 0 and (two ages at least) < total_units: a floor next to
        # either end is sure even when the float is within the error of it.
        floor = min(int(exact), total_units - 1)
        if (exact - error < floor and floor > 0) or (
            exact + error >= floor + 1 and floor < total_units - 1
        ):
            return None  # too close to an integer to tell the floor
        floors.append(floor)
        remainders.append(exact - floor)
    left = total_units - sum(floors)
    n = len(floors)
    if not 0 <= left <= n:
        return None
    order = sorted(range(n), key=lambda i: (remainders[i], i), reverse=True)
    if 0 < left < n:
        lowest_in, highest_out = remainders[order[left - 1]], remainders[order[left]]
        if lowest_in - highest_out <= 2 * error:
            # Near ties are safe only between touchpoints of the same age: their weights,
            # and so their remainders, are equal here and in the definition alike.
            near = [i for i in order[:left] if remainders[i] <= highest_out + 2 * error]
            near += [i for i in order[left:] if remainders[i] >= lowest_in - 2 * error]
            if len({ages[i] for i in near}) > 1:
                return None
    for i in order[:left]:
        floors[i] += 1
    return floors


def _time_decay_units_exact(
    ages: Sequence[int], half_life_days: Fraction, total_units: int
) -> list[int]:
    """``apportion(total_units, weights(TIME_DECAY, ...))`` in integers: the 28-digit
    weights, scaled to one power of ten, are the numerators over their sum."""
    by_age = {age: _decay_decimal(age, half_life_days) for age in set(ages)}
    decimals = [by_age[age] for age in ages]
    exponents = [int(d.as_tuple().exponent) for d in decimals]
    lowest = min(exponents)
    integers = [
        int(d.scaleb(-e)) * 10 ** (e - lowest) for d, e in zip(decimals, exponents, strict=True)
    ]
    return apportion_ratios(total_units, integers, sum(integers))


def credit_units(
    model: AttributionModel,
    touches: Sequence[Touch],
    converted_at: datetime,
    half_life_days: float = DEFAULT_HALF_LIFE_DAYS,
) -> list[int]:
    """Each touchpoint's credit in millionths, summing to ``CREDIT_UNITS`` (empty: none).

    Exactly ``apportion(CREDIT_UNITS, weights(...))``, in integer arithmetic.
    """
    n = len(touches)
    if n == 0:
        return []
    if model is AttributionModel.FIRST_TOUCH:
        return _one_hot_units(CREDIT_UNITS, n, 0)
    if model is AttributionModel.LAST_TOUCH:
        return _one_hot_units(CREDIT_UNITS, n, n - 1)
    if model is AttributionModel.LAST_NON_DIRECT:
        return _one_hot_units(CREDIT_UNITS, n, _last_non_direct(touches))
    if model is AttributionModel.LINEAR or (model is AttributionModel.POSITION_BASED and n <= 2):
        return apportion_ratios(CREDIT_UNITS, [1] * n, n)
    if model is AttributionModel.POSITION_BASED:
        # 2/5 at each end, 1/5 shared by the n - 2 in the middle: over 5 * (n - 2).
        ends = 2 * (n - 2)
        return apportion_ratios(CREDIT_UNITS, [ends, *([1] * (n - 2)), ends], 5 * (n - 2))
    ages = [_age_seconds(t, converted_at) for t in touches]
    half_life = Fraction(half_life_days)
    units = _time_decay_units(ages, half_life, CREDIT_UNITS)
    return units if units is not None else _time_decay_units_exact(ages, half_life, CREDIT_UNITS)


def credits(
    model: AttributionModel,
    touches: Sequence[Touch],
    converted_at: datetime,
    half_life_days: float = DEFAULT_HALF_LIFE_DAYS,
) -> list[Decimal]:
    """Each touchpoint's credit, 6 decimal places, summing to exactly 1 (empty: none)."""
    units = credit_units(model, touches, converted_at, half_life_days)
    return [Decimal(u).scaleb(-PLACES) for u in units]


def split_units(cents: int, units: Sequence[int]) -> list[int]:
    """Share ``cents`` in proportion to credits in millionths, in cents summing to it."""
    return apportion_ratios(cents, units, CREDIT_UNITS) if units else []


def split_value(value: Decimal, credit: Sequence[Decimal]) -> list[Decimal]:
    """Share a value (2 decimal places) in the credits' proportions, in cents summing to it."""
    if not credit:
        return []
    cents = int((value * 100).to_integral_value())
    shares = [Fraction(c) for c in credit]
    return [Decimal(c).scaleb(-2) for c in apportion(cents, shares)]


def all_credit_units(
    touches: Sequence[Touch],
    converted_at: datetime,
    half_life_days: float = DEFAULT_HALF_LIFE_DAYS,
) -> dict[AttributionModel, list[int]]:
    return {m: credit_units(m, touches, converted_at, half_life_days) for m in AttributionModel}


def all_credits(
    touches: Sequence[Touch],
    converted_at: datetime,
    half_life_days: float = DEFAULT_HALF_LIFE_DAYS,
) -> dict[AttributionModel, list[Decimal]]:
    return {m: credits(m, touches, converted_at, half_life_days) for m in AttributionModel}
