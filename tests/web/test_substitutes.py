"""Substitutes (varahenkilö): act for someone during a period; the history and the signature say so."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlmodel import Session

from api.web.models import DelegatedAct
from tests.support.builders import create_agreement, make_user
from tests.web.support import csrf_of, sha_of, sign_in, web_client
from workflows.agreement import service
from workflows.agreement.models import Signature
from workflows.agreement.schemas import DecisionIn


def test_a_substitute_signs_for_the_signatory_during_the_period_only(ctx) -> None:
    fx = create_agreement(ctx, parties=2)
    key = fx.keys[1]
    principal = fx.signatories[key][0]
    substitute = make_user(ctx, org_key=key, roles="", name="Varahenkilö Virtanen", email="vara@orivesi.fi")
    ctx.engine.run(lambda uow: service.decide(uow, fx.id, key, DecisionIn(
        outcome="approved", body="Kunnanhallitus", decided_on="2026-03-02", section="§ 58"), principal.actor))
    with web_client(ctx) as client:
        sign_in(client, ctx, principal.id)
        page = client.get("/substitutes").text
        bad = client.post("/substitutes", data={"csrf_token": csrf_of(page), "substitute": "nobody@example.fi",
                                                "starts_on": "2026-03-02", "ends_on": "2026-03-06"})
        assert bad.status_code == 422 and 'href="#substitute"' in bad.text
        added = client.post("/substitutes", data={"csrf_token": csrf_of(page), "substitute": "vara@orivesi.fi",
                                                  "starts_on": "2026-03-02", "ends_on": "2026-03-06"})
        assert added.status_code == 303
        assert "Varahenkilö Virtanen" in client.get("/substitutes").text

        sign_in(client, ctx, substitute.id)
        tasks = client.get("/tasks").text
        assert f'href="/agreements/{fx.id}"' in tasks and f"varahenkilönä: {principal.person.name}" in tasks
        page = client.get(f"/agreements/{fx.id}").text
        assert f"Allekirjoita puitesopimus henkilön {principal.person.name} puolesta" in page
        sha = sha_of(page)
        form = {"csrf_token": csrf_of(page), "party": key, "sha256": sha, "on_behalf_of": str(principal.id)}
        forged = client.post(f"/agreements/{fx.id}/sign", data={**form, "on_behalf_of": str(fx.coordinator.id)})
        assert forged.status_code == 403  # nobody named them substitute for the coordinator
        ctx.clock.advance(timedelta(days=5))  # Saturday 7.3.: the period is over
        sign_in(client, ctx, substitute.id)
        late = client.post(f"/agreements/{fx.id}/sign", data={**form, "csrf_token": csrf_of(client.get("/tasks").text)})
        assert late.status_code == 403
    with Session(ctx.db.engine) as session:
        assert session.execute(select(Signature)).scalars().all() == []


def test_the_history_names_the_substitute_and_whom_they_acted_for(ctx) -> None:
    fx = create_agreement(ctx, parties=1)
    key = fx.keys[0]
    principal = fx.signatories[key][0]
    substitute = make_user(ctx, org_key=key, roles="", name="Sijainen Saarinen")  # same organisation only
    with web_client(ctx) as client:
        sign_in(client, ctx, principal.id)
        page = client.get("/substitutes").text
        client.post("/substitutes", data={"csrf_token": csrf_of(page), "substitute": substitute.person.email,
                                          "starts_on": "2026-03-02", "ends_on": "2026-03-31"})
        sign_in(client, ctx, substitute.id)
        page = client.get(f"/agreements/{fx.id}").text
        r = client.post(f"/agreements/{fx.id}/decision", data={
            "csrf_token": csrf_of(page), "party": key, "outcome": "approved", "body": "Aluehallitus",
            "decided_on": "2026-03-02", "section": "12", "on_behalf_of": str(principal.id), "sha256": sha_of(page)})
        assert r.status_code == 303
        page = client.get(f"/agreements/{fx.id}").text
        sha = sha_of(page)
        r = client.post(f"/agreements/{fx.id}/sign", data={"csrf_token": csrf_of(page), "party": key,
                                                           "sha256": sha, "confirm": sha,
                                                           "on_behalf_of": str(principal.id)})
        assert r.status_code == 303
        page = client.get(f"/agreements/{fx.id}").text
        assert "Voimassa" in page  # the only party signed: the agreement is in force
        assert page.count(f"Sijainen Saarinen (varahenkilönä henkilölle {principal.person.name})") == 2
        assert f"{principal.person.name} (varahenkilö Sijainen Saarinen)" in page
    with Session(ctx.db.engine) as session:
        sig = session.execute(select(Signature)).scalars().one()
        assert (sig.person_id, sig.on_behalf_of_person_id) == (principal.id, substitute.id)
        acts = session.execute(select(DelegatedAct)).scalars().all()
        assert {(a.principal_id, a.substitute_id) for a in acts} == {(principal.id, substitute.id)}
        assert len(acts) == 2  # PartyApproved and PartySigned (one signature was required)
