"""The nomination API: bad input gets 4xx naming the field or the deadline, never a 500."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi.testclient import TestClient

from api.app import create_app
from tests.support.builders import make_user
from tests.support.recurring import nomination_body, pair


def test_nomination_api_bad_input_and_flow(ctx) -> None:
    coord = make_user(ctx, org_key="association:kuntaliitto", roles="coordinator")
    director = make_user(ctx, org_key="regional_council:06")
    client = TestClient(create_app(ctx=ctx))
    h = coord.headers
    body = nomination_body(seats=1, asked={"organisations": ["regional_council:06", "regional_council:02"]})
    r = client.post("/api/v1/nominations", json={**body, "term_end": "2026-01-01"}, headers=h)
    assert r.status_code == 422 and "term_end must be after term_start" in r.json()["detail"]
    r = client.post("/api/v1/nominations", json={**body, "seats": []}, headers=h)
    assert r.status_code == 422 and r.json()["field"] == "seats"
    r = client.post("/api/v1/nominations", json=body, headers=h)
    assert r.status_code == 201, r.text
    nid = r.json()["id"]
    assert [p["organisation"] for p in r.json()["proposals"]] == ["regional_council:02", "regional_council:06"]

    url = f"/api/v1/nominations/{nid}/proposals/regional_council:06"
    r = client.put(url, json={"candidates": pair(1)[:1]}, headers=director.headers)
    assert r.status_code == 422 and r.json()["field"] == "candidates"
    assert r.json()["detail"].startswith("candidates: seat 1 member: no man proposed; seat 1 deputy: nobody proposed.")
    r = client.put(url, json={"candidates": pair(1) + pair(1, "deputy")}, headers=director.headers)
    # the asked council reads its own proposal only (the other council's is not shown before the decision)
    assert r.status_code == 200 and [p["organisation"] for p in r.json()["proposals"]] == ["regional_council:06"]
    assert r.json()["proposals"][0]["state"] == "proposed"
    ids = [c["id"] for c in r.json()["proposals"][0]["candidates"]]

    decision = {"meeting_date": "2026-03-02", "section": "§ 3", "seats": [{"seat": 1, "member": ids[0],
                                                                           "deputy": ids[3]}]}
    r = client.post(f"/api/v1/nominations/{nid}/decision", json=decision, headers=h)
    assert r.status_code == 409 and "proposals are not closed yet" in r.json()["detail"]

    ctx.clock.set(datetime(2026, 3, 21, 8, 0, tzinfo=UTC))
    r = client.put(url, json={"candidates": pair(1) + pair(1, "deputy")}, headers=director.headers)
    assert r.status_code == 409 and "proposals were due by Fri 20 Mar 2026" in r.json()["detail"]
    ctx.tick()
    bad = {**decision, "seats": [{"seat": 1, "member": 424242, "deputy": ids[3]}], "meeting_date": "2026-03-21"}
    r = client.post(f"/api/v1/nominations/{nid}/decision", json=bad, headers=h)
    assert r.status_code == 422 and r.json()["field"] == "seats[0].member"
    r = client.post(f"/api/v1/nominations/{nid}/decision", json={**decision, "meeting_date": "2026-03-21"},
                    headers=h)
    # one seat: a woman member and a man deputy leave each group at 0 % of one sex
    assert r.status_code == 422 and r.json()["field"] == "justification"
    r = client.post(f"/api/v1/nominations/{nid}/decision", headers=h, json={
        **decision, "meeting_date": "2026-03-21", "justification": "Yksi paikka: jäsen ja varajäsen eri sukupuolta."})
    assert r.status_code == 201, r.text
    shares = r.json()["decision"]["shares"]
    assert (shares["women_members_pct"], shares["men_deputies_pct"]) == (100.0, 100.0)
    r = client.post(f"/api/v1/cases/{nid}/triggers/communicate", headers=h)
    assert r.status_code == 200 and r.json()["state"] == "communicated"
    letter = client.get(f"/api/v1/nominations/{nid}/letter", headers=h)
    assert letter.status_code == 200 and "Maakuntajohtajakokous 21.3.2026 § 3" in letter.text
    # the letter is the requester's (it is copied to the nominees): an asked council reads the decision instead
    refused = client.get(f"/api/v1/nominations/{nid}/letter", headers=director.headers)
    assert refused.status_code == 403 and refused.json()["message_id"] == "nomination.error.letter_for_requester"
    assert client.get(f"/api/v1/nominations/{nid}", headers=director.headers).json()["decision"]["section"] == "§ 3"
    r = client.post(f"/api/v1/nominations/{nid}/replacements", json={"seat": 2, "effective_date": "2026-06-01",
                                                                     "candidate_id": ids[1]}, headers=h)
    assert r.status_code == 422 and r.json()["field"] == "seat"
    r = client.post(f"/api/v1/nominations/{nid}/cancel", json={"reason": "Ryhmä lakkautettiin"}, headers=h)
    assert r.status_code == 200 and r.json()["state"] == "cancelled"
