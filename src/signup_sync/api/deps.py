"""Request dependencies: the service-token check and the unit of work."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from signup_sync.db.session import run_in_transaction
from signup_sync.errors import Unauthorized

T = TypeVar("T")

_bearer = HTTPBearer(auto_error=False, description="SIGNUP_SYNC_SERVICE_TOKEN (any of them)")


def token_matches(given: str, tokens: list[bytes]) -> bool:
    """Constant-time comparison against every valid token (several during a rotation)."""
    candidate = given.encode()
    matched = False
    for token in tokens:
        matched |= hmac.compare_digest(candidate, token)
    return matched


async def require_token(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    if credentials is None:
        raise Unauthorized("Missing bearer token: send 'Authorization: Bearer <token>'")
    if not token_matches(credentials.credentials, request.app.state.tokens):
        raise Unauthorized("Invalid bearer token")


class UnitOfWork:
    """Runs one service call in one transaction; the request edge is where commits happen."""

    def __init__(self, factory: async_sessionmaker[AsyncSession]) -> None:
        self._factory = factory

    async def __call__(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        return await run_in_transaction(self._factory, work)

    async def read(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        async with self._factory() as session:
            return await work(session)


async def get_uow(request: Request) -> UnitOfWork:
    # async: a plain def dependency would run in a worker thread, a thread hop per request.
    return UnitOfWork(request.app.state.session_factory)


Uow = Annotated[UnitOfWork, Depends(get_uow)]
Authorized = [Depends(require_token)]


# Ids are BIGINT: a larger number can name nothing, so it is a 422, not a database error.
MAX_ID = 2**63 - 1
SourceId = Annotated[int, Path(ge=1, le=MAX_ID, description="source id")]
LeadId = Annotated[int, Path(ge=1, le=MAX_ID, description="lead id")]
