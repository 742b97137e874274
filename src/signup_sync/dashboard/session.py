"""The dashboard's session cookie: signed with a key derived from the token used to sign in.

A browser signs in once with a read token (SIGNUP_SYNC_READ_TOKENS) or a full-access token
(SIGNUP_SYNC_SERVICE_TOKEN); the cookie then carries an expiry and an HMAC-SHA256 signature
keyed by that token. Removing the token from its variable ends every session opened with it;
nothing is stored server-side. The cookie opens the dashboard's read-only pages and nothing
else: the API takes bearer tokens only.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time

COOKIE_NAME = "signup_sync_session"
COOKIE_PATH = "/dashboard"
SESSION_SECONDS = 12 * 3600
_PURPOSE = b"signup-sync dashboard session v1"


def _key(token: bytes) -> bytes:
    # A derived key: the cookie never carries, nor lets anyone test, the token itself.
    return hmac.new(token, _PURPOSE, hashlib.sha256).digest()


def _sign(key: bytes, payload: str) -> str:
    digest = hmac.new(key, payload.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def issue(token: bytes, *, now: float | None = None, seconds: int = SESSION_SECONDS) -> str:
    expires = int((time.time() if now is None else now) + seconds)
    payload = f"v1.{expires}.{secrets.token_urlsafe(12)}"
    return f"{payload}.{_sign(_key(token), payload)}"


def is_valid(value: str | None, tokens: list[bytes], *, now: float | None = None) -> bool:
    """True for an unexpired cookie signed with any currently valid token."""
    if not value or len(value) > 256:
        return False
    payload, _, signature = value.rpartition(".")
    parts = payload.split(".")
    if len(parts) != 3 or parts[0] != "v1" or not parts[1].isdigit():
        return False
    if int(parts[1]) <= (time.time() if now is None else now):
        return False
    matched = False
    for token in tokens:
        matched |= hmac.compare_digest(_sign(_key(token), payload), signature)
    return matched
