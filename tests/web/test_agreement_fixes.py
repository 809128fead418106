"""The fixes users reported on the agreement pages: one per report, each failing on the pages before the fix.

One date everywhere; a declining party's reason shown and mailed; earlier versions readable and compared; signing
confirmed against the version and hash; "remind now" pressed again says why nobody was reminded; an agreement in
force stays on the dashboard and its revise page is closed; error pages keep the navigation and what was typed.
"""

from __future__ import annotations

from datetime import date, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlmodel import Session, col

from api.app import create_app
from api.web.diff import compare
from engine.models import OutboxMessage
from tests.support.builders import create_agreement, make_user, render_mail
from tests.web.scenario import approve_and_sign
from tests.web.support import csrf_of, sha_of, sign_in, web_client
from workflows.agreement import service
from workflows.agreement.models import Signature
from workflows.agreement.schemas import DecisionIn, DocumentIn

DECISION = {"outcome": "approved", "body": "Kunnanhallitus", "decided_on": "2.3.2026", "section": "§ 58"}


def test_one_date_everywhere_the_effective_deadline_with_the_date_asked_beside_it(ctx) -> None:
    fx = create_agreement(ctx, parties=2, deadline=date(2026, 12, 19))  # a Saturday: in effect Monday 21.12.
    with web_client(ctx) as client:
        sign_in(client, ctx, fx.coordinator.id)
        for url in (f"/agreements/{fx.id}", "/tasks", "/dashboard"):
            page = client.get(url).text
            assert "ma 21.12.2026" in page and "pyydetty la 19.12.2026" in page, url
            assert page.count("la 19.12.2026") == page.count("pyydetty la 19.12.2026"), url  # never alone
        signer = fx.signatories[fx.keys[0]][0]
        sign_in(client, ctx, signer.id)
        assert "ma 21.12.2026" in client.get("/tasks").text
    api = TestClient(create_app(ctx=ctx))
    body = api.get(f"/api/v1/agreements/{fx.id}", headers=fx.coordinator.headers).json()
    assert (body["deadline"], body["effective_deadline"]) == ("2026-12-19", "2026-12-21")
    render_mail(ctx)
    with Session(ctx.db.engine) as session:
        mail = session.execute(select(OutboxMessage).where(col(OutboxMessage.template) == "agreement_circulated")
                               ).scalars().first()
    assert mail is not None and "ma 21.12.2026" in mail.text and "19.12.2026" not in mail.text


def test_a_declining_partys_reason_and_citation_reach_the_coordinator_on_the_page_and_by_mail(ctx) -> None:
    fx = create_agreement(ctx, parties=2)
    key = fx.keys[1]
    signer = fx.signatories[key][0]
    ctx.engine.run(lambda uow: service.decide(uow, fx.id, key, DecisionIn(
        outcome="declined", body="Kunnanhallitus", decided_on="2026-03-02", section="§ 58",
        note="Kustannusjako ei ole hyväksyttävä."), signer.actor))
    with web_client(ctx) as client:
        sign_in(client, ctx, fx.coordinator.id)
        page = client.get(f"/agreements/{fx.id}").text
        panel = page.split('id="coordinator-heading"')[1].split("</section>")[0]
        assert "Kunnanhallitus 2.3.2026 § 58" in panel
        assert "Perustelu: Kustannusjako ei ole hyväksyttävä." in " ".join(panel.split())
    render_mail(ctx)
    with Session(ctx.db.engine) as session:
        mail = session.execute(select(OutboxMessage).where(col(OutboxMessage.template) == "party_declined")
                               ).scalars().one()
    assert mail.person_id == fx.coordinator.id
    assert "Päätös: Kunnanhallitus 2.3.2026 § 58" in mail.text and "Päätös: Kunnanhallitus 2.3.2026 § 58" in mail.html
    assert "Perustelu: Kustannusjako ei ole hyväksyttävä." in mail.text


def test_earlier_versions_can_be_read_and_compared_with_the_current_one(ctx) -> None:
    fx = create_agreement(ctx, parties=2)
    with Session(ctx.db.engine) as session:
        from workflows.agreement.read import read_agreement

        first = read_agreement(session, fx.id).document
    second = first.replace("\n\n", "\n\nLisätty kappale yhteisestä seurannasta.\n\n", 1) + "\n"
    ctx.engine.run(lambda uow: service.revise(uow, fx.id, DocumentIn(text=second, note="Seuranta lisätty"),
                                              fx.coordinator.actor))
    signer = fx.signatories[fx.keys[0]][0]
    with web_client(ctx) as client:
        sign_in(client, ctx, signer.id)  # a party reads the versions too
        page = client.get(f"/agreements/{fx.id}").text
        assert f'href="/agreements/{fx.id}/versions"' in page
        assert "Versio 2" in page or "versio 2" in page.lower()
        assert "”Seuranta lisätty”" in page  # the revision note in the history
        versions = client.get(f"/agreements/{fx.id}/versions").text
        assert versions.count('<th scope="row">') == 2 and "Seuranta lisätty" in versions
        old = client.get(f"/agreements/{fx.id}/versions/1").text
        assert "Lisätty kappale" not in old and "Tämä ei ole nykyinen teksti" in old
        diff = client.get(f"/agreements/{fx.id}/versions/1/diff").text
        assert "<ins>Lisätty kappale yhteisestä seurannasta.</ins>" in diff
        assert "Lisättyjä rivejä 2, poistettuja rivejä 0." in diff and "<th scope=\"col\">Muutos</th>" in diff
        assert client.get(f"/agreements/{fx.id}/versions/9").status_code == 404
    outsider = make_user(ctx, org_key="municipality:091")  # Helsinki is no party of this agreement
    with web_client(ctx) as client:
        sign_in(client, ctx, outsider.id)
        assert client.get(f"/agreements/{fx.id}/versions/1/diff").status_code in (403, 404)


def test_the_comparison_marks_changed_words_and_folds_unchanged_runs() -> None:
    old = "\n".join(f"Rivi {i}" for i in range(1, 21)) + "\nKustannukset jaetaan asukasluvun mukaan."
    new = old.replace("asukasluvun", "palvelujen käytön")
    c = compare(old, new)
    assert (c.added, c.removed) == (1, 1)
    kinds = [r.kind for r in c.rows]
    assert kinds == ["folded", "same", "same", "same", "removed", "added"]
    assert c.rows[0].folded == 17
    assert [p.text for p in c.rows[-1].parts if p.changed] == ["palvelujen käytön"]
    assert [p.text for p in c.rows[-2].parts if p.changed] == ["asukasluvun"]
    assert compare("a\nb", "a\nb").same


def test_signing_asks_for_a_confirmation_naming_the_version_and_a_second_signature_is_still_missing(ctx) -> None:
    fx = create_agreement(ctx, parties=1, signatures=2)
    key = fx.keys[0]
    first, second = fx.signatories[key]
    ctx.engine.run(lambda uow: service.decide(uow, fx.id, key, DecisionIn(
        outcome="approved", body="Aluehallitus", decided_on="2026-03-02", section="§ 12"), first.actor))
    with web_client(ctx) as client:
        sign_in(client, ctx, first.id)
        page = client.get(f"/agreements/{fx.id}").text
        sha = sha_of(page)
        assert f"Olen lukenut version 1 (SHA-256 {sha[:12]}…) ja allekirjoitan juuri sen." in page
        unconfirmed = client.post(f"/agreements/{fx.id}/sign", data={"csrf_token": csrf_of(page), "party": key,
                                                                     "sha256": sha})
        assert unconfirmed.status_code == 422 and "Vahvista, että olet lukenut tämän version" in unconfirmed.text
        assert 'aria-invalid="true"' in unconfirmed.text
        other = client.post(f"/agreements/{fx.id}/sign", data={"csrf_token": csrf_of(page), "party": key,
                                                               "sha256": sha, "confirm": "0" * 64})
        assert other.status_code == 422  # a confirmation of some other text is none
        with Session(ctx.db.engine) as session:
            assert session.execute(select(func.count()).select_from(Signature)).scalar_one() == 0
        signed = client.post(f"/agreements/{fx.id}/sign", data={"csrf_token": csrf_of(page), "party": key,
                                                                "sha256": sha, "confirm": sha})
        assert signed.status_code == 303 and "notice=signed_partial&count=1" in signed.headers["location"]
        after = client.get(signed.headers["location"]).text
        assert "Allekirjoituksesi on tallennettu. Osapuolelta puuttuu vielä 1 allekirjoitus." in after
        assert "<strong>Osapuolelta puuttuu vielä 1 allekirjoitus.</strong>" in after  # stays on the page
        sign_in(client, ctx, second.id)
        page = client.get(f"/agreements/{fx.id}").text
        done = client.post(f"/agreements/{fx.id}/sign", data={"csrf_token": csrf_of(page), "party": key,
                                                              "sha256": sha, "confirm": sha})
        assert done.headers["location"].endswith("notice=signed")


def test_remind_now_pressed_again_says_why_nobody_was_reminded(ctx) -> None:
    fx = create_agreement(ctx, parties=2)
    with web_client(ctx) as client:
        sign_in(client, ctx, fx.coordinator.id)
        token = csrf_of(client.get(f"/agreements/{fx.id}").text)
        first = client.post(f"/agreements/{fx.id}/remind", data={"csrf_token": token})
        assert first.headers["location"].endswith("notice=reminded&count=2")
        ctx.clock.advance(timedelta(hours=3))
        sign_in(client, ctx, fx.coordinator.id)  # the web session has timed out meanwhile
        token = csrf_of(client.get(f"/agreements/{fx.id}").text)
        again = client.post(f"/agreements/{fx.id}/remind", data={"csrf_token": token})
        assert again.status_code == 303 and "notice=reminded_none&count=2&hours=24" in again.headers["location"]
        page = client.get(again.headers["location"]).text
        assert "Muistutusviestejä ei lähetetty: 2 vastaanottajaa on saanut muistutusviestin alle 24 tuntia sitten." \
            in page
        ctx.clock.advance(timedelta(hours=22))  # a day and an hour after the first: reminded again
        sign_in(client, ctx, fx.coordinator.id)
        token = csrf_of(client.get(f"/agreements/{fx.id}").text)
        later = client.post(f"/agreements/{fx.id}/remind", data={"csrf_token": token})
        assert later.headers["location"].endswith("notice=reminded&count=2")
    with Session(ctx.db.engine) as session:
        assert session.execute(select(func.count()).select_from(OutboxMessage).where(
            col(OutboxMessage.template) == "party_reminder")).scalar_one() == 4


def test_an_agreement_in_force_stays_on_the_dashboard_and_its_revise_page_is_closed(ctx) -> None:
    fx = create_agreement(ctx, parties=2)
    for key in fx.keys:
        approve_and_sign(ctx, fx, key)
    with web_client(ctx) as client:
        sign_in(client, ctx, fx.coordinator.id)
        dashboard = client.get("/dashboard").text
        in_force = dashboard.split('id="in-force-heading"')[1].split("</section>")[0]
        assert f'href="/agreements/{fx.id}"' in in_force and "Voimassa" in in_force
        assert f'href="/agreements/{fx.id}/review"' in in_force  # the next term's review, scheduled
        revise = client.get(f"/agreements/{fx.id}/revise")
        assert revise.status_code == 200
        assert "<textarea" not in revise.text and f'action="/agreements/{fx.id}/revise"' not in revise.text
        assert "Tekstiä ei voi muuttaa tällä sivulla" in revise.text
        assert f'href="/agreements/{fx.id}/review"' in revise.text
        posted = client.post(f"/agreements/{fx.id}/revise", data={"csrf_token": csrf_of(revise.text),
                                                                  "text": "# Uusi"})
        assert posted.status_code == 409


def test_an_error_page_keeps_the_navigation_and_what_the_person_typed(ctx) -> None:
    fx = create_agreement(ctx, parties=2)
    key = fx.keys[0]
    signer = fx.signatories[key][0]
    with web_client(ctx) as client:
        sign_in(client, ctx, signer.id)
        page = client.get(f"/agreements/{fx.id}").text
        ctx.engine.run(lambda uow: service.revise(uow, fx.id, DocumentIn(text="# Toinen versio"),
                                                  fx.coordinator.actor))
        reason = "Kunnanhallitus haluaa lisätä kustannusjaosta 4 §:n."
        stale = client.post(f"/agreements/{fx.id}/decision", data={
            **DECISION, "note": reason, "party": key, "csrf_token": csrf_of(page), "sha256": sha_of(page)})
        assert stale.status_code == 409
        assert '<nav aria-label="' in stale.text and 'href="/tasks"' in stale.text
        assert signer.person.name in stale.text  # signed in, and it shows
        assert reason in stale.text and ">Kunnanhallitus</textarea>" in stale.text
        assert sha_of(page) not in stale.text and csrf_of(page) not in stale.text.split("<main")[1]
        assert f'href="/agreements/{fx.id}"' in stale.text  # back to the form's page
