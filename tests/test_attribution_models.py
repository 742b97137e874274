"""Attribution models on hand-built touchpoint histories, against hand-computed credits."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest

from signup_sync.attribution.models import (
    AttributionModel,
    _time_decay_units,
    _time_decay_units_exact,
    all_credits,
    apportion,
    credit_units,
    credits,
    split_units,
    split_value,
    weights,
)

M = AttributionModel
CONVERTED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class T:
    days_before: float
    channel: str | None = "Email"
    source_type: str = "manual"

    @property
    def occurred_at(self) -> datetime:
        return CONVERTED - timedelta(days=self.days_before)


def d(*values: str) -> list[Decimal]:
    return [Decimal(v) for v in values]


def check(model: AttributionModel, touches: list[T], expected: list[Decimal]) -> None:
    got = credits(model, touches, CONVERTED)
    assert got == expected
    assert sum(got) == Decimal(1)
    assert all(c.as_tuple().exponent == -6 for c in got)


ONE = [T(3)]
TWO = [T(10, "Organic Search"), T(2, "Direct", "direct_signup")]
THREE = [T(14, "Paid Search"), T(7, "Email"), T(0, "Direct", "direct_signup")]
# 28, 14, 7, 7 and 0 days before: half-lives of 4, 2, 1, 1 and 0.
FIVE = [T(28, "Paid Social"), T(14, "Webinars"), T(7, "Email"), T(7, "Referral"), T(0, "Direct")]


@pytest.mark.parametrize(
    ("model", "touches", "expected"),
    [
        # One touchpoint: every model gives it everything.
        *((m, ONE, d("1.000000")) for m in M),
        (M.FIRST_TOUCH, TWO, d("1.000000", "0.000000")),
        (M.LAST_TOUCH, TWO, d("0.000000", "1.000000")),
        (M.LAST_NON_DIRECT, TWO, d("1.000000", "0.000000")),
        (M.LINEAR, TWO, d("0.500000", "0.500000")),
        # 2^-(10/7) : 2^-(2/7), i.e. 1 : 2^(8/7) = 1 : 2.2081790 -> 0.3117033.. : 0.6882966..
        (M.TIME_DECAY, TWO, d("0.311703", "0.688297")),
        (M.POSITION_BASED, TWO, d("0.500000", "0.500000")),
        (M.FIRST_TOUCH, THREE, d("1.000000", "0.000000", "0.000000")),
        (M.LAST_TOUCH, THREE, d("0.000000", "0.000000", "1.000000")),
        (M.LAST_NON_DIRECT, THREE, d("0.000000", "1.000000", "0.000000")),
        # 1/3 each: 0.333333 x 3 leaves one millionth, which goes to the latest touchpoint.
        (M.LINEAR, THREE, d("0.333333", "0.333333", "0.333334")),
        # Weights 1/4, 1/2, 1 -> 1/7, 2/7, 4/7 = 0.1428571.., 0.2857142.., 0.5714285..
        (M.TIME_DECAY, THREE, d("0.142857", "0.285714", "0.571429")),
        (M.POSITION_BASED, THREE, d("0.400000", "0.200000", "0.400000")),
        (M.FIRST_TOUCH, FIVE, d("1", "0", "0", "0", "0")),
        (M.LAST_TOUCH, FIVE, d("0", "0", "0", "0", "1")),
        (M.LAST_NON_DIRECT, FIVE, d("0", "0", "0", "1", "0")),
        (M.LINEAR, FIVE, d("0.2", "0.2", "0.2", "0.2", "0.2")),
        # Weights 1/16, 1/4, 1/2, 1/2, 1 -> 1/37, 4/37, 8/37, 8/37, 16/37; the left-over
        # millionth goes to the largest remainder (16/37 = 0.4324324..).
        (M.TIME_DECAY, FIVE, d("0.027027", "0.108108", "0.216216", "0.216216", "0.432433")),
        # 40% / 40% at the ends; 20% / 3 = 0.0666666.. in the middle: two millionths left,
        # all three middle remainders tie, so the two latest of them get one each.
        (M.POSITION_BASED, FIVE, d("0.4", "0.066666", "0.066667", "0.066667", "0.4")),
    ],
)
def test_credits_match_hand_computed_numbers(
    model: AttributionModel, touches: list[T], expected: list[Decimal]
) -> None:
    check(model, touches, [e.quantize(Decimal("0.000001")) for e in expected])


def test_no_touchpoints_no_credits() -> None:
    assert all(v == [] for v in all_credits([], CONVERTED).values())
    assert split_value(Decimal("10.00"), []) == []


def test_equal_timestamps_share_equally_and_order_breaks_first_last_ties() -> None:
    same = [T(5, "Email"), T(5, "Referral"), T(5, "Direct", "direct_signup")]
    # Time decay: equal ages, equal weights: the same as linear.
    assert credits(M.TIME_DECAY, same, CONVERTED) == d("0.333333", "0.333333", "0.333334")
    # First / last touch among equal times: arrival order decides.
    assert credits(M.FIRST_TOUCH, same, CONVERTED) == d("1", "0", "0")
    assert credits(M.LAST_TOUCH, same, CONVERTED) == d("0", "0", "1")
    assert credits(M.LAST_NON_DIRECT, same, CONVERTED) == d("0", "1", "0")
    pair = [T(1, "Email"), T(1, "Referral")]
    assert credits(M.TIME_DECAY, pair, CONVERTED) == d("0.5", "0.5")


def test_last_non_direct_falls_back_to_last_touch_when_all_are_direct() -> None:
    direct = [T(3, "Direct", "direct_signup"), T(1, "Direct", "direct_signup")]
    assert credits(M.LAST_NON_DIRECT, direct, CONVERTED) == d("0", "1")
    # Events stored before channels existed (channel None) are direct by source type.
    legacy = [T(3, None, "zoom"), T(1, None, "direct_signup")]
    assert credits(M.LAST_NON_DIRECT, legacy, CONVERTED) == d("1", "0")


def test_time_decay_half_life_is_configurable() -> None:
    touches = [T(2), T(1), T(0)]
    # Half-life one day: weights 1/4, 1/2, 1 as above.
    assert credits(M.TIME_DECAY, touches, CONVERTED, half_life_days=1) == d(
        "0.142857", "0.285714", "0.571429"
    )


def test_value_is_shared_in_cents_summing_to_the_value() -> None:
    c = credits(M.LINEAR, THREE, CONVERTED)
    assert split_value(Decimal("100.00"), c) == d("33.33", "33.33", "33.34")
    c5 = credits(M.POSITION_BASED, FIVE, CONVERTED)
    # 100 x 0.066666 = 6.6666, x 0.066667 = 6.6667: floors 40 + 3 x 6.66 + 40 = 99.98, the
    # two cents left go to the largest remainders (the 0.066667 shares).
    assert split_value(Decimal("100.00"), c5) == d("40.00", "6.66", "6.67", "6.67", "40.00")
    assert split_value(Decimal("0.01"), c) == d("0.00", "0.00", "0.01")
    assert sum(split_value(Decimal("49.99"), credits(M.TIME_DECAY, FIVE, CONVERTED))) == Decimal(
        "49.99"
    )


def test_apportion_always_sums_exactly() -> None:
    from fractions import Fraction

    for n in range(1, 40):
        shares = [Fraction(1, n)] * n
        assert sum(apportion(1_000_000, shares)) == 1_000_000
        assert sum(apportion(7, shares)) == 7


# --- integer credits against the definition --------------------------------------------


def _reference_apportion(total_units: int, shares: list[Fraction]) -> list[int]:
    """The largest-remainder rule as first written, over Fractions."""
    exact = [share * total_units for share in shares]
    floors = [int(x) for x in exact]
    left = total_units - sum(floors)
    order = sorted(range(len(exact)), key=lambda i: (exact[i] - floors[i], i), reverse=True)
    for i in order[:left]:
        floors[i] += 1
    return floors


def _histories(seed: int, count: int) -> list[tuple[list[T], int]]:
    """Random histories: distinct ages, a few repeated ages, and ages spread over years."""
    rng = random.Random(seed)
    out = []
    for k in range(count):
        n = rng.choice([1, 2, 3, 4, 5, 7, 10, 25, 50])
        if k % 3 == 0:
            pool = [rng.randrange(0, 90 * 86400) / 86400 for _ in range(rng.randint(1, 4))]
            days = [rng.choice(pool) for _ in range(n)]
        elif k % 3 == 1:
            days = [rng.randrange(0, 90 * 86400 * 10**6) / (86400 * 10**6) for _ in range(n)]
        else:
            days = [rng.randrange(0, 3650 * 86400) / 86400 for _ in range(n)]
        channels = ["Direct", "Email", None]
        touches = [
            T(d, rng.choice(channels), rng.choice(["zoom", "direct_signup"]))
            for d in sorted(days, reverse=True)
        ]
        out.append((touches, rng.choice([1, 2, 7, 7, 14, 30, 365])))
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_integer_credits_are_the_fraction_definition(seed: int) -> None:
    for touches, half_life in _histories(seed, 60):
        for model in M:
            expected = _reference_apportion(
                1_000_000, weights(model, touches, CONVERTED, half_life)
            )
            got = credit_units(model, touches, CONVERTED, half_life)
            assert got == expected, (model, [t.days_before for t in touches], half_life)
            for cents in (0, 1, 9_900, 123_456_789):
                shares = [Fraction(u, 1_000_000) for u in got]
                assert split_units(cents, got) == _reference_apportion(cents, shares)


def _ages(touches: list[T]) -> list[int]:
    return [max(0, int((CONVERTED - t.occurred_at).total_seconds())) for t in touches]


def test_time_decay_floats_decide_a_typical_history() -> None:
    rng = random.Random(7)
    touches = [T(rng.randrange(0, 90 * 86400) / 86400) for _ in range(50)]
    touches.sort(key=lambda t: -t.days_before)
    fast = _time_decay_units(_ages(touches), Fraction(7), 1_000_000)
    assert fast is not None
    assert fast == _time_decay_units_exact(_ages(touches), Fraction(7), 1_000_000)


def test_time_decay_exact_shares_are_left_to_the_exact_computation() -> None:
    # Weights 1/2, 1, 1: shares 0.2, 0.4, 0.4 exactly, which floats cannot tell from
    # 0.39999999.. or 0.40000001..: the exact computation decides.
    touches = [T(1), T(0), T(0)]
    assert _time_decay_units(_ages(touches), Fraction(1), 1_000_000) is None
    assert credits(M.TIME_DECAY, touches, CONVERTED, half_life_days=1) == d("0.2", "0.4", "0.4")
    # One age (any count): equal shares without floats.
    same = [T(3)] * 8
    assert credit_units(M.TIME_DECAY, same, CONVERTED) == [125_000] * 8
    # Years apart at a half-life of a day: the old touchpoint's weight underflows a float,
    # and its share is still known to round down to nothing.
    far = [T(3000), T(0.5)]
    assert _time_decay_units(_ages(far), Fraction(1), 1_000_000) == [0, 1_000_000]
