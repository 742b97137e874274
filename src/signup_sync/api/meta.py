"""Service info and health: the two endpoints open without a token."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from signup_sync import SERVICE_NAME, __version__
from signup_sync.api.roles import Role, require_role
from signup_sync.db.health import ping, schema_state

router = APIRouter(tags=["health"], dependencies=[require_role(Role.PUBLIC)])


class ServiceInfo(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "service": "SignUp_Sync",
                    "version": "0.1.0",
                    "description": "Multi-source funnel tracking",
                    "docs": "/docs",
                    "openapi": "/openapi.json",
                    "health": "/health",
                }
            ]
        }
    )

    service: str
    version: str
    description: str
    docs: str
    openapi: str
    health: str


class DatabaseHealth(BaseModel):
    status: str = Field(description="ok, unavailable, or schema_behind")
    backend: str
    latency_ms: float | None = None
    schema_revision: str | None = Field(
        default=None, description="the database's migration revision (null: no tables yet)"
    )
    error: str | None = None


class Health(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "status": "healthy",
                    "service": "SignUp_Sync",
                    "version": "0.1.0",
                    "database": {"status": "ok", "backend": "postgresql", "latency_ms": 0.8},
                }
            ]
        }
    )

    status: str
    service: str
    version: str
    database: DatabaseHealth


@router.get("/", response_model=ServiceInfo, summary="Service info")
async def root() -> ServiceInfo:
    return ServiceInfo(
        service=SERVICE_NAME,
        version=__version__,
        description="Multi-source funnel tracking: leads, events, conversions, analytics",
        docs="/docs",
        openapi="/openapi.json",
        health="/health",
    )


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "no answer within the health-check timeout"
    # The exception class says enough; its text can carry hosts or user names.
    original = getattr(exc, "orig", None) or exc
    return f"cannot reach the database ({type(original).__name__})"


@router.get(
    "/health",
    response_model=Health,
    summary="Health check (database reachability and latency, schema up to date)",
    responses={
        503: {
            "model": Health,
            "description": "The database does not answer, or its schema is behind this code",
        }
    },
)
async def health(request: Request) -> Any:
    engine = request.app.state.engine
    settings = request.app.state.settings
    backend = engine.dialect.name

    def unhealthy(database: DatabaseHealth) -> JSONResponse:
        body = Health(
            status="unhealthy", service=SERVICE_NAME, version=__version__, database=database
        )
        return JSONResponse(status_code=503, content=body.model_dump())

    try:
        latency = await ping(engine, settings.health_timeout_seconds)
        async with asyncio.timeout(settings.health_timeout_seconds):
            schema = await schema_state(engine)
    except Exception as exc:  # any failure to answer is "unhealthy", never a 500
        return unhealthy(DatabaseHealth(status="unavailable", backend=backend, error=_reason(exc)))
    if schema.behind:
        # Requests would fail on missing tables or columns: not ready for traffic.
        return unhealthy(
            DatabaseHealth(
                status="schema_behind",
                backend=backend,
                latency_ms=latency,
                schema_revision=schema.current,
                error=schema.describe(),
            )
        )
    return Health(
        status="healthy",
        service=SERVICE_NAME,
        version=__version__,
        database=DatabaseHealth(
            status="ok", backend=backend, latency_ms=latency, schema_revision=schema.current
        ),
    )
