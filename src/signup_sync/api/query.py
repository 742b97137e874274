"""Listings refuse query parameters they do not know, naming them.

A misspelt or unsupported filter (``/leads?chanel=Email``) would otherwise be ignored and the
answer would silently cover everyone; a 422 says so instead.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from signup_sync.errors import InvalidInput

_KNOWN: dict[int, frozenset[str]] = {}


def _declared(dependant: Dependant) -> set[str]:
    names = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _declared(sub)
    return names


async def reject_unknown_query(request: Request) -> None:
    """Dependency: 422 for a GET whose query names a parameter the route does not declare."""
    route = request.scope.get("route")
    if request.method != "GET" or not isinstance(route, APIRoute) or not request.query_params:
        return
    known = _KNOWN.get(id(route))
    if known is None:
        known = _KNOWN[id(route)] = frozenset(_declared(route.dependant))
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        raise InvalidInput(
            f"unknown query parameter {unknown[0]!r}; this listing takes "
            + (", ".join(sorted(known)) or "none"),
            field=unknown[0],
        )
