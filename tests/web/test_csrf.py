"""CSRF: every state-changing web route refuses a request without the token, or with a wrong one (403)."""

from __future__ import annotations

import re
from datetime import date

from fastapi.routing import APIRoute
from sqlalchemy import func, select
from sqlmodel import Session

from api.web.delegation import create_delegation
from api.web.routing import WebRoute
from engine.models import Case, Event, OutboxMessage, Person
from tests.support.builders import create_agreement, make_user
from tests.web.support import csrf_of, new_link, sign_in, web_client


def web_routes(routes: list) -> list[WebRoute]:  # type: ignore[type-arg]
    """Return every web route of an app, also inside included routers (FastAPI keeps them nested)."""
    found: list[WebRoute] = []
    for route in routes:
        if isinstance(route, WebRoute):
            found.append(route)
        elif hasattr(route, "original_router"):
            found += web_routes(route.original_router.routes)
    return found


def _state(ctx) -> tuple[int, ...]:
    with Session(ctx.db.engine) as session:
        return tuple(int(session.execute(select(func.count()).select_from(m)).scalar_one())
                     for m in (Case, Event, OutboxMessage))


def test_every_state_changing_web_route_needs_the_csrf_token(ctx) -> None:
    fx = create_agreement(ctx, parties=2)
    signer = fx.signatories[fx.keys[0]][0]
    colleague = make_user(ctx, org_key=fx.keys[0], name="Varahenkilö")  # a substitute is of the same organisation
    with Session(ctx.db.write_engine) as session:
        principal = session.get(Person, signer.id)
        delegation = create_delegation(session, principal=principal, substitute_email=colleague.person.email,
                                       starts_on=date(2026, 3, 2), ends_on=date(2026, 3, 31), note=None,
                                       today=date(2026, 3, 2), now=ctx.clock.now())
        session.commit()
        delegation_id = delegation.id
    client = web_client(ctx)
    with client:
        app = client.app
        routes = [r for r in web_routes(app.routes) if r.methods & {"POST", "PUT", "PATCH", "DELETE"}]
        assert len(routes) >= 14, [r.path for r in routes]
        sign_in(client, ctx, fx.coordinator.id)
        valid = csrf_of(client.get("/tasks").text)
        token = new_link(ctx, signer.id, fx.id + 1)
        values = {"agreement_id": str(fx.id), "token": token, "delegation_id": str(delegation_id),
                  "name": "agreement_party", "message_id": "1", "cycle_id": "1",
                  "person_id": str(signer.id)}  # the administrators' pages
        body = {"party": fx.keys[0], "outcome": "approved", "body": "Kunnanhallitus", "decided_on": "2026-03-02",
                "section": "58", "title": "X", "text": "# new", "lang": "sv", "email": signer.person.email,
                "password": "whatever-password"}
        before = _state(ctx)
        checked = []
        for route in routes:
            assert isinstance(route, APIRoute)
            path = route.path
            for name, value in values.items():
                path = path.replace("{" + name + "}", value)
            path = re.sub(r"\{[a-z_]+\}", "1", path)  # any other id: the token is checked before the id is read
            for method in sorted(route.methods & {"POST", "PUT", "PATCH", "DELETE"}):
                missing = client.request(method, path, data=body)
                wrong = client.request(method, path, data={**body, "csrf_token": valid[::-1]})
                assert missing.status_code == 403, (path, missing.status_code)
                assert wrong.status_code == 403, (path, wrong.status_code)
                checked.append(path)
        assert _state(ctx) == before  # nothing was created, fired or queued
        assert client.get(f"/link/{token}").status_code == 200  # nor was the link used
        assert client.get("/tasks").status_code == 200  # nor was anybody signed out
    assert {"/signout", "/language", f"/link/{token}", f"/agreements/{fx.id}/sign", "/agreements/new"} <= set(checked)
