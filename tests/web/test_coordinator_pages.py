"""The coordinator's pages: create from the form, circulate, revise and see who decides again, remind now."""

from __future__ import annotations

from sqlalchemy import select
from sqlmodel import Session

from engine.models import Case, OutboxMessage
from tests.support.builders import create_agreement, make_user
from tests.web.support import csrf_of, sign_in, web_client
from workflows.agreement import service
from workflows.agreement.schemas import DecisionIn


def test_a_coordinator_creates_an_agreement_from_the_form_and_circulates_it(ctx) -> None:
    coordinator = make_user(ctx, org_key="regional_council:06", roles="coordinator")
    for key in ("municipality:837", "municipality:536"):
        make_user(ctx, org_key=key)
    with web_client(ctx) as client:
        sign_in(client, ctx, coordinator.id)
        page = client.get("/agreements/new").text
        token = csrf_of(page)
        form = {"csrf_token": token, "title": "Tampereen seudun puitesopimus", "deadline": "2026-05-29",
                "document": "# Sopimus\n\nSovitaan yhteistyöstä.", "required_signatures": "1",
                "parties": "municipality:837\nNokia\nmunicipality:999999", "action": "create"}
        bad = client.post("/agreements/new", data=form)
        assert bad.status_code == 422 and "Rivi 3" in bad.text and 'href="#parties"' in bad.text
        region = client.post("/agreements/new", data={"csrf_token": token, "region": "06", "action": "add_region"})
        assert region.status_code == 200
        filled = region.text.split('id="parties"')[1].split(">", 1)[1].split("</textarea>")[0].split()
        assert filled[0] == "wellbeing_county:08" and filled[-1] == "regional_council:06" and len(filled) == 25
        created = client.post("/agreements/new", data={**form, "parties": "municipality:837\nNokia"})
        assert created.status_code == 303
        agreement_id = int(created.headers["location"].split("/")[2].split("?")[0])
        page = client.get(created.headers["location"]).text
        assert "Luonnos" in page and "Puitesopimus on luotu luonnoksena" in page and "Nokia" in page
        version = page.split('name="version" value="')[1].split('"')[0]
        circulated = client.post(f"/agreements/{agreement_id}/circulate",
                                 data={"csrf_token": csrf_of(page), "version": version})
        assert circulated.status_code == 303
        assert "Hyväksyttävänä" in client.get(f"/agreements/{agreement_id}").text
        again = client.post(f"/agreements/{agreement_id}/circulate",
                            data={"csrf_token": csrf_of(page), "version": version})
        assert again.status_code == 409  # already circulating: the page says so, nothing changes
    with Session(ctx.db.engine) as session:
        assert session.get(Case, agreement_id).state == "circulating"


def test_revising_shows_who_must_decide_again_and_asks_them(ctx) -> None:
    fx = create_agreement(ctx, parties=3)
    decided = fx.keys[0]
    signer = fx.signatories[decided][0]
    ctx.engine.run(lambda uow: service.decide(uow, fx.id, decided, DecisionIn(
        outcome="approved", body="Aluehallitus", decided_on="2026-03-02", section="§ 12"), signer.actor))
    with web_client(ctx) as client:
        sign_in(client, ctx, fx.coordinator.id)
        page = client.get(f"/agreements/{fx.id}/revise").text
        must_again = page.split('id="again-heading"')[1].split("</section>")[0]
        assert "Pirkanmaan hyvinvointialue" in must_again and "2 osapuolta" in page
        same = client.post(f"/agreements/{fx.id}/revise",
                           data={"csrf_token": csrf_of(page), "text": fx_text(ctx, fx.id)})
        assert same.status_code == 422 and "sama kuin nykyinen" in same.text
        r = client.post(f"/agreements/{fx.id}/revise", data={
            "csrf_token": csrf_of(page), "text": "# Pirkanmaan puitesopimus\n\nUusi 3 §.", "note": "3 § lisätty"})
        assert r.status_code == 303
        after = client.get(f"/agreements/{fx.id}").text
        assert "Tekstin versio</dt><dd>2" in after and "0/3 hyväksynyt" in after
        assert "Uusi 3 §." in after


def fx_text(ctx, agreement_id: int) -> str:
    from workflows.agreement.read import read_agreement

    with Session(ctx.db.engine) as session:
        return read_agreement(session, agreement_id).document


def test_send_a_reminder_now_to_pending_parties_and_see_who_is_overdue(ctx) -> None:
    fx = create_agreement(ctx, parties=3)
    done = fx.keys[0]
    signer = fx.signatories[done][0]
    ctx.engine.run(lambda uow: service.decide(uow, fx.id, done, DecisionIn(
        outcome="approved", body="Aluehallitus", decided_on="2026-03-02", section="§ 12"), signer.actor))
    ctx.engine.run(lambda uow: service.sign(uow, fx.id, done, signer.actor))
    with web_client(ctx) as client:
        sign_in(client, ctx, fx.coordinator.id)
        page = client.get(f"/agreements/{fx.id}").text
        assert "Ei määräajan ylittäneitä" in page
        r = client.post(f"/agreements/{fx.id}/remind", data={"csrf_token": csrf_of(page)})
        assert r.status_code == 303 and r.headers["location"].endswith("notice=reminded&count=2")
        with Session(ctx.db.engine) as session:
            sent = session.execute(select(OutboxMessage).where(
                OutboxMessage.dedupe_key.startswith("manual-reminder:"))).scalars().all()
        assert sorted(m.to_address for m in sent) == sorted(
            fx.signatories[k][0].person.email for k in fx.keys[1:])
        assert all("/link/" in m.text for m in sent)
        signatory = make_user(ctx, org_key=fx.keys[1])
        sign_in(client, ctx, signatory.id)
        refused = client.post(f"/agreements/{fx.id}/remind", data={"csrf_token": csrf_of(client.get("/tasks").text)})
        assert refused.status_code == 403
