"""Decision finality on the pages: the publication date on the decision form, the party row, the finality page.

Driven through a test client over the whole app (CSRF, sessions, the request's unit of work).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlmodel import Session

from tests.support.builders import create_agreement, make_user
from tests.web.support import csrf_of, sha_of, sign_in, web_client
from workflows.agreement.models import DecisionClaim


def _claims(ctx) -> int:  # type: ignore[no-untyped-def]
    with Session(ctx.db.engine) as session:
        return int(session.execute(select(func.count()).select_from(DecisionClaim)).scalar_one())


def test_the_decision_form_takes_the_publication_date_and_the_row_shows_finality(ctx) -> None:
    fx = create_agreement(ctx, parties=2)
    key = fx.keys[0]
    signer = fx.signatories[key][0]
    with web_client(ctx) as client:
        sign_in(client, ctx, signer.id)
        page = client.get(f"/agreements/{fx.id}").text
        form = {"csrf_token": csrf_of(page), "party": key, "outcome": "approved", "body": "Kunnanhallitus",
                "decided_on": "2.3.2026", "section": "58", "sha256": sha_of(page)}
        early = client.post(f"/agreements/{fx.id}/decision", data={**form, "published_on": "1.3.2026"})
        assert early.status_code == 422 and 'value="1.3.2026"' in early.text  # kept as typed
        assert "Päivä ei voi olla ennen päätöspäivää." in early.text and 'href="#p1-published_on"' in early.text
        r = client.post(f"/agreements/{fx.id}/decision", data={**form, "published_on": "2.3.2026"})
        assert r.status_code == 303, r.text
        page = client.get(f"/agreements/{fx.id}").text
        table = page.split('id="parties-heading"')[1]
        assert "Lainvoimaisuus" in table
        # notified 9.3, last day Mon 23.3, final Tue 24.3: today (2.3) it is not final yet
        assert "oikaisuvaatimusaika päättyy ma 23.3.2026; lainvoimainen ti 24.3.2026" in table
        ctx.clock.set(datetime(2026, 3, 24, 8, tzinfo=UTC))
        sign_in(client, ctx, signer.id)  # the session ended meanwhile
        later = client.get(f"/agreements/{fx.id}").text.split('id="parties-heading"')[1]
        assert "Lainvoimainen ti 24.3.2026" in later


def test_the_coordinator_records_a_claim_on_the_finality_page_in_swedish(ctx) -> None:
    coordinator = make_user(ctx, org_key="regional_council:06", roles="coordinator", language="sv")
    fx = create_agreement(ctx, parties=1, coordinator=coordinator)
    key = fx.keys[0]
    with web_client(ctx) as client:
        sign_in(client, ctx, fx.signatories[key][0].id)
        page = client.get(f"/agreements/{fx.id}").text
        client.post(f"/agreements/{fx.id}/decision", data={
            "csrf_token": csrf_of(page), "party": key, "outcome": "approved", "body": "Kunnanhallitus",
            "decided_on": "2.3.2026", "section": "58", "sha256": sha_of(page), "published_on": "2.3.2026"})
        # the party sees its finality, but no claim form: claims are the coordinator's to record
        own = client.get(f"/agreements/{fx.id}/finality").text
        assert 'action="/agreements/' + str(fx.id) + '/finality/claims"' not in own
        refused = client.post(f"/agreements/{fx.id}/finality/claims", data={
            "csrf_token": csrf_of(own), "party": key, "kind": "rectification", "claimant": "Matti",
            "filed_on": "2.3.2026"})
        assert refused.status_code == 403 and _claims(ctx) == 0
    with web_client(ctx) as client:
        sign_in(client, ctx, coordinator.id)
        page = client.get(f"/agreements/{fx.id}/finality").text
        assert "Besluten och laga kraft" in page and "Protokollets publiceringsdag" in page
        data = {"csrf_token": csrf_of(page), "party": key, "kind": "rectification", "claimant": "Maja Svensson",
                "filed_on": "1.3.2026", "reference": "KH/12/2026"}
        early = client.post(f"/agreements/{fx.id}/finality/claims", data=data)
        assert early.status_code == 422
        assert "Ett rättelseyrkande eller besvär kan inte ha kommit in före beslutsdagen." in early.text
        assert 'value="Maja Svensson"' in early.text and 'value="1.3.2026"' in early.text
        assert 'value="KH/12/2026"' in early.text and _claims(ctx) == 0
        ok = client.post(f"/agreements/{fx.id}/finality/claims", data={**data, "filed_on": "2.3.2026"})
        assert ok.status_code == 303, ok.text
        page = client.get(f"/agreements/{fx.id}/finality").text
        assert "Rättelseyrkande anhängigt" in page and "KH/12/2026" in page
        assert "/outcome" in page
        row = client.get(f"/agreements/{fx.id}").text.split('id="parties-heading"')[1]
        assert "Rättelseyrkande anhängigt" in row
        claim_id = page.split("/finality/claims/")[1].split("/outcome")[0]
        bad = client.post(f"/agreements/{fx.id}/finality/claims/{claim_id}/outcome", data={
            "csrf_token": csrf_of(page), "party": key, "outcome": "rejected", "outcome_on": "1.3.2026"})
        assert bad.status_code == 422 and 'value="1.3.2026"' in bad.text
        done = client.post(f"/agreements/{fx.id}/finality/claims/{claim_id}/outcome", data={
            "csrf_token": csrf_of(page), "party": key, "outcome": "rejected", "outcome_on": "2.3.2026"})
        assert done.status_code == 303
        page = client.get(f"/agreements/{fx.id}/finality").text
        assert "Avslaget" in page and "/outcome" not in page
