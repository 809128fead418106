"""Administrators configure workflows and emails: versions, validation by line, simulation, migration, templates."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlmodel import Session

from api.app import create_app
from engine.audit import verify_all
from engine.models import Case, Event, OutboxMessage
from tests.support.builders import create_agreement, decision, make_user, render_mail

V1 = (Path(__file__).resolve().parents[2] / "workflows" / "agreement" / "v1.yaml").read_text(encoding="utf-8")
V2_RENAMED = V1.replace("version: 1", "version: 2").replace("needs_renegotiation", "renegotiating")


def _client(ctx):
    admin = make_user(ctx, roles="admin")
    return TestClient(create_app(ctx=ctx)), admin.headers


def test_validation_names_the_line(ctx) -> None:
    client, h = _client(ctx)
    bad = V1.replace("dest: in_force", "dest: in_forse", 1)
    r = client.post("/api/v1/workflows/agreement/validate", json={"source": bad}, headers=h).json()
    line = next(i for i, text in enumerate(bad.splitlines(), 1) if "in_forse" in text)
    assert r["valid"] is False and r["problems"][0]["line"] == line
    assert "in_forse" in r["problems"][0]["message"]
    ok = client.post("/api/v1/workflows/agreement/validate", json={"source": V1}, headers=h).json()
    assert ok["valid"] is True and ok["diagram"].startswith("stateDiagram-v2")
    refused = client.post("/api/v1/workflows/agreement/versions", json={"source": bad}, headers=h)
    assert refused.status_code == 422 and refused.json()["problems"][0]["line"] == line


def test_new_version_for_new_cases_and_explicit_migration_of_running_ones(ctx) -> None:
    client, h = _client(ctx)
    running = create_agreement(ctx, parties=2)
    key = running.keys[0]
    user = running.signatories[key][0]
    assert client.post(f"/api/v1/agreements/{running.id}/parties/{key}/decision", json=decision("declined"),
                       headers=user.headers).json()["agreement_state"] == "needs_renegotiation"
    wrong_version = client.post("/api/v1/workflows/agreement/versions",
                                json={"source": V2_RENAMED.replace("version: 2", "version: 5")}, headers=h)
    assert wrong_version.status_code == 422 and wrong_version.json()["field"] == "version"
    created = client.post("/api/v1/workflows/agreement/versions", json={"source": V2_RENAMED}, headers=h)
    assert created.status_code == 201, created.text
    fresh = create_agreement(ctx, parties=1, circulate=False)
    with Session(ctx.db.engine) as s:
        assert s.get(Case, fresh.id).workflow_version == 2
        assert s.get(Case, running.id).workflow_version == 1
    stranded = client.post("/api/v1/workflows/agreement/migrations",
                           json={"from_version": 1, "to_version": 2, "mapping": {}}, headers=h)
    assert stranded.status_code == 422 and "needs_renegotiation" in stranded.json()["detail"]
    moved = client.post("/api/v1/workflows/agreement/migrations",
                        json={"from_version": 1, "to_version": 2,
                              "mapping": {"needs_renegotiation": "renegotiating"}}, headers=h)
    assert moved.status_code == 200, moved.text
    assert moved.json()["moved"] == {"needs_renegotiation -> renegotiating": 1}
    with Session(ctx.db.engine) as s:
        case = s.get(Case, running.id)
        assert (case.workflow_version, case.state) == (2, "renegotiating")
        assert s.execute(select(Event).where(Event.case_id == running.id, Event.name == "CaseMigrated")).first()
        assert verify_all(s)[2] == []
    # the migrated case goes on under version 2
    revised = client.put(f"/api/v1/agreements/{running.id}/document", json={"text": "# Uusi teksti\n"},
                         headers=running.coordinator.headers)
    assert revised.status_code == 200 and revised.json()["state"] == "circulating"


def test_simulation_shows_dates_moved_by_holidays(ctx) -> None:
    client, h = _client(ctx)
    r = client.post("/api/v1/workflows/agreement_party/simulate",
                    json={"start": "2026-05-04", "deadline": "2026-06-19", "lang": "en"}, headers=h)
    assert r.status_code == 200, r.text
    entries = r.json()
    deadline = next(e for e in entries if e["kind"] == "deadline")
    assert (deadline["nominal"], deadline["local_date"], deadline["reason"]) == (
        "2026-06-19", "2026-06-22", "Midsummer Eve")
    minus1 = next(e for e in entries if e["offset"] == "-P1D")
    assert minus1["moved"] and minus1["local_date"] == "2026-06-18" and minus1["reason"] == "weekend"
    bad = client.post("/api/v1/workflows/agreement/simulate",
                      json={"start": "2026-05-04", "path": ["sign"]}, headers=h)
    assert bad.status_code == 422 and "allowed: circulate" in bad.json()["detail"]


def test_template_editing_is_sandboxed_and_used_by_new_mail(ctx) -> None:
    client, h = _client(ctx)
    url = "/api/v1/templates/agreement_circulated/fi"
    call = client.put(url, json={"subject": "{{ case.title.upper() }}"}, headers=h)
    assert call.status_code == 422 and "not allowed" in call.json()["detail"]
    syntax = client.put(url, json={"subject": "ok", "txt": "line\n{% if %}"}, headers=h)
    assert syntax.status_code == 422 and syntax.json()["field"] == "txt" and "line 2" in syntax.json()["detail"]
    saved = client.put(url, json={"subject": "Päätettäväksi: {{ case.title }} ({{ deadline|localdate(lang) }})"},
                       headers=h)
    assert saved.status_code == 200
    assert saved.json()["subject"] == "Päätettäväksi: Pirkanmaan puitesopimus (ma 28.12.2026)"
    preview = client.post("/api/v1/templates/agreement_circulated/preview", json={"lang": "sv"}, headers=h).json()
    assert preview["subject"].startswith("För godkännande")
    create_agreement(ctx, parties=1, deadline=date(2026, 6, 19))
    render_mail(ctx)
    with Session(ctx.db.engine) as s:
        subjects = s.execute(select(OutboxMessage.subject)).scalars().all()
    assert subjects == ["Päätettäväksi: Pirkanmaan puitesopimus (ma 22.6.2026)"]
    assert client.delete(url, headers=h).status_code == 204
    assert client.get("/api/v1/templates/agreement_circulated", headers=h).json()["fi"]["subject"]["edited"] is False
    signatory = make_user(ctx, org_key="municipality:837")
    assert client.put(url, json={"subject": "x"}, headers=signatory.headers).status_code == 403
