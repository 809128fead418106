"""The annual cycle and register API: permissions, bad input naming the field, the report as HTML and PDF."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi.testclient import TestClient

from api.app import create_app
from tests.support.builders import make_user
from tests.support.pdf import pdf_text


def test_cycle_api(ctx) -> None:
    admin = make_user(ctx, roles="admin")
    coord = make_user(ctx, org_key="association:kuntaliitto", roles="coordinator")
    director = make_user(ctx, org_key="regional_council:06")
    client = TestClient(create_app(ctx=ctx))
    r = client.put("/api/v1/cycles/schedule", json={"survey_closes": {"month": 2, "day": 30}}, headers=admin.headers)
    assert r.status_code == 422 and r.json()["field"] == "survey_closes" and "is not a date" in r.json()["detail"]
    r = client.put("/api/v1/cycles/schedule", json={"coordinator_id": coord.id}, headers=director.headers)
    assert r.status_code == 403
    r = client.put("/api/v1/cycles/schedule", json={"coordinator_id": coord.id}, headers=admin.headers)
    assert r.status_code == 200 and r.json()["next_year"] == 2027 and r.json()["next_creation"] == "2026-09-01"

    assert client.post("/api/v1/cycles", json={"year": 2026}, headers=director.headers).status_code == 403
    r = client.post("/api/v1/cycles", json={"year": 2026}, headers=coord.headers)
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    assert client.post("/api/v1/cycles", json={"year": 2026}, headers=coord.headers).status_code == 409
    measures = [{"title": "Ilmastotiekartta", "theme": "climate", "responsible": "regional_council:06",
                 "due_date": "2026-06-30"},
                {"title": "Viestintä", "theme": "advocacy", "responsible": "network:somewhere",
                 "due_date": "2026-06-30"}]
    r = client.post(f"/api/v1/cycles/{cid}/agree", json={"measures": measures}, headers=coord.headers)
    assert r.status_code == 422 and r.json()["field"] == "measures[1].responsible"
    r = client.post(f"/api/v1/cycles/{cid}/agree", json={"measures": [{**measures[1], "theme": "tourism"}]},
                    headers=coord.headers)
    assert r.status_code == 422 and r.json()["field"] == "measures[0].theme"
    r = client.post(f"/api/v1/cycles/{cid}/agree", json={"measures": measures[:1]}, headers=coord.headers)
    assert r.status_code == 200 and r.json()["state"] == "in_progress"
    mid = r.json()["measures"][0]["id"]
    r = client.post(f"/api/v1/cycles/{cid}/measures/{mid}/notes", json={"status": "ongoing", "text": "Aloitettu"},
                    headers=director.headers)
    assert r.status_code == 201 and r.json()["measures"][0]["status"] == "ongoing"
    other = make_user(ctx, org_key="regional_council:02")
    r = client.post(f"/api/v1/cycles/{cid}/measures/{mid}/notes", json={"status": "done", "text": "Valmis"},
                    headers=other.headers)
    assert r.status_code == 403
    r = client.put(f"/api/v1/cycles/{cid}/reports/regional_council:06", json={"summary": "x"},
                   headers=director.headers)
    assert r.status_code == 404 and "reporting may not be open yet" in r.json()["detail"]

    ctx.clock.set(datetime(2026, 11, 3, 8, 0, tzinfo=UTC))
    ctx.tick()
    url = f"/api/v1/cycles/{cid}/reports/regional_council:06"
    r = client.put(url, json={"summary": "Raportti", "measures": [{"measure_id": mid, "status": "done",
                                                                   "note": "Valmis"}]}, headers=director.headers)
    assert r.status_code == 200, r.text
    r = client.put(url, json={"summary": "Korjattu", "measures": []}, headers=director.headers)
    versions = r.json()["report_requests"][0]["versions"]
    assert [v["summary"] for v in versions] == ["Raportti", "Korjattu"]
    r = client.put(f"/api/v1/cycles/{cid}/survey", json={"ratings": {"cooperation": 0}}, headers=director.headers)
    assert r.status_code == 422 and r.json()["field"] == "ratings.cooperation"
    r = client.put(f"/api/v1/cycles/{cid}/survey", json={"ratings": {"cooperation": "five"}}, headers=director.headers)
    assert r.status_code == 422 and r.json()["field"] == "ratings.cooperation"
    r = client.post(f"/api/v1/cycles/{cid}/close", json={"feedback": "x"}, headers=coord.headers)
    assert r.status_code == 409 and "after its review" in r.json()["detail"]

    r = client.post("/api/v1/registers/meetings", json={"kind": "regional_directors", "title": "Mkj",
                                                         "held_on": "2026-11-02"}, headers=coord.headers)
    assert r.status_code == 201
    r = client.post("/api/v1/registers/statements", json={"title": "Kannanotto", "issued_on": "2026-10-02",
                                                           "addressee": "VM", "organisation": "x:1"},
                    headers=coord.headers)
    assert r.status_code == 422 and r.json()["field"] == "organisation"
    assert client.post("/api/v1/registers/meetings", json={"kind": "other", "title": "Mkj", "held_on": "2026-11-02"},
                       headers=director.headers).status_code == 403
    assert len(client.get("/api/v1/registers/meetings?year=2026", headers=director.headers).json()) == 1
    html = client.get(f"/api/v1/cycles/{cid}/report.html?lang=en", headers=director.headers)
    assert html.status_code == 200 and "Annual report 2026" in html.text and "Ilmastotiekartta" in html.text
    pdf = client.get(f"/api/v1/cycles/{cid}/report.pdf", headers=director.headers)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF-")
    assert "Toimintakertomus 2026" in pdf_text(pdf.content) and "Ilmastotiekartta" in pdf_text(pdf.content)
    sv = client.get(f"/api/v1/cycles/{cid}/report.pdf?lang=sv", headers=director.headers)
    assert "Verksamhetsberättelse 2026" in pdf_text(sv.content) and "Åtgärder" in pdf_text(sv.content)
    assert client.get("/api/v1/cycles/999999/report.pdf", headers=director.headers).status_code == 404
