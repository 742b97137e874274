"""Finding an erased person's email and phone inside stored text, JSON and raw bytes.

An email matches in any letter case; a phone matches when its national digits appear in
order, whatever the separators (``+1 (305) 555-0188``, ``305.555.0188``, ``13055550188``),
not inside a longer run of digits. JSON is searched value by value after decoding, so an
escaped spelling (``ana\\u0040example.com``) is found too.

``Needles.like_patterns`` are the cheap SQL pre-filter (a row must match one of them, in
lower case, to be looked at here): the email's local part then its domain (so an escaped
``@`` still passes), and the last four digits of each phone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import orjson
import phonenumbers

ERASED = "[erased]"
LIKE_ESCAPE = "!"
_SEPARATORS = r"[\s().\-/]{0,3}"


def _phone_pattern(e164: str) -> re.Pattern[str] | None:
    try:
        number = phonenumbers.parse(e164)
    except phonenumbers.NumberParseException:
        return None
    national = str(number.national_number)
    if len(national) < 6:
        return None
    digits = _SEPARATORS.join(re.escape(d) for d in national)
    # Optionally led by the country code (+1, 001, 1-), never inside a longer number.
    code = rf"(?:\+|00)?{number.country_code}{_SEPARATORS}"
    return re.compile(rf"(?:(?<!\d){code}|(?<!\d)\(?){digits}(?!\d)")


def _like(text: str) -> str:
    return "".join(LIKE_ESCAPE + c if c in "%_!" else c for c in text)


@dataclass(frozen=True, slots=True)
class Needles:
    emails: tuple[str, ...]
    phones: tuple[str, ...]  # E.164
    _patterns: tuple[re.Pattern[str], ...] = field(default=(), compare=False)

    @classmethod
    def of(cls, emails: tuple[str, ...], phones: tuple[str, ...]) -> Needles:
        patterns = tuple(p for p in map(_phone_pattern, phones) if p is not None)
        return cls(tuple(e.lower() for e in emails if e), phones, patterns)

    def __bool__(self) -> bool:
        return bool(self.emails or self._patterns)

    @property
    def like_patterns(self) -> list[str]:
        """LIKE patterns (escape character ``LIKE_ESCAPE``) over the lower-cased column."""
        terms = []
        for email in self.emails:
            local, _, domain = email.rpartition("@")
            terms.append(f"%{_like(local)}%{_like(domain)}%")
        for e164 in self.phones:
            try:
                national = str(phonenumbers.parse(e164).national_number)
            except phonenumbers.NumberParseException:
                continue
            terms.append(f"%{national[-4:]}%")
        return sorted(set(terms))

    def in_text(self, text: str) -> bool:
        lowered = text.lower()
        return any(e in lowered for e in self.emails) or any(p.search(text) for p in self._patterns)

    def scrub_text(self, text: str) -> str:
        for email in self.emails:
            text = re.sub(re.escape(email), ERASED, text, flags=re.IGNORECASE)
        for pattern in self._patterns:
            text = pattern.sub(ERASED, text)
        return text

    def in_value(self, value: Any) -> bool:
        """Anywhere in a decoded JSON value (keys included)."""
        if isinstance(value, str):
            return self.in_text(value)
        if isinstance(value, dict):
            return any(self.in_text(str(k)) or self.in_value(v) for k, v in value.items())
        if isinstance(value, list):
            return any(self.in_value(v) for v in value)
        if isinstance(value, int) and not isinstance(value, bool):
            return self.in_text(str(value))  # a phone sent as a JSON number
        return False

    def scrub_value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.scrub_text(value)
        if isinstance(value, dict):
            return {self.scrub_text(str(k)): self.scrub_value(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.scrub_value(v) for v in value]
        if isinstance(value, int) and not isinstance(value, bool) and self.in_text(str(value)):
            return ERASED
        return value

    def in_bytes(self, raw: bytes) -> bool:
        """A raw body: searched as JSON when it is JSON, and as text in any case."""
        text = raw.decode("utf-8", errors="replace")
        if self.in_text(text):
            return True
        try:
            return self.in_value(orjson.loads(raw))
        except orjson.JSONDecodeError:
            return False

    def in_stored(self, value: Any) -> bool:
        """A column's value as the driver returns it (text, decoded JSON or bytes)."""
        if value is None:
            return False
        if isinstance(value, bytes | bytearray | memoryview):
            return self.in_bytes(bytes(value))
        return self.in_value(value)
