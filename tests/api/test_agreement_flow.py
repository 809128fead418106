"""End to end through the REST API: a 25-party Pirkanmaa agreement from draft to in force."""

from __future__ import annotations

from fastapi.testclient import TestClient

from api.app import create_app
from tests.support.builders import create_agreement, decision, make_user


def test_agreement_enters_into_force_once_every_party_approved_and_signed(ctx) -> None:
    fx = create_agreement(ctx, parties=25, signatures=1)
    client = TestClient(create_app(ctx=ctx))
    with client:
        for i, key in enumerate(fx.keys):
            user = fx.signatories[key][0]
            r = client.post(f"/api/v1/agreements/{fx.id}/parties/{key}/decision", json=decision(),
                            headers=user.headers)
            assert r.status_code == 201, r.text
            r = client.post(f"/api/v1/agreements/{fx.id}/parties/{key}/signatures", headers=user.headers)
            assert r.status_code == 201, r.text
            expected = "in_force" if i == len(fx.keys) - 1 else "circulating"
            assert r.json()["agreement_state"] == expected
        body = client.get(f"/api/v1/agreements/{fx.id}", headers=fx.coordinator.headers).json()
        assert body["state"] == "in_force"
        assert body["in_force_sha256"] == body["document_sha256"]
        assert body["parties_signed"] == 25
        events = client.get(f"/api/v1/cases/{fx.id}/events", headers=fx.coordinator.headers).json()
        assert [e["name"] for e in events].count("AgreementEnteredIntoForce") == 1


def test_repeated_decision_and_signature_are_one(ctx) -> None:
    fx = create_agreement(ctx, parties=2, signatures=2)
    key = fx.keys[0]
    a, b = fx.signatories[key]
    client = TestClient(create_app(ctx=ctx))
    url = f"/api/v1/agreements/{fx.id}/parties/{key}"
    assert client.post(f"{url}/decision", json=decision(), headers=a.headers).status_code == 201
    again = client.post(f"{url}/decision", json=decision(), headers=a.headers)
    assert again.status_code == 200 and again.json()["created"] is False
    assert client.post(f"{url}/signatures", headers=a.headers).json()["party_state"] == "approved"
    repeat = client.post(f"{url}/signatures", headers=a.headers)
    assert repeat.status_code == 200 and repeat.json()["created"] is False
    assert client.post(f"{url}/signatures", headers=b.headers).json()["party_state"] == "signed"
    party = client.get(f"/api/v1/agreements/{fx.id}", headers=a.headers).json()["parties"][0]
    assert len(party["signatures"]) == 2


def test_signatory_cannot_act_for_another_party(ctx) -> None:
    fx = create_agreement(ctx, parties=2)
    mine, other = fx.keys
    client = TestClient(create_app(ctx=ctx))
    user = fx.signatories[mine][0]
    r = client.post(f"/api/v1/agreements/{fx.id}/parties/{other}/decision", json=decision(), headers=user.headers)
    assert r.status_code == 403, r.text
    assert r.json()["error"] == "NotPermitted"
    outsider = make_user(ctx, org_key="municipality:091")
    r = client.get(f"/api/v1/agreements/{fx.id}", headers=outsider.headers)
    assert r.status_code == 404
