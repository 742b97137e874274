"""Request dependencies: the constant-time token comparison and the unit of work.

Roles (who may call what) are declared per router with ``roles.require_role``.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, TypeVar

from fastapi import Depends, Path, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from signup_sync.db.session import run_in_transaction

T = TypeVar("T")


def token_matches(given: str, tokens: Sequence[bytes]) -> bool:
    """Constant-time comparison against every valid token (several during a rotation)."""
    candidate = given.encode()
    matched = False
    for token in tokens:
        matched |= hmac.compare_digest(candidate, token)
    return matched


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


# Ids are BIGINT: a larger number can name nothing, so it is a 422, not a database error.
MAX_ID = 2**63 - 1
SourceId = Annotated[int, Path(ge=1, le=MAX_ID, description="source id")]
LeadId = Annotated[int, Path(ge=1, le=MAX_ID, description="lead id")]
