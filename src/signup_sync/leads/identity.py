"""Identity rules: how an email or a phone number becomes a lead key."""

from __future__ import annotations

import re

import phonenumbers
from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email

# The everyday address (ASCII dot-atom local part, LDH labels, alphabetic TLD) is accepted
# here; anything else goes to email_validator. The pattern accepts only a subset of what
# email_validator accepts (tests/test_identity_fast_path.py compares them): the full check
# costs ~60 µs per address, most of a batch item's validation.
_PLAIN_EMAIL = re.compile(
    r"[a-z0-9_+-]+(?:\.[a-z0-9_+-]+)*"
    r"@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}"
)
_SPECIAL_SUFFIXES = tuple(f".{name}" for name in SPECIAL_USE_DOMAIN_NAMES)


def _plainly_valid(email: str) -> bool:
    if len(email) > 254 or not _PLAIN_EMAIL.fullmatch(email):
        return False
    local, domain = email.rsplit("@", 1)
    if len(local) > 64 or len(domain) > 253:
        return False
    return not (domain.endswith(_SPECIAL_SUFFIXES) or ".xn--" in f".{domain}")


def normalise_email(raw: str | None) -> str | None:
    """Trim and lower-case; empty means none. No provider tricks (Gmail dots stay)."""
    if raw is None:
        return None
    email = raw.strip().lower()
    return email or None


def validate_normalised_email(raw: str) -> str:
    """Normalise, then check the syntax; raise ValueError with a reason a client can read."""
    email = normalise_email(raw)
    if email is None:
        raise ValueError("email is empty")
    if _plainly_valid(email):
        return email
    try:
        validate_email(email, check_deliverability=False, test_environment=True)
    except EmailNotValidError as exc:
        raise ValueError(f"not a valid email address: {exc}") from None
    return email


def normalise_phone(raw: str | None, default_region: str | None = None) -> str | None:
    """E.164 form of a phone number (``+13055550188``), or None if absent or not a valid number.

    ``default_region`` (ISO 3166 alpha-2, e.g. ``US``) reads numbers written without ``+``.
    """
    if raw is None or not raw.strip():
        return None
    try:
        number = phonenumbers.parse(raw, (default_region or "").upper() or None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))
