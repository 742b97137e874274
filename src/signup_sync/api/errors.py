"""One place that turns errors into JSON bodies: field-level 422s, typed domain errors, 503s."""

from __future__ import annotations

import sqlite3
from typing import Any

import asyncpg.exceptions
import sqlalchemy.exc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from signup_sync.errors import DomainError
from signup_sync.logs import get_logger

log = get_logger("signup_sync.api")

_LOC_ROOTS = {"body", "query", "path", "header"}


def field_name(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = list(loc)
    if parts and parts[0] in _LOC_ROOTS and len(parts) > 1:
        parts = parts[1:]
    return ".".join(str(p) for p in parts) or "body"


def describe_errors(errors: list[Any]) -> list[dict[str, Any]]:
    """Pydantic errors as ``{field, message, type}`` without echoing the rejected input."""
    out = []
    for err in errors:
        item: dict[str, Any] = {
            "field": field_name(err.get("loc", ())),
            "message": str(err.get("msg", "invalid")).removeprefix("Value error, "),
            "type": err.get("type", "value_error"),
        }
        expected = (err.get("ctx") or {}).get("expected")
        if expected:
            item["allowed"] = expected
        out.append(item)
    return out


async def _validation(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = describe_errors(list(exc.errors()))
    fields = ", ".join(sorted({e["field"] for e in errors}))
    return JSONResponse(
        status_code=422,
        content={"error": "validation_error", "detail": f"Invalid {fields}", "errors": errors},
    )


async def _domain(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    headers = exc.headers()
    return JSONResponse(status_code=exc.status_code, content=exc.body(), headers=headers or None)


def _allowed_methods(request: Request) -> list[str]:
    """Every method any route serves at this path (Starlette only names the first route's)."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches({**request.scope, "method": "__none__"})
        if match is not Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods)


async def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(getattr(exc, "headers", None) or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(_allowed_methods(request))
    return JSONResponse(
        status_code=exc.status_code,
        content={"error": "http_error", "detail": exc.detail},
        headers=headers or None,
    )


async def _database_down(_: Request, exc: Exception) -> JSONResponse:
    log.warning("database_unavailable", error_type=type(exc).__name__)
    return JSONResponse(
        status_code=503,
        content={
            "error": "database_unavailable",
            "detail": "The database did not answer; retry later",
        },
        headers={"Retry-After": "5"},
    )


# What a lost connection looks like from below SQLAlchemy: asyncpg's connection errors
# (SQLSTATE class 08, "connection is closed", server shutting down) and socket errors.
_LOST_CONNECTION: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CannotConnectNowError,
    OSError,
    TimeoutError,
)


def lost_connection(exc: BaseException) -> bool:
    """Whether a DBAPIError means the database went away (not a bad statement)."""
    if getattr(exc, "connection_invalidated", False):
        return True
    seen: BaseException | None = exc
    for _ in range(10):  # the cause chain: SQLAlchemy's error -> adapted error -> asyncpg's
        if seen is None:
            return False
        if isinstance(seen, _LOST_CONNECTION):
            return True
        seen = getattr(seen, "orig", None) or seen.__cause__ or seen.__context__
    return False


async def _dbapi(request: Request, exc: Exception) -> JSONResponse:
    # A connection that died mid-statement or mid-commit surfaces as a plain DBAPIError.
    if lost_connection(exc):
        return await _database_down(request, exc)
    raise exc


def bad_statement(exc: BaseException) -> bool:
    """Whether an OperationalError is SQLite's generic SQLITE_ERROR (no such table, a syntax
    error): a bug or a schema behind, not a database that is busy, full or unreachable."""
    orig = getattr(exc, "orig", None)
    return isinstance(orig, sqlite3.Error) and (
        getattr(orig, "sqlite_errorname", None) == "SQLITE_ERROR"
    )


async def _operational(request: Request, exc: Exception) -> JSONResponse:
    if bad_statement(exc):
        raise exc  # the 500 of RequestContextMiddleware, with its request id
    return await _database_down(request, exc)


DATABASE_DOWN: tuple[type[Exception], ...] = (
    sqlalchemy.exc.InterfaceError,
    sqlalchemy.exc.TimeoutError,
    sqlalchemy.exc.DisconnectionError,
)
# Raised bare by the drivers when a connection cannot be made or times out; but also by
# anything else (a too-long time-zone name is an OSError from the file system). Only those
# raised inside the database stack mean "the database is unavailable".
MAYBE_DATABASE_DOWN: tuple[type[Exception], ...] = (ConnectionError, OSError, TimeoutError)
_DATABASE_MODULES = ("sqlalchemy.", "asyncpg.", "aiosqlite.", "sqlite3.", "signup_sync.db.")


def raised_by_database(exc: BaseException) -> bool:
    """Whether ``exc`` (or an error it was raised from) came out of the database stack."""
    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            return False
        tb = seen.__traceback__
        while tb is not None:
            module = str(tb.tb_frame.f_globals.get("__name__", ""))
            if module.startswith(_DATABASE_MODULES):
                return True
            tb = tb.tb_next
        seen = seen.__cause__ or seen.__context__
    return False


async def _os_error(request: Request, exc: Exception) -> JSONResponse:
    if raised_by_database(exc):
        return await _database_down(request, exc)
    raise exc  # a bug, not an outage: the 500 of RequestContextMiddleware, with its request id


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(DomainError, _domain)
    app.add_exception_handler(StarletteHTTPException, _http)
    for exc_type in DATABASE_DOWN:
        app.add_exception_handler(exc_type, _database_down)
    app.add_exception_handler(sqlalchemy.exc.OperationalError, _operational)
    for exc_type in MAYBE_DATABASE_DOWN:
        app.add_exception_handler(exc_type, _os_error)
    app.add_exception_handler(sqlalchemy.exc.DBAPIError, _dbapi)
