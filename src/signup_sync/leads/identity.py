"""Identity rules: how an email (and later a phone) becomes a lead key."""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email


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
    try:
        validate_email(email, check_deliverability=False, test_environment=True)
    except EmailNotValidError as exc:
        raise ValueError(f"not a valid email address: {exc}") from None
    return email
