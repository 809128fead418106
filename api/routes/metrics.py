"""`GET /metrics`: the service's Prometheus metrics, for an administrator or the configured scraper."""

from __future__ import annotations

import secrets

from fastapi import APIRouter, Request
from starlette.responses import Response

from api.deps import CtxDep, SessionDep, current_actor
from api.observability import metrics_text
from api.unit import UnitOfWorkRoute
from engine.errors import NotPermitted, Unauthenticated

router = APIRouter(tags=["operations"], route_class=UnitOfWorkRoute)

PROMETHEUS = "text/plain; version=0.0.4; charset=utf-8"


@router.get("/metrics", response_class=Response,
            responses={200: {"content": {PROMETHEUS: {}}, "description": "Prometheus text format"}})
def metrics(request: Request, session: SessionDep, ctx: CtxDep) -> Response:
    """Timers due and late, outbox depth, mail failed for good, webhook backlog: counted at the scrape."""
    header = request.headers.get("authorization", "")
    scraper = ctx.settings.metrics_token
    given = header[7:].strip() if header.lower().startswith("bearer ") else ""
    if not (scraper is not None and given and secrets.compare_digest(given, scraper.get_secret_value())):
        try:
            actor = current_actor(request, session, header or None)
        except Unauthenticated:
            raise Unauthenticated("the metrics need the scraper's token or an administrator's") from None
        if not actor.is_admin:
            raise NotPermitted("the metrics are for administrators and the configured scraper")
    return Response(metrics_text(session, ctx.clock.now()), media_type=PROMETHEUS)
