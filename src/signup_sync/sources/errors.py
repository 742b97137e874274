"""How a connector failure is classed: fatal, retriable or a skippable record."""

from __future__ import annotations


class SourceError(Exception):
    """Base of connector errors. Messages must never carry secrets or raw emails."""


class FatalSourceError(SourceError):
    """Retrying cannot help: bad credentials, missing config, a resource that does not exist."""


class CredentialsRefused(FatalSourceError):
    """The source refused the credentials (401/403, an OAuth token request turned down).

    Its own class so that a source check can tell "authenticate" from "read one page".
    """


class RetriableSourceError(SourceError):
    """A transient failure (429, 5xx, timeout, dropped connection, malformed page).

    ``retry_after`` is the number of seconds the source asked us to wait, when it said.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PaginationLoopError(FatalSourceError):
    """The source handed back a page token or offset it had already given: stop, don't spin."""


class SkipRecord(Exception):
    """One record cannot be mapped (no email, bad date); it is counted with its reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
