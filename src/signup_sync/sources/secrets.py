"""``Secrets``: the one place a source's secrets are read (stored value, else environment)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping

from signup_sync.credentials.names import DEFAULT_PREFIX, env_name_problem
from signup_sync.credentials.vault import KEY_SETTING, SecretUnreadable, Vault
from signup_sync.sources.errors import FatalSourceError


class MissingSecret(FatalSourceError, KeyError):
    """A secret the connector asked for is not available; names the variable, never a value.

    Also a KeyError, so ``ctx.secrets.get(name)`` returns None for an optional secret.
    """

    def __str__(self) -> str:
        return str(self.args[0])


class Secrets(Mapping[str, str]):
    """``ctx.secrets``: a value stored (encrypted) with the source wins; else the variable
    its ``*_env`` field names, if the name is allowed (``credentials.names``)."""

    def __init__(
        self,
        env_names: Mapping[str, str],
        *,
        stored: Mapping[str, str] | None = None,
        vault: Vault | None = None,
        prefix: str = DEFAULT_PREFIX,
    ) -> None:
        self._names = dict(env_names)
        self._stored = dict(stored or {})
        self._vault = vault
        self._prefix = prefix
        self.resolved: set[str] = set()

    def __getitem__(self, key: str) -> str:
        value = self._lookup(key)
        # Kept so that the run's messages can blank it (tally.clean_message).
        self.resolved.add(value)
        return value

    def _lookup(self, key: str) -> str:
        if key in self._stored:
            return self._decrypt(key)
        env = self._names.get(key)
        if env is None:
            raise MissingSecret(f"the source's config names no {key}_env variable")
        problem = env_name_problem(env, self._prefix)
        if problem is not None:
            raise MissingSecret(f"config.{key}_env: {problem}")
        value = os.environ.get(env)
        if not value:
            old = env.removeprefix(self._prefix)
            hint = (
                f"; {old} is set, but source secrets now need the {self._prefix} prefix: "
                f"rename it to {env}"
                if old != env and os.environ.get(old)
                else ""
            )
            raise MissingSecret(f"environment variable {env} is not set (needed for {key}){hint}")
        return value

    def _decrypt(self, key: str) -> str:
        if self._vault is None:
            raise MissingSecret(f"the source stores a value for {key} but {KEY_SETTING} is not set")
        try:
            return self._vault.decrypt(self._stored[key])
        except SecretUnreadable as exc:
            raise MissingSecret(f"{key}: {exc}") from None

    def is_set(self, key: str) -> bool:
        """Whether ``self[key]`` would give a value (without keeping it)."""
        return self.problem(key) is None

    def problem(self, key: str) -> str | None:
        """Why ``self[key]`` would fail (naming the variable, never a value), or None."""
        try:
            self._lookup(key)
        except MissingSecret as exc:
            return str(exc)
        return None

    def __iter__(self) -> Iterator[str]:
        names = list(self._stored) + [n for n in self._names if n not in self._stored]
        return (name for name in names if self.is_set(name))

    def __len__(self) -> int:
        return sum(1 for _ in self)


def require(secrets: Mapping[str, str], key: str, what: str, env: str | None = None) -> str:
    """A secret's value for a connector; MissingSecret (fatal) saying why it is unavailable.

    ``env`` (the variable the config names) is only used to word the message.
    """
    try:
        value = secrets[key]
    except MissingSecret as exc:
        raise MissingSecret(f"{what}: {exc}") from None
    except KeyError:
        value = ""
    if not value:
        where = f"environment variable {env} is not set" if env else "it is not configured"
        raise MissingSecret(f"{what}: no {key} secret ({where})")
    return value
