"""The plain-address fast path of email validation accepts nothing email_validator rejects."""

from __future__ import annotations

import itertools
import random

import pytest
from email_validator import EmailNotValidError, validate_email

from signup_sync.leads.identity import _plainly_valid, validate_normalised_email

PIECES_LOCAL = ["a", "z9", "_", "+", "-", ".", "..", "ab.cd", "x" * 64, "x" * 65, "é", "%", '"q"']
PIECES_DOMAIN = [
    "example.com", "a.b.co", "ex-ample.org", "-bad.com", "bad-.com", "x.c", "x.c0m", "1.2.3.4",
    "localhost", "host.local", "a.test", "a.invalid", "xn--bcher-kva.de", "a..b.com",
    "example.com.", "b" * 63 + ".com", "b" * 64 + ".com", "ab.ab" * 60, "münchen.de", "a_b.com",
]  # fmt: skip


def _accepted(email: str) -> bool:
    try:
        validate_email(email, check_deliverability=False, test_environment=True)
    except EmailNotValidError:
        return False
    return True


def _corpus() -> list[str]:
    emails = [f"{lp}@{d}" for lp, d in itertools.product(PIECES_LOCAL, PIECES_DOMAIN)]
    rng = random.Random(7)
    alphabet = "ab09_+-.@xé%"
    for _ in range(3000):
        emails.append("".join(rng.choice(alphabet) for _ in range(rng.randint(3, 14))) + ".com")
    return emails


def test_fast_path_accepts_only_what_email_validator_accepts() -> None:
    fast = [e for e in _corpus() if _plainly_valid(e)]
    assert len(fast) > 50  # the fast path is really taken
    assert [e for e in fast if not _accepted(e)] == []


@pytest.mark.parametrize("email", ["ann@example.com", "a.b+tag@mail.example.co.uk"])
def test_plain_addresses_take_the_fast_path(email: str) -> None:
    assert _plainly_valid(email)
    assert validate_normalised_email(f"  {email.upper()} ") == email


@pytest.mark.parametrize("email", ["a@localhost", "a..b@example.com", "a@host.local", "@x.com"])
def test_others_still_get_the_full_check(email: str) -> None:
    assert not _plainly_valid(email)
    with pytest.raises(ValueError, match="not a valid email"):
        validate_normalised_email(email)
