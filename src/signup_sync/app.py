"""The FastAPI application, built by ``create_app(settings)``; nothing connects at import."""

from __future__ import annotations

import secrets
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from signup_sync import SERVICE_NAME, __version__
from signup_sync.api import analytics, dashboard, exports, funnel, imports, leads, meta, privacy
from signup_sync.api import metrics as metrics_api
from signup_sync.api import sources as sources_api
from signup_sync.api import sync as sync_api
from signup_sync.api import tracking as tracking_api
from signup_sync.api import webhooks as webhooks_api
from signup_sync.api.docs_ui import install_docs
from signup_sync.api.errors import install_error_handlers
from signup_sync.api.middleware import RequestContextMiddleware
from signup_sync.api.openapi import install_openapi
from signup_sync.api.query import reject_unknown_query
from signup_sync.api.ratelimit import make_limiter
from signup_sync.api.roles import Keyring
from signup_sync.api.tracking_browser import ApiCORSMiddleware, install_browser_tracking
from signup_sync.db.session import create_engine, create_session_factory
from signup_sync.logs import configure_logging, get_logger
from signup_sync.settings import Settings, load_settings
from signup_sync.sources.access import SourceAccess
from signup_sync.sync.lifecycle import sync_services
from signup_sync.tracking.config import tracking_config
from signup_sync.upgrade import upgrade as upgrade_schema
from signup_sync.webhooks.worker import WebhookWorker, WorkerOptions

log = get_logger("signup_sync.app")

TOKEN_ENV = "SIGNUP_SYNC_SERVICE_TOKEN"  # noqa: S105 - a variable name, not a secret


def generate_token() -> str:
    return secrets.token_hex(32)


def announce_generated_token(token: str) -> None:
    """Printed once on the console (never logged), like a notebook server's token."""
    print(
        f"\n  No {TOKEN_ENV} is set, so this run uses a generated token:\n\n"
        f"      {token}\n\n"
        f"  Send it as 'Authorization: Bearer <token>'. To use a fixed token, set\n"
        f"  {TOKEN_ENV} (several, comma-separated, are all valid);\n"
        "  `signup-sync token` makes one.\n",
        file=sys.stderr,
        flush=True,
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; the engine is made and migrations run in its lifespan."""
    settings = settings or load_settings()
    configure_logging(settings.log_level, settings.log_format)
    tokens = list(settings.service_tokens)
    if not tokens:
        tokens = [generate_token()]
        announce_generated_token(tokens[0])

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings)
        if settings.should_auto_migrate:
            await upgrade_schema(engine)
        app.state.engine = engine
        app.state.session_factory = create_session_factory(engine)
        log.info("started", database=engine.dialect.name, version=__version__)
        try:
            # Background syncs (202) and the scheduler; stopped before the engine goes.
            async with sync_services(settings, app.state.session_factory) as sync:
                app.state.sync = sync
                worker = None
                if settings.webhook_worker_enabled:
                    worker = WebhookWorker(
                        app.state.session_factory, WorkerOptions.from_settings(settings)
                    )
                    worker.start()
                app.state.webhook_worker = worker
                try:
                    yield
                finally:
                    if worker is not None:
                        await worker.stop()
        finally:
            await engine.dispose()

    app = FastAPI(
        title=SERVICE_NAME,
        version=__version__,
        description=(
            "Multi-source funnel tracking: pulls people from EasyAppointments, Zoom, "
            "Eventbrite and Posh.VIP, accepts funnel events, stitches one lead per person, "
            "records conversions with attribution and serves funnel analytics. Every endpoint "
            "except `GET /`, `GET /health`, the `/v1` tracking API (write keys) and the "
            "`/webhooks/{type}` receivers (which authenticate each sender) needs "
            "`Authorization: Bearer <token>` with the role the operation names in "
            "`x-required-role`: `read`, `ingest`, `full` or `metrics` (docs/security.md)."
        ),
        lifespan=lifespan,
        # Served by install_docs from local assets (FastAPI's defaults load them from a CDN).
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.keyring = Keyring.from_settings(settings, tokens)
    app.state.tokens = list(app.state.keyring.full)
    app.state.source_access = SourceAccess.from_settings(settings)
    app.state.ingest_limiter = make_limiter(
        settings.ingest_rate_limit_per_second, settings.ingest_rate_limit_burst
    )
    app.state.tracking = tracking_config(
        settings.segment_write_keys,
        settings.segment_event_map,
        settings.cors_origins,
        settings.tracking_keep_user_agent,
    )
    install_error_handlers(app)
    install_openapi(app)
    install_docs(app)
    tracking_api.install_tracking_docs(app)
    webhooks_api.install_webhook_docs(app)
    install_browser_tracking(app, settings)
    if settings.cors_origins:
        app.add_middleware(
            ApiCORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PATCH", "DELETE", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "X-Request-ID"],
            expose_headers=["X-Request-ID"],
        )
    app.add_middleware(RequestContextMiddleware, max_body_bytes=settings.max_body_bytes)
    # Listings name an unknown query parameter instead of ignoring it (a typo'd filter).
    listing = [Depends(reject_unknown_query)]
    app.include_router(meta.router)
    app.include_router(funnel.router)
    app.include_router(analytics.router, dependencies=listing)
    app.include_router(imports.router)
    app.include_router(leads.router, dependencies=listing)
    app.include_router(exports.router, dependencies=listing)
    app.include_router(dashboard.router)
    app.include_router(sources_api.router, dependencies=listing)
    app.include_router(sync_api.router, dependencies=listing)
    app.include_router(webhooks_api.inbox)
    app.include_router(webhooks_api.router)
    app.include_router(privacy.router)
    app.include_router(metrics_api.router)
    app.include_router(tracking_api.router)
    app.include_router(tracking_api.stats_router, dependencies=listing)
    return app
