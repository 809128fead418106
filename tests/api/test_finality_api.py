"""Decision finality through the REST API: the dates in the read, claims, refusals in the caller's language."""

from __future__ import annotations

from fastapi.testclient import TestClient
from pydantic import TypeAdapter
from sqlmodel import Session

from api.app import create_app
from tests.support.builders import create_agreement, decision, make_user
from workflows.agreement.read import agreement_json, read_agreement
from workflows.agreement.schemas import AgreementRead


def test_the_read_shows_the_dates_and_a_claim_flags_the_party(ctx) -> None:
    coordinator = make_user(ctx, org_key="regional_council:06", roles="coordinator")
    fx = create_agreement(ctx, parties=2, coordinator=coordinator)
    key = fx.keys[0]
    signer = fx.signatories[key][0]
    client = TestClient(create_app(ctx=ctx))
    url = f"/api/v1/agreements/{fx.id}/parties/{key}"
    r = client.post(f"{url}/decision", json=decision(published_on="2026-03-02"), headers=signer.headers)
    assert r.status_code == 201, r.text
    assert r.json()["decision"]["claim_deadline"] == "2026-03-23"
    party = client.get(f"/api/v1/agreements/{fx.id}", headers=signer.headers).json()["parties"][0]
    d = party["decision"]
    assert (d["published_on"], d["notified_on"], d["claim_deadline"], d["final_on"], d["finality"]) == (
        "2026-03-02", "2026-03-09", "2026-03-23", "2026-03-24", "counting")
    # the party itself may not record claims against its decision: the coordinator does
    claim = {"kind": "rectification", "claimant": "Matti Meikäläinen", "filed_on": "2026-03-02",
             "reference": "KH/12/2026"}
    assert client.post(f"{url}/claims", json=claim, headers=signer.headers).status_code == 403
    r = client.post(f"{url}/claims", json=claim, headers=coordinator.headers)
    assert r.status_code == 201, r.text
    claim_id = r.json()["id"]
    party = client.get(f"/api/v1/agreements/{fx.id}", headers=signer.headers).json()["parties"][0]
    assert party["state"] == "contested" and party["decision"]["finality"] == "contested"
    assert party["decision"]["final_on"] is None
    assert party["decision"]["claims"][0]["reference"] == "KH/12/2026"
    with Session(ctx.db.engine) as session:  # the GET's fast JSON carries the dates and claims as the model does
        assert agreement_json(session, fx.id) == TypeAdapter(AgreementRead).dump_json(read_agreement(session, fx.id))
    r = client.post(f"{url}/claims/{claim_id}/outcome", json={"outcome": "rejected", "outcome_on": "2026-03-02"},
                    headers=coordinator.headers)
    assert r.status_code == 200 and r.json()["outcome"] == "rejected"
    party = client.get(f"/api/v1/agreements/{fx.id}", headers=signer.headers).json()["parties"][0]
    assert party["state"] == "approved" and party["decision"]["final_on"] == "2026-03-24"


def test_a_claim_dated_before_the_decision_is_refused_in_the_callers_language(ctx) -> None:
    coordinator = make_user(ctx, org_key="regional_council:06", roles="coordinator", language="sv")
    fx = create_agreement(ctx, parties=1, coordinator=coordinator)
    key = fx.keys[0]
    client = TestClient(create_app(ctx=ctx))
    url = f"/api/v1/agreements/{fx.id}/parties/{key}"
    assert client.post(f"{url}/decision", json=decision(), headers=fx.signatories[key][0].headers).status_code == 201
    claim = {"kind": "rectification", "claimant": "Maja Svensson", "filed_on": "2026-02-27"}
    r = client.post(f"{url}/claims", json=claim, headers={**coordinator.headers, "Accept-Language": "sv"})
    assert r.status_code == 422, r.text
    body = r.json()
    assert body.get("field") == "filed_on" and body["message_id"] == "claim.error.before_decision"
    assert "filed_on" in body["message"] and "beslutsdagen" in body["message"]
    fi = client.post(f"{url}/claims", json=claim, headers={**coordinator.headers, "Accept-Language": "fi"}).json()
    assert "filed_on" in fi["message"] and "päätöspäivää" in fi["message"]
    late = client.put(f"{url}/decision/publication", json={"published_on": "2026-02-01"},
                      headers={**coordinator.headers, "Accept-Language": "en"})
    assert late.status_code == 422 and "published_on" in late.json()["message"]
    assert client.get(f"/api/v1/agreements/{fx.id}", headers=coordinator.headers).json()["parties"][0][
        "decision"]["claims"] == []
