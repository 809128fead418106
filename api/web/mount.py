"""Wiring the web interface into the FastAPI app: routers, static files, session middleware, listener."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from api.web import delegation
from api.web.config import WebConfig
from api.web.i18n import CATALOGUE, LANGUAGES
from api.web.render import STATIC_DIR, warm_templates
from api.web.routes import (
    admin,
    admin_oidc,
    agreements,
    check,
    clock,
    coordinator,
    cycle_plan,
    cycle_reports,
    cycles,
    dashboards,
    email_templates,
    finality,
    nominations,
    oidc,
    passwords,
    people,
    reviews,
    signin,
    simulation,
    substitutes,
    survey,
    task_agreements,
    tasks,
    versions,
)
from api.web.sessions import WebSessionMiddleware
from engine.calendar import warm_calendar

if TYPE_CHECKING:
    from api.context import AppContext

def mount_web(app: FastAPI, ctx: AppContext, config: WebConfig | None = None) -> None:
    """Add the pages, the static files and the session middleware to an app."""
    config = config or WebConfig.from_settings(ctx.settings)
    app.state.web_config = config
    delegation.wire(ctx.registry)
    # coordinator first: /agreements/new must win over /agreements/{agreement_id}
    for module in (signin, passwords, oidc, check, tasks, coordinator, agreements, reviews, versions, substitutes):
        app.include_router(module.router)
    app.include_router(task_agreements.router)  # task-specific agreements on a framework agreement
    app.include_router(finality.router)  # decision finality: publication dates, claims for rectification
    # then administration, dashboards, the annual clock, the nomination and cycle forms, the survey
    for module in (admin, admin_oidc, people, simulation, email_templates, dashboards, clock, nominations, cycles,
                   cycle_plan, cycle_reports, survey):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    warm_templates()  # compiled at start-up: the first page after a start is as fast as later ones
    warm_calendar(ctx.clock.now().date())  # and the holiday tables loaded (the first deadline shown imports them)
    for lang in LANGUAGES:  # and the page catalogues read (a missing .mo is compiled from the .po here)
        CATALOGUE.translations(lang)
    app.add_middleware(WebSessionMiddleware, ctx=ctx, config=config)
