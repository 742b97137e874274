"""Which environment variables a source may name for its secrets.

Only names under one prefix (``SIGNUP_SYNC_SOURCE_`` unless the operator changes it), and
never a variable the service itself reads (its database URL, its tokens, its keys), whatever
the prefix: a source's secret is sent to the source's host, so naming the service's own
token would hand it to whoever controls that host.
"""

from __future__ import annotations

import re

DEFAULT_PREFIX = "SIGNUP_SYNC_SOURCE_"
PREFIX_SETTING = "SIGNUP_SYNC_SOURCE_ENV_PREFIX"
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
PREFIX = re.compile(r"^[A-Z][A-Z0-9_]{1,62}_$")


def service_variables() -> frozenset[str]:
    """Every environment variable the service's settings read (upper-case)."""
    from signup_sync.settings import Settings

    names = {
        (f.validation_alias if isinstance(f.validation_alias, str) else name).upper()
        for name, f in Settings.model_fields.items()
    }
    return frozenset(names)


def check_prefix(prefix: str) -> str:
    """The prefix itself: upper-case letters, digits and ``_``, ending in ``_``."""
    if not PREFIX.match(prefix):
        raise ValueError(
            "must be 3-64 upper-case letters, digits or _, ending in _ (e.g. SIGNUP_SYNC_SOURCE_)"
        )
    return prefix


def env_name_problem(name: str, prefix: str) -> str | None:
    """Why a source may not name this variable (a sentence), or None when it may."""
    if not ENV_NAME.match(name):
        return "must name an environment variable (letters, digits, _), not hold the secret"
    if name.upper() in service_variables():
        return f"{name} is one of the service's own settings and cannot be a source secret"
    if not name.startswith(prefix) or name == prefix:
        return (
            f"source secrets must be in environment variables starting with {prefix}; "
            f"rename {name} to {suggested(name, prefix)}"
        )
    return None


def suggested(name: str, prefix: str) -> str:
    """The variable an old-style name should become: the prefix in front of it."""
    return name if name.startswith(prefix) else prefix + name.upper()
