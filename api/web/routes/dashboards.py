"""Dashboards of coordinators and administrators, and the administrators' outbox with a retry button."""

from __future__ import annotations

from fastapi import Request
from starlette.responses import RedirectResponse, Response

from api.deps import SessionDep
from api.routes.schedule import retry_outbox
from api.web import board
from api.web.render import render
from api.web.routes.admin import require_admin
from api.web.routing import User, WebUser, today_of, web_router
from api.web.task_views import under_frameworks
from engine.errors import NotPermitted

router = web_router()


def require_coordinator(user: WebUser) -> None:
    """Refuse anyone but coordinators and administrators (403)."""
    if not user.coordinates:
        raise NotPermitted("this page is for coordinators and administrators")


@router.get("/dashboard")
def dashboard(request: Request, user: User, session: SessionDep, cycle: int | None = None) -> Response:
    """Show agreements in circulation, nominations under way and a cycle's measures by status."""
    require_coordinator(user)
    today = today_of(request)
    all_cycles = board.cycles(session)
    shown = board.current_cycle(all_cycles, cycle)
    measures = board.measures_by_status(session, shown[0]) if shown else {}
    registry = request.app.state.ctx.registry
    circulating, framework_of = under_frameworks(
        session, user.actor, board.circulating(session, registry, user.actor, today, user.lang))
    in_force, more = under_frameworks(session, user.actor, board.in_force(session, registry, user.actor))
    return render(request, "dashboard.html", user.lang, user=user, today=today,
                  agreements=circulating, in_force=in_force, framework_of={**framework_of, **more},
                  nominations=board.nominations(session, registry, user.actor), cycles=all_cycles, cycle=shown,
                  measures=measures, measure_overdue=board.measure_overdue,
                  names=board.responsible_names(session, {m.responsible for ms in measures.values() for m in ms},
                                                user.lang))


@router.get("/admin/outbox")
def outbox(request: Request, user: User, session: SessionDep, notice: str | None = None,
           message: int | None = None) -> Response:
    """List the messages that could not be delivered, with the reason, and offer to send each again."""
    require_admin(user)
    failed, counts = board.outbox_problems(session)
    return render(request, "outbox.html", user.lang, user=user, failed=failed, counts=counts,
                  notice="retried" if notice == "retried" else None, message=message)


@router.post("/admin/outbox/{message_id}/retry")
def retry(request: Request, message_id: int, user: User, session: SessionDep) -> Response:
    """Queue a failed or dead message again; the next delivery run sends it."""
    require_admin(user)
    retry_outbox(session, message_id, request.app.state.ctx, user.actor)
    return RedirectResponse(f"/admin/outbox?notice=retried&message={message_id}", status_code=303)
