"""Substitutes (varahenkilö) act only for a person of their own organisation, only inside their period, and what
they did says "on behalf of" in the hashed event, the API and the history."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select, text
from sqlmodel import Session, col

from api.context import AppContext
from api.web.delegation import check_delegated_acts, wire
from api.web.models import Delegation
from engine.audit import Scope
from engine.clock import ManualClock
from engine.models import Event
from tests.support.builders import AgreementFixture, User, create_agreement, make_user
from tests.web.support import csrf_of, sha_of, sign_in, web_client
from workflows.agreement.models import Decision, Signature


def counts(ctx: AppContext) -> list[int]:
    with Session(ctx.db.engine) as session:
        return [int(session.execute(select(func.count()).select_from(t)).scalar_one())
                for t in (Delegation, Decision, Signature, Event)]


def name_substitute(client: TestClient, ctx: AppContext, principal: User, email: str, starts_on: str,
                    ends_on: str) -> Any:
    sign_in(client, ctx, principal.id)
    page = client.get("/substitutes").text
    return client.post("/substitutes", data={"csrf_token": csrf_of(page), "substitute": email,
                                             "starts_on": starts_on, "ends_on": ends_on})


def decide_as(client: TestClient, ctx: AppContext, fx: AgreementFixture, key: str, substitute: User,
              principal: User) -> Any:
    sign_in(client, ctx, substitute.id)
    page = client.get("/tasks").text  # the agreement page offers no form to someone who may not act
    return client.post(f"/agreements/{fx.id}/decision", data={
        "csrf_token": csrf_of(page), "party": key, "outcome": "approved", "body": "Kunnanhallitus",
        "decided_on": "2026-03-02", "section": "12", "on_behalf_of": str(principal.id),
        "sha256": current_sha(ctx, fx)})


def current_sha(ctx: AppContext, fx: AgreementFixture) -> str:
    with Session(ctx.db.engine) as session:
        data = session.execute(text('SELECT data FROM "case" WHERE id = :id'), {"id": fx.id}).scalar_one()
    return str((json.loads(data) if isinstance(data, str) else data)["sha256"])


def test_naming_a_substitute_of_another_organisation_is_refused_in_the_persons_language(ctx: AppContext) -> None:
    fx = create_agreement(ctx, parties=2)
    principal = fx.signatories[fx.keys[0]][0]
    outsider = make_user(ctx, org_key=fx.keys[1], roles="", name="Ulkopuolinen Ukkonen", email="ulko@example.fi")
    before = counts(ctx)
    with web_client(ctx) as client:
        refused = name_substitute(client, ctx, principal, "ulko@example.fi", "2026-03-02", "2026-03-06")
        assert refused.status_code == 422
        assert "Varahenkilön on oltava oman organisaatiosi henkilö" in refused.text
        assert 'href="#substitute"' in refused.text and 'value="ulko@example.fi"' in refused.text
        with Session(ctx.db.engine) as session:
            session.execute(text("UPDATE person SET language = 'sv' WHERE id = :id"), {"id": principal.id})
            session.commit()
        in_swedish = name_substitute(client, ctx, principal, "ulko@example.fi", "2026-03-02", "2026-03-06")
        assert in_swedish.status_code == 422 and "Ersättaren måste höra till din egen organisation" in in_swedish.text
    assert counts(ctx) == before  # nothing written
    assert outsider.person.organisation_id != principal.person.organisation_id


def test_a_standing_delegation_to_another_organisation_lets_nobody_decide_for_it(ctx: AppContext) -> None:
    """A delegation to an outsider written before the rule (or straight into the table) is refused when used."""
    fx = create_agreement(ctx, parties=2)
    key = fx.keys[0]
    principal = fx.signatories[key][0]
    outsider = make_user(ctx, org_key=fx.keys[1], roles="", name="Ulkopuolinen Ukkonen")
    with Session(ctx.db.engine) as session:
        session.add(Delegation(principal_id=principal.id, substitute_id=outsider.id, starts_on=date(2026, 3, 1),
                               ends_on=date(2026, 3, 31), created_by=principal.id, created_at=ctx.clock.now()))
        session.commit()
    before = counts(ctx)
    with web_client(ctx) as client:
        sign_in(client, ctx, outsider.id)
        assert principal.person.name not in client.get("/tasks").text  # not offered as someone to act for
        refused = decide_as(client, ctx, fx, key, outsider, principal)
        assert refused.status_code == 403
        assert f"{principal.person.name} kuuluu eri organisaatioon kuin sinä" in refused.text
    assert counts(ctx) == before  # no decision, no event


def test_a_substitute_outside_the_period_is_refused_with_the_period_named(ctx: AppContext, clock: ManualClock) -> None:
    fx = create_agreement(ctx, parties=1)
    key = fx.keys[0]
    principal = fx.signatories[key][0]
    substitute = make_user(ctx, org_key=key, roles="", name="Sijainen Saarinen", email="sijainen@example.fi")
    with web_client(ctx) as client:
        assert name_substitute(client, ctx, principal, "sijainen@example.fi", "2026-03-04", "2026-03-05"
                               ).status_code == 303
        before = counts(ctx)
        early = decide_as(client, ctx, fx, key, substitute, principal)  # Monday 2.3.: the period starts Wednesday
        assert early.status_code == 403
        assert f"Toimit henkilön {principal.person.name} varahenkilönä vain 4.3.2026–5.3.2026, et tänään" in early.text
        assert counts(ctx) == before
        clock.advance(timedelta(days=4))  # Friday 6.3.: over
        late = decide_as(client, ctx, fx, key, substitute, principal)
        assert late.status_code == 403 and "vain 4.3.2026–5.3.2026" in late.text
        assert counts(ctx) == before
        clock.advance(timedelta(days=-2))  # Wednesday 4.3.: inside
        assert decide_as(client, ctx, fx, key, substitute, principal).status_code == 303
    assert counts(ctx)[1] == before[1] + 1


def test_on_behalf_of_is_in_the_hashed_event_the_api_and_the_history(ctx: AppContext) -> None:
    wire(ctx.registry)
    fx = create_agreement(ctx, parties=1)
    key = fx.keys[0]
    principal = fx.signatories[key][0]
    substitute = make_user(ctx, org_key=key, roles="", name="Sijainen Saarinen", email="sijainen@example.fi")
    with web_client(ctx) as client:
        named = name_substitute(client, ctx, principal, "sijainen@example.fi", "2026-03-02", "2026-03-06")
        assert named.status_code == 303, named.text
        assert decide_as(client, ctx, fx, key, substitute, principal).status_code == 303
        page = client.get(f"/agreements/{fx.id}").text
        signed = client.post(f"/agreements/{fx.id}/sign", data={
            "csrf_token": csrf_of(page), "party": key, "sha256": sha_of(page), "confirm": sha_of(page),
            "on_behalf_of": str(principal.id)})
        assert signed.status_code == 303
        with Session(ctx.db.engine) as session:
            delegation_id = session.execute(select(col(Delegation.id))).scalar_one()
            events = session.execute(select(Event).where(col(Event.actor_id) == substitute.id)
                                     .order_by(col(Event.id))).scalars().all()
        assert [e.trigger for e in events] == ["approve", "sign"]
        for e in events:  # inside the hashed payload, not only in a side table
            assert json.loads(e.payload)["on_behalf_of"] == {"person_id": principal.id, "delegation_id": delegation_id}

        api = client.get(f"/api/v1/agreements/{fx.id}", headers=fx.coordinator.headers).json()
        party = api["parties"][0]
        assert party["decision"]["recorded_by_person_id"] == substitute.id
        assert party["decision"]["on_behalf_of_person_id"] == principal.id
        assert party["decision"]["on_behalf_of_name"] == principal.person.name
        signature = party["signatures"][0]
        assert (signature["person_id"], signature["on_behalf_of_person_id"]) == (principal.id, substitute.id)
        assert signature["substitute_name"] == "Sijainen Saarinen"

        # the side table is only an index: with its rows gone the history still says it, and the audit says so
        with ctx.db.engine.begin() as conn:
            conn.execute(text("DELETE FROM delegated_act"))
            problems = list(check_delegated_acts(conn, Scope()))
        assert len(problems) == 2 and all("no record beside it" in p.problem for p in problems)
        sign_in(client, ctx, principal.id)
        history = client.get(f"/agreements/{fx.id}").text
        assert history.count(f"Sijainen Saarinen (varahenkilönä henkilölle {principal.person.name})") == 2
