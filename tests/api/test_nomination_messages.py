"""The nomination API's refusals carry message ids: the same field and English detail as before, and a sentence
in the caller's language (fi, sv, en) naming the seats, shares or dates."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi.testclient import TestClient

from api.app import create_app
from tests.support.builders import make_user
from tests.support.recurring import nomination_body, pair


def test_nomination_refusals_speak_the_callers_language(ctx) -> None:
    coord = make_user(ctx, org_key="association:kuntaliitto", roles="coordinator")
    director = make_user(ctx, org_key="regional_council:06")
    client = TestClient(create_app(ctx=ctx))
    body = nomination_body(seats=2, asked={"organisations": ["regional_council:06"]})
    nid = client.post("/api/v1/nominations", json=body, headers=coord.headers).json()["id"]
    url = f"/api/v1/nominations/{nid}/proposals/regional_council:06"
    sv = {**director.headers, "Accept-Language": "sv"}
    r = client.put(url, json={"candidates": pair(1) + pair(1, "deputy") + pair(2)[:1]}, headers=sv)
    body = r.json()
    assert r.status_code == 422 and body["field"] == "candidates" and body["message_id"] == "nomination.error.pairs"
    assert body["detail"].startswith("candidates: seat 2 member: no man proposed; seat 2 deputy: nobody proposed.")
    assert "För platserna 2 ska både en kvinna och en man föreslås" in body["message"]
    r = client.put(url, json={"candidates": [{**pair(3)[0]}]}, headers={**director.headers, "Accept-Language": "fi"})
    assert r.status_code == 422 and r.json()["field"] == "candidates[0].seat"
    assert r.json()["message"] == "Paikkaa 3 ei ole; paikat ovat 1–2."
    ok = client.put(url, json={"candidates": pair(1) + pair(1, "deputy") + pair(2) + pair(2, "deputy")},
                    headers=director.headers)
    ids = [c["id"] for c in ok.json()["proposals"][0]["candidates"]]
    ctx.clock.set(datetime(2026, 3, 21, 8, 0, tzinfo=UTC))
    ctx.tick()
    all_women = {"meeting_date": "2026-03-21", "section": "§ 3",
                 "seats": [{"seat": 1, "member": ids[0], "deputy": ids[2]}, {"seat": 2, "member": ids[4],
                                                                             "deputy": ids[6]}]}
    r = client.post(f"/api/v1/nominations/{nid}/decision", json=all_women,
                    headers={**coord.headers, "Accept-Language": "en"})
    assert r.status_code == 422 and r.json()["field"] == "justification"
    assert r.json()["detail"].startswith("justification: men are 0 % of the members (0 of 2)")
    assert r.json()["message"].startswith("Of the members 100 % are women and 0 % men; of the deputy members "
                                          "100 % women and 0 % men.")
    future = {**all_women, "meeting_date": "2026-03-25", "justification": "x"}
    r = client.post(f"/api/v1/nominations/{nid}/decision", json=future, headers=coord.headers)
    assert r.status_code == 422 and r.json()["message"] == "Kokouksen päivämäärä 25.3.2026 on tulevaisuudessa."
