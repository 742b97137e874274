"""Sender authentication, pure: Zoom's HMAC signature and the static secrets of the others.

Zoom (source-apis.md §2.6, vectors §6): ``x-zm-signature = "v0=" + hex(HMAC-SHA256(secret,
"v0:{x-zm-request-timestamp}:{raw body}"))`` over the raw bytes, never a re-serialisation.
Every comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac

import orjson


class VerificationError(Exception):
    """The delivery is not from the sender it claims; the message says why (no secrets)."""


def zoom_signature(secret: str, timestamp: str, raw_body: bytes) -> str:
    message = b"v0:" + timestamp.encode("ascii") + b":" + raw_body
    return "v0=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def verify_zoom(
    secret: str,
    *,
    signature: str | None,
    timestamp: str | None,
    raw_body: bytes,
    now: float,
    max_age_seconds: float,
) -> None:
    """Raise VerificationError unless the signature matches and the timestamp is fresh."""
    if not signature or not timestamp:
        raise VerificationError("missing x-zm-signature or x-zm-request-timestamp")
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        raise VerificationError("x-zm-request-timestamp is not epoch seconds")
    expected = zoom_signature(secret, timestamp, raw_body)
    if not hmac.compare_digest(expected.encode(), signature.strip().encode("utf-8", "replace")):
        raise VerificationError("signature does not match")
    # Checked after the signature so that a forged timestamp cannot probe the clock window.
    if abs(now - int(timestamp)) > max_age_seconds:
        raise VerificationError("timestamp outside the accepted window (replay?)")


def zoom_url_validation(secret: str, plain_token: str) -> dict[str, str]:
    """The answer to ``endpoint.url_validation`` (vector Z2)."""
    encrypted = hmac.new(secret.encode(), plain_token.encode(), hashlib.sha256).hexdigest()
    return {"plainToken": plain_token, "encryptedToken": encrypted}


def secret_matches(expected: str, given: str | None) -> bool:
    """Constant-time equality of a static shared secret (EA header, URL secrets)."""
    if not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace"))


def body_hash(raw_body: bytes) -> str:
    """A hash of the body's JSON content (key order and spacing ignored), else of its bytes."""
    try:
        canonical = orjson.dumps(orjson.loads(raw_body), option=orjson.OPT_SORT_KEYS)
    except orjson.JSONDecodeError:
        canonical = raw_body
    return hashlib.sha256(canonical).hexdigest()
