"""Who may call what: token roles, declared once per router with ``require_role(Role.X)``.

Bearer tokens come in four kinds (docs/security.md "Tokens and roles"):

- full access (``SIGNUP_SYNC_SERVICE_TOKEN``): every bearer role;
- read (``SIGNUP_SYNC_READ_TOKENS``): analytics, leads, exports, the dashboard;
- ingest (``SIGNUP_SYNC_INGEST_TOKENS``): events, batches, conversions, CSV imports;
- metrics (``METRICS_TOKEN``): ``GET /metrics`` only.

Routes that authenticate their caller another way declare that too (``public``, the
tracking API's ``write_key``, the webhook receivers' ``webhook_signature``, the dashboard's
``dashboard_session``), so every route names its access rule and a route without one is
found by ``undeclared_routes``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from typing import Annotated, Any, TypeVar

from fastapi import Depends, FastAPI, Request, Response
from fastapi.params import Depends as DependsParam
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from signup_sync.api.deps import token_matches
from signup_sync.errors import Forbidden, Unauthorized
from signup_sync.settings import Settings


class Role(StrEnum):
    """The access rule of a route; the first four are bearer-token roles."""

    READ = "read"
    INGEST = "ingest"
    FULL = "full"
    METRICS = "metrics"
    PUBLIC = "public"
    WRITE_KEY = "write_key"
    WEBHOOK_SIGNATURE = "webhook_signature"
    DASHBOARD_SESSION = "dashboard_session"


BEARER_ROLES = frozenset({Role.READ, Role.INGEST, Role.FULL, Role.METRICS})

# Which variable holds tokens with each role: named in 403s so the caller knows what to ask for.
ROLE_HOLDERS = {
    Role.READ: "SIGNUP_SYNC_READ_TOKENS or SIGNUP_SYNC_SERVICE_TOKEN",
    Role.INGEST: "SIGNUP_SYNC_INGEST_TOKENS or SIGNUP_SYNC_SERVICE_TOKEN",
    Role.FULL: "SIGNUP_SYNC_SERVICE_TOKEN",
    Role.METRICS: "METRICS_TOKEN or SIGNUP_SYNC_SERVICE_TOKEN",
}

# What each rule means, for the OpenAPI description of every operation.
ROLE_HELP = {
    Role.READ: "a read token (SIGNUP_SYNC_READ_TOKENS) or a full-access token",
    Role.INGEST: "an ingest token (SIGNUP_SYNC_INGEST_TOKENS) or a full-access token",
    Role.FULL: "a full-access token (SIGNUP_SYNC_SERVICE_TOKEN)",
    Role.METRICS: "METRICS_TOKEN or a full-access token",
    Role.PUBLIC: "no credentials",
    Role.WRITE_KEY: "a tracking write key (SEGMENT_WRITE_KEYS); bearer tokens are not accepted",
    Role.WEBHOOK_SIGNATURE: "the sender's signature or webhook secret; checked before the body "
    "is read; bearer tokens are not accepted",
    Role.DASHBOARD_SESSION: "the dashboard's session cookie (signed in with a read or full token)",
}

_bearer = HTTPBearer(
    auto_error=False,
    description="A full-access (SIGNUP_SYNC_SERVICE_TOKEN), read (SIGNUP_SYNC_READ_TOKENS), "
    "ingest (SIGNUP_SYNC_INGEST_TOKENS) or metrics (METRICS_TOKEN) token; each operation "
    "names the role it needs in `x-required-role`.",
)


@dataclass(frozen=True, slots=True)
class Keyring:
    """The valid tokens of each kind (several per kind during a rotation)."""

    full: tuple[bytes, ...]
    read: tuple[bytes, ...] = ()
    ingest: tuple[bytes, ...] = ()
    metrics: tuple[bytes, ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings, full: list[str]) -> Keyring:
        return cls(
            full=tuple(t.encode() for t in full),
            read=tuple(t.encode() for t in settings.read_tokens),
            ingest=tuple(t.encode() for t in settings.ingest_tokens),
            metrics=tuple(t.encode() for t in settings.metrics_tokens),
        )

    def roles(self, given: str) -> frozenset[Role]:
        """The roles a presented token holds (empty: not a valid token).

        Every kind is compared, in constant time per token, whatever matched before.
        """
        found: set[Role] = set()
        if token_matches(given, self.full):
            found |= BEARER_ROLES
        if token_matches(given, self.read):
            found.add(Role.READ)
        if token_matches(given, self.ingest):
            found.add(Role.INGEST)
        if token_matches(given, self.metrics):
            found.add(Role.METRICS)
        return frozenset(found)

    def tokens_with(self, role: Role) -> list[bytes]:
        """Every token holding ``role`` (the dashboard signs its cookie with one of them)."""
        extra = {Role.READ: self.read, Role.INGEST: self.ingest, Role.METRICS: self.metrics}
        return [*self.full, *extra.get(role, ())]


def authorize(
    request: Request, credentials: HTTPAuthorizationCredentials | None, role: Role
) -> None:
    """401 without a valid token, 403 (naming the role) with a valid token lacking it."""
    if credentials is None:
        raise Unauthorized("Missing bearer token: send 'Authorization: Bearer <token>'")
    keyring: Keyring = request.app.state.keyring
    held = keyring.roles(credentials.credentials)
    if not held:
        raise Unauthorized("Invalid bearer token")
    if role not in held:
        raise Forbidden(
            f"This token does not have the '{role}' role this endpoint needs: use a token "
            f"from {ROLE_HOLDERS[role]}",
            required_role=role.value,
        )


_DECLARED: dict[Callable[..., Any], Role] = {}
F = TypeVar("F", bound=Callable[..., Any])


def declares(role: Role) -> Callable[[F], F]:
    """Mark a dependency that checks its own credentials as declaring ``role``."""

    def mark(dependency: F) -> F:
        _DECLARED[dependency] = role
        return dependency

    return mark


# Set in the request scope once the route's role was checked ahead of FastAPI's body parsing.
_AUTHORIZED = "signup_sync.authorized_role"


@cache
def require_role(role: Role) -> DependsParam:
    """The dependency that declares (and, for bearer roles, checks) a route's role."""
    if role in BEARER_ROLES:

        async def check(
            request: Request,
            credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
        ) -> None:
            if request.scope.get(_AUTHORIZED) != role:  # a router without RoleRoute
                authorize(request, credentials, role)

        dependency: Callable[..., Awaitable[None]] = check
    else:
        # The route checks its own credentials (write key, signature, cookie) or needs none.
        async def declared() -> None:
            return None

        dependency = declared
    dependency.__name__ = f"require_{role.value}"
    _DECLARED[dependency] = role
    marker: DependsParam = Depends(dependency)
    return marker


class RoleRoute(APIRoute):
    """Checks the route's bearer role before anything reads the request.

    FastAPI decodes a JSON body before it runs dependencies, so without this an
    unauthenticated caller sending a malformed body would learn a 422 instead of a 401.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        roles = {role for role in _declared_roles(self.dependant) if role in BEARER_ROLES}
        if len(roles) != 1:
            return handler
        (role,) = roles

        async def authorize_first(request: Request) -> Response:
            authorize(request, await _bearer(request), role)
            request.scope[_AUTHORIZED] = role
            return await handler(request)

        return authorize_first


def _declared_roles(dependant: Any) -> Iterator[Role]:
    for sub in dependant.dependencies:
        if sub.call in _DECLARED:
            yield _DECLARED[sub.call]
        yield from _declared_roles(sub)


def route_roles(app: FastAPI) -> dict[tuple[str, str], set[Role]]:
    """``(METHOD, path) -> declared roles`` of every API route (documentation routes aside)."""
    found: dict[tuple[str, str], set[Role]] = {}
    for context in iter_route_contexts(app.routes):
        if not isinstance(context.original_route, APIRoute):
            continue  # /docs, /openapi.json: FastAPI's own pages
        roles = set(_declared_roles(context.dependant))
        for method in sorted(context.methods or ()):
            found[(method, str(context.path_format))] = roles
    return found


def undeclared_routes(app: FastAPI) -> list[str]:
    """Routes declaring no role, or more than one: each must say exactly who may call it."""
    return [
        f"{method} {path}" for (method, path), roles in route_roles(app).items() if len(roles) != 1
    ]


def document_roles(app: FastAPI, spec: dict[str, Any]) -> None:
    """Name each operation's role in ``x-required-role`` and in its description."""
    for (method, path), roles in route_roles(app).items():
        operation = spec.get("paths", {}).get(path, {}).get(method.lower())
        if operation is None or len(roles) != 1:
            continue
        (role,) = roles
        operation["x-required-role"] = role.value
        line = f"**Role:** `{role.value}` — {ROLE_HELP[role]}."
        described = operation.get("description")
        operation["description"] = f"{described}\n\n{line}" if described else line
        if role in BEARER_ROLES:
            operation.setdefault("responses", {}).setdefault(
                "403",
                {
                    "description": f"A valid token without the `{role.value}` role",
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}
                    },
                },
            )
