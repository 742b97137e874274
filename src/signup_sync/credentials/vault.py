"""Secret values stored in the database, encrypted with Fernet (AES-128-CBC + HMAC-SHA256).

The key comes from SIGNUP_SYNC_SECRETS_KEY: one or more Fernet keys, comma-separated; the
first encrypts, all decrypt (add a new key in front, re-save the sources, drop the old one).
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

KEY_SETTING = "SIGNUP_SYNC_SECRETS_KEY"
NO_KEY = (
    f"secret values can only be stored when {KEY_SETTING} is set; make a key with "
    f"`signup-sync secrets-key` and set {KEY_SETTING} to it (or name an environment "
    "variable in the config's *_env field instead)"
)


class SecretUnreadable(Exception):
    """A stored value that no configured key decrypts (the key changed or is missing)."""


def new_key() -> str:
    """A fresh key for SIGNUP_SYNC_SECRETS_KEY."""
    return Fernet.generate_key().decode()


def check_keys(keys: Sequence[str]) -> None:
    """ValueError unless every key is a Fernet key (never quotes the key)."""
    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key.encode())
        except ValueError:
            raise ValueError(
                f"key {position} is not a Fernet key (32 url-safe base64 bytes); "
                "`signup-sync secrets-key` makes one"
            ) from None


class Vault:
    """Encrypts and decrypts stored secret values."""

    def __init__(self, keys: Sequence[str]) -> None:
        check_keys(keys)
        self._fernet = MultiFernet([Fernet(k.encode()) for k in keys])

    def encrypt(self, value: str) -> str:
        return self._fernet.encrypt(value.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except (InvalidToken, ValueError):
            raise SecretUnreadable(
                f"a stored secret cannot be decrypted with {KEY_SETTING}; "
                "set the key it was stored with, or store the value again"
            ) from None
