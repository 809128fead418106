"""The FastAPI application factory."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from api import __version__
from api.admin_state import load_admin_state
from api.context import AppContext, build_context
from api.deps import current_actor
from api.errors import install_error_handlers
from api.limits import RequestLimits
from api.logscrub import install as scrub_secrets_from_logs
from api.observability import RequestIdMiddleware, configure_logging
from api.openapi import client_friendly, operation_id
from api.readcache import AgreementReads
from api.routes import (
    admin,
    agreements,
    calendar,
    cases,
    check,
    cycles,
    directory,
    finality,
    metrics,
    nominations,
    oidc_providers,
    registers,
    reviews,
    schedule,
    task_agreements,
    webhooks,
    workflows,
)
from api.warmup import warm_up
from api.web.config import WebConfig
from api.web.mount import mount_web
from engine.directory import ensure_admin
from engine.settings import Settings, get_settings

log = logging.getLogger("vuosikello.api")



def _build_routes(routes: list[Any]) -> int:
    """Have FastAPI build each route's request handling now instead of at its first request; return the routers.

    FastAPI (0.16x) builds an included router's routes (their pydantic field models) the first time a request is
    matched against them: in a fresh process the first API request took 0.4-1.2 s, most of it there. The hook is
    FastAPI's own `effective_candidates`, looked up by name: should a later FastAPI drop it, nothing is built
    early and nothing breaks.
    """
    built = 0
    for route in routes:
        candidates = getattr(route, "effective_candidates", None)
        if callable(candidates):
            built += 1 + _build_routes(candidates())
    return built


def create_app(settings: Settings | None = None, *, ctx: AppContext | None = None,
               web: WebConfig | None = None) -> FastAPI:
    """Build the service: REST API under /api/v1, OpenAPI at /docs, the web pages at /."""
    settings = settings or (ctx.settings if ctx else get_settings())
    ctx = ctx or build_context(settings)
    scrub_secrets_from_logs()  # link tokens and feed secrets are in paths: never in the access log

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.admin_token:
            token = settings.admin_token
            ctx.engine.run(lambda uow: ensure_admin(uow.session, token, uow.now))
        if settings.scheduler_enabled and ctx.scheduler is None:
            ctx.start_scheduler()  # SQLite: refuses (SchedulerLocked) when another process serves the file
        await warm_up(app)  # the first request after a start then costs what later ones do
        try:
            yield
        finally:
            if ctx.scheduler is not None:
                ctx.scheduler.shutdown()
                ctx.scheduler = None

    # /docs and /redoc with Swagger UI and ReDoc served from the fastapi-offline package, not a CDN: the service
    # runs where only the intranet answers
    app = FastAPIOffline(title="Vuosikello", version=__version__, lifespan=lifespan, static_url="/docs-static",
                         generate_unique_id_function=operation_id,
                         description="Workflow and case management for cooperation between Finnish public bodies.")
    app.state.ctx = ctx
    app.state.agreement_reads = AgreementReads(ctx.db.engine.dialect, settings.secret_key)
    install_error_handlers(app)
    load_admin_state(ctx)
    # the agreements first: every request is matched against the routes in this order, and the directory's
    # routes have no common prefix to skip them by (the paths do not overlap, so the order decides nothing else)
    for module in (agreements, directory, workflows, cases, schedule, nominations, cycles, registers, reviews,
                   calendar, admin, webhooks, oidc_providers, check):
        app.include_router(module.router, prefix="/api/v1")
    app.include_router(task_agreements.router, prefix="/api/v1")  # task-specific agreements
    app.include_router(finality.router, prefix="/api/v1")  # decision finality: publication dates, claims
    app.include_router(schedule.pages)
    app.include_router(metrics.router)
    client_friendly(app, current_actor)  # operation ids, the bearer scheme, each route's own error responses
    mount_web(app, ctx, web)
    # outermost: a body over the limit is refused before the session, the CSRF form parse or FastAPI reads it
    app.add_middleware(RequestLimits, max_body_bytes=settings.max_request_bytes,
                       max_json_depth=settings.max_json_depth)
    app.add_middleware(RequestIdMiddleware)  # outside the limits too: a refused request has an id as well
    configure_logging(settings.log_format)
    app.state.mail_templates = Environment(loader=FileSystemLoader(str(Path(__file__).parent / "templates")),
                                           autoescape=select_autoescape(default=True))

    @app.get("/healthz", tags=["service"])
    def healthz() -> dict[str, str]:
        """Tell that the service runs."""
        return {"status": "ok"}

    @app.get("/health/ready", tags=["service"], responses={503: {"description": "the database does not answer"}})
    def ready() -> JSONResponse:
        """Tell whether the service can serve: the database answers a query (503 when it does not)."""
        try:
            with ctx.db.engine.connect() as conn:
                conn.execute(text("SELECT 1")).scalar_one()
        except SQLAlchemyError as exc:
            log.warning("readiness: the database does not answer: %s", type(exc).__name__)
            return JSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503,
                                headers={"Retry-After": "5"})
        return JSONResponse({"status": "ok", "database": "ok"})

    _build_routes(app.router.routes)  # the first request after a start is then as fast as later ones
    return app
