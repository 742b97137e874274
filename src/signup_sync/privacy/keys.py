"""The key that hashes erased identifiers.

``PRIVACY_HASH_KEY`` when set; otherwise a random key generated at the first erasure and
stored in ``privacy_hash_keys`` (so every replica and every restart uses the same one).
Service tokens are not used: they rotate, and a rotated key would orphan every tombstone.
The key is fixed by the first erasure: its fingerprint is stored, and a different
``PRIVACY_HASH_KEY`` later is refused loudly (``PrivacyKeyMismatch``) rather than silently
letting erased people back in.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from weakref import WeakKeyDictionary

from sqlalchemy import Engine
from sqlalchemy.ext.asyncio import AsyncSession

from signup_sync.db.session import PRIVACY_KEY_INFO
from signup_sync.errors import ServiceUnavailable
from signup_sync.privacy import repository

_FINGERPRINT_INPUT = b"signup-sync privacy hash key fingerprint v1"


class PrivacyKeyMismatch(ServiceUnavailable):
    """The configured key is not the one the stored tombstones were hashed with."""

    code = "privacy_key_mismatch"


@dataclass(frozen=True, slots=True)
class HashKey:
    secret: bytes

    def digest(self, kind: str, value: str) -> str:
        """HMAC-SHA256 of ``kind:value`` (hex); ``value`` is already normalised."""
        return hmac.new(self.secret, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()


# Once stored, the key never changes: each engine remembers it, so ingestion pays one
# statement for erasure (the tombstone lookup, or the key lookup until a first erasure).
_KNOWN: WeakKeyDictionary[Engine, HashKey] = WeakKeyDictionary()
# Set on a session that inserted the key: until it commits, the key is not remembered.
_CREATED_HERE = "signup_sync.privacy_key_created"


def fingerprint(secret: bytes) -> str:
    return hmac.new(secret, _FINGERPRINT_INPUT, hashlib.sha256).hexdigest()


def _configured(session: AsyncSession) -> bytes | None:
    value = session.info.get(PRIVACY_KEY_INFO)
    return value if isinstance(value, bytes) else None


def _checked(row: repository.KeyRow, configured: bytes | None) -> HashKey:
    if configured is not None:
        if not hmac.compare_digest(row.fingerprint, fingerprint(configured)):
            hint = (
                "unset it to keep using the key generated in the database"
                if row.secret is not None
                else "restore its previous value"
            )
            raise PrivacyKeyMismatch(
                "PRIVACY_HASH_KEY is not the key that hashed the stored erasure tombstones; " + hint
            )
        return HashKey(configured)
    if row.secret is None:
        raise PrivacyKeyMismatch(
            "Erasure tombstones were hashed with PRIVACY_HASH_KEY, which is not set; set it again"
        )
    return HashKey(bytes.fromhex(row.secret))


async def guard_ingestion(session: AsyncSession) -> HashKey | None:
    """Take ingestion's side of the erasure lock (an erasure in flight finishes first), then
    return the tombstones' key, or None when nobody was ever erased (nothing to check): one
    statement either way."""
    known = _known(session)
    if known is not None:
        await repository.lock_for_ingestion(session)
        return known
    return _remember(session, await repository.lock_for_ingestion_and_read_key(session))


def _known(session: AsyncSession) -> HashKey | None:
    engine = session.get_bind()
    return _KNOWN.get(engine) if isinstance(engine, Engine) else None


def _remember(session: AsyncSession, row: repository.KeyRow | None) -> HashKey | None:
    if row is None:
        return None
    engine = session.get_bind()
    key = _checked(row, _configured(session))
    if isinstance(engine, Engine) and not session.info.get(_CREATED_HERE):
        _KNOWN[engine] = key
    return key


async def ensure_key(session: AsyncSession) -> HashKey:
    """The tombstones' key, fixing it now if this is the first erasure."""
    row = await repository.key_row(session)
    configured = _configured(session)
    if row is None:
        secret = configured if configured is not None else secrets.token_bytes(32)
        stored = None if configured is not None else secret.hex()
        # Two replicas erasing at once: the first insert wins and both read it back.
        await repository.insert_key(session, secret=stored, fingerprint=fingerprint(secret))
        session.info[_CREATED_HERE] = True
        row = await repository.key_row(session)
        assert row is not None
    return _checked(row, configured)
