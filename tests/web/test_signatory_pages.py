"""The signatory's pages: my tasks across agreements, the agreement page, recording a decision, signing."""

from __future__ import annotations

import re
from datetime import date, timedelta

from sqlalchemy import select
from sqlmodel import Session

from api.web.render import render_markdown
from tests.support.builders import create_agreement, make_user
from tests.web.support import csrf_of, sha_of, sign_in, web_client
from workflows.agreement.models import PartySignatory, Signature

DECISION = {"party": "", "outcome": "approved", "body": "Kunnanhallitus", "decided_on": "2.3.2026", "section": "§ 58",
            "minutes_url": "https://orivesi.fi/poytakirjat/58"}


def test_my_tasks_lists_every_open_case_of_my_organisation_soonest_first(ctx) -> None:
    first = create_agreement(ctx, parties=2, deadline=date(2026, 6, 19))
    key = first.keys[0]
    me = first.signatories[key][0]
    second = create_agreement(ctx, parties=1, deadline=date(2026, 4, 4), coordinator=first.coordinator)
    with Session(ctx.db.engine) as session:  # make me a listed signatory of the second one too
        session.add(PartySignatory(party_case_id=second.id + 1, person_id=me.id))
        session.commit()
    with web_client(ctx) as client:
        sign_in(client, ctx, me.id)
        page = client.get("/tasks").text
        assert page.index(f'href="/agreements/{second.id}"') < page.index(f'href="/agreements/{first.id}"')
        assert "Kirjaa toimielimen päätös" in page
        assert "ti 7.4.2026" in page  # 4.4.2026 is Easter Saturday: the deadline moves to Tuesday after Easter
        assert "Määräaika ylittynyt" not in page
        ctx.clock.advance(timedelta(days=37))
        sign_in(client, ctx, me.id)
        assert "Määräaika ylittynyt" in client.get("/tasks").text


def test_a_signatory_records_the_decision_and_signs_from_the_agreement_page(ctx) -> None:
    fx = create_agreement(ctx, parties=2, signatures=1)
    key = fx.keys[0]
    me = fx.signatories[key][0]
    with web_client(ctx) as client:
        sign_in(client, ctx, me.id, fx.id + 1)
        page = client.get(f"/agreements/{fx.id}").text
        assert "Pirkanmaan puitesopimus" in page and 'id="p1-body"' in page
        form = {**DECISION, "party": key, "csrf_token": csrf_of(page), "sha256": sha_of(page)}
        stale = client.post(f"/agreements/{fx.id}/decision", data={**form, "sha256": "0" * 64})
        assert stale.status_code == 409 and "Tekstiä on muokattu" in stale.text
        bad = client.post(f"/agreements/{fx.id}/decision", data={**form, "section": "viisi", "body": ""})
        assert bad.status_code == 422
        assert 'href="#p1-section"' in bad.text and 'href="#p1-body"' in bad.text  # the summary links to fields
        assert 'aria-invalid="true"' in bad.text and "Anna pykälä numerona" in bad.text
        ok = client.post(f"/agreements/{fx.id}/decision", data=form)
        assert ok.status_code == 303 and ok.headers["location"].endswith("notice=decided")
        page = client.get(ok.headers["location"]).text
        assert "Päätös on tallennettu" in page and "Kunnanhallitus 2.3.2026 § 58" in page
        sha = sha_of(page)
        stale = client.post(f"/agreements/{fx.id}/sign", data={"party": key, "sha256": "0" * 64, "confirm": "0" * 64,
                                                               "csrf_token": csrf_of(page)})
        assert stale.status_code == 409  # nobody signs a text they did not see
        signed = client.post(f"/agreements/{fx.id}/sign", data={"party": key, "sha256": sha, "confirm": sha,
                                                                "csrf_token": csrf_of(page)})
        assert signed.status_code == 303
        page = client.get(f"/agreements/{fx.id}").text
        assert "Hyväksytty ja allekirjoitettu" in page and "1/2 allekirjoittanut" in page
        assert "Allekirjoitukset valmiit" in page  # the history
    with Session(ctx.db.engine) as session:
        assert session.execute(select(Signature.person_id)).scalars().all() == [me.id]


def test_declining_needs_a_reason_and_asks_the_coordinator(ctx) -> None:
    fx = create_agreement(ctx, parties=2)
    key = fx.keys[1]
    me = fx.signatories[key][0]
    with web_client(ctx) as client:
        sign_in(client, ctx, me.id)
        page = client.get(f"/agreements/{fx.id}").text
        form = {**DECISION, "party": key, "csrf_token": csrf_of(page), "sha256": sha_of(page)}
        no_reason = client.post(f"/agreements/{fx.id}/decision", data={**form, "outcome": "declined"})
        assert no_reason.status_code == 422 and "Kerro hylkäyksen perustelu" in no_reason.text
        future = client.post(f"/agreements/{fx.id}/decision", data={**form, "decided_on": "2026-03-03"})
        assert future.status_code == 422 and "tulevaisuudessa" in future.text
        declined = client.post(f"/agreements/{fx.id}/decision", data={
            **form, "outcome": "declined", "note": "Kustannusjako ei ole hyväksyttävä."})
        assert declined.status_code == 303
        page = client.get(f"/agreements/{fx.id}").text
        assert "Neuvoteltava uudelleen" in page and "Hylätty: Kunnanhallitus 2.3.2026 § 58" in page


def test_another_organisation_sees_nothing_and_cannot_act(ctx) -> None:
    fx = create_agreement(ctx, parties=2)
    outsider = make_user(ctx, org_key="municipality:091")
    with web_client(ctx) as client:
        sign_in(client, ctx, outsider.id)
        page = client.get(f"/agreements/{fx.id}")
        assert page.status_code == 404
        r = client.post(f"/agreements/{fx.id}/decision",
                        data={**DECISION, "party": fx.keys[0], "csrf_token": csrf_of(page.text)})
        assert r.status_code == 404
        assert client.get(f"/cases/{fx.id + 1}").status_code == 404
        assert client.get("/agreements/abc").status_code == 404


def test_the_document_is_rendered_as_sanitised_markdown() -> None:
    html = str(render_markdown("# Otsikko\n\nTeksti <script>alert(1)</script> [x](javascript:alert(1)) "
                               "[y](https://example.fi) <img src=x onerror=alert(1)>\n\n"
                               "| a | b |\n|---|---|\n| 1 | 2 |"))
    assert "<h3>Otsikko</h3>" in html  # under the page's h1 and h2
    assert not re.search(r"<(script|img)\b", html) and 'href="javascript' not in html
    assert "&lt;script&gt;" in html  # shown as text, harmless
    assert 'href="https://example.fi"' in html and "noopener" in html and "<table>" in html
