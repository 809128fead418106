"""Authorization matrix: a signatory of party A against every route of party B and every coordinator route.

Each refused request must answer 403 (404 where the case is invisible to the caller) and write nothing: every
table keeps its row count and every case its state, version and data. A 403 is itself recorded as a denial.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlmodel import SQLModel

from api.app import create_app
from api.context import AppContext
from engine.models import AccessDenial, Case
from tests.support.builders import AgreementFixture, User, create_agreement, decision, make_user
from workflows.agreement import service

SHA = "cd" * 32
PARTY_TRIGGERS: dict[str, dict[str, Any]] = {
    "approve": {k: v for k, v in decision().items() if k != "outcome"},
    "decline": {k: v for k, v in decision().items() if k != "outcome"},
    "sign": {},
    "reinvite": {"sha256": SHA},
    "mark_overdue": {},
    "release": {},
}


def snapshot(ctx: AppContext) -> tuple[dict[str, int], list[Any]]:
    """Return every table's row count (denials aside) and every case's state, version and data."""
    with ctx.db.read_session() as s:
        counts = {t.name: int(s.execute(select(func.count()).select_from(t)).scalar_one())
                  for t in SQLModel.metadata.sorted_tables if t.name != "access_denial"}
        cases = [tuple(r) for r in s.execute(select(Case.id, Case.state, Case.version, Case.event_count,
                                                    Case.head_hash, Case.data).order_by(Case.id))]
    return counts, cases


def denials(ctx: AppContext) -> int:
    with ctx.db.read_session() as s:
        return int(s.execute(select(func.count()).select_from(AccessDenial)).scalar_one())


@dataclass
class Scene:
    """An agreement between parties A and B, and the cases the matrix aims at."""

    ctx: AppContext
    client: TestClient
    fx: AgreementFixture
    a: User  # signatory of party A: the caller
    b_key: str
    b_case: int

    def refused(self, method: str, url: str, expected: int, json: Any = None, user: User | None = None) -> None:
        """Send one request as A's signatory; it must be refused with `expected` and change nothing."""
        before, denied = snapshot(self.ctx), denials(self.ctx)
        r = self.client.request(method, url, json=json, headers=(user or self.a).headers)
        assert r.status_code == expected, f"{method} {url}: {r.status_code} {r.text}"
        body = r.json()
        assert body["error"] == {403: "NotPermitted", 404: "CaseNotFound"}.get(expected, body["error"])
        assert body["detail"]
        assert snapshot(self.ctx) == before, f"{method} {url} wrote something"
        assert denials(self.ctx) == denied + (1 if expected == 403 else 0)


@pytest.fixture
def scene(ctx: AppContext) -> Scene:
    fx = create_agreement(ctx, parties=2, signatures=1)
    a_key, b_key = fx.keys
    b_case = ctx.engine.run(lambda uow: service.party_case(uow, fx.id, b_key).id)
    return Scene(ctx, TestClient(create_app(ctx=ctx)), fx, fx.signatories[a_key][0], b_key, b_case)


def party_b_routes(scene: Scene) -> list[tuple[str, str, Any, int]]:
    """Every party-scoped route aimed at party B, with the status A's signatory must get."""
    base = f"/api/v1/agreements/{scene.fx.id}/parties/{scene.b_key}"
    routes: list[tuple[str, str, Any, int]] = [
        ("POST", f"{base}/decision", decision(), 403),
        ("POST", f"{base}/decision", decision("declined", note="Varauma"), 403),
        ("POST", f"{base}/signatures", None, 403),
    ]
    # B's own approval case is not visible to A at all
    routes += [("POST", f"/api/v1/cases/{scene.b_case}/triggers/{t}", p, 404) for t, p in PARTY_TRIGGERS.items()]
    routes += [("GET", f"/api/v1/cases/{scene.b_case}", None, 404),
               ("GET", f"/api/v1/cases/{scene.b_case}/events", None, 404)]
    return routes


def test_party_a_cannot_act_for_invited_party_b(scene: Scene) -> None:
    for method, url, json, status in party_b_routes(scene):
        scene.refused(method, url, status, json)


def test_party_a_cannot_act_for_approved_party_b(scene: Scene) -> None:
    b_signer = scene.fx.signatories[scene.b_key][0]
    r = scene.client.post(f"/api/v1/agreements/{scene.fx.id}/parties/{scene.b_key}/decision", json=decision(),
                          headers=b_signer.headers)
    assert r.status_code == 201, r.text
    for method, url, json, status in party_b_routes(scene):
        scene.refused(method, url, status, json)
    # and B itself still can: the refusals were about A, not about the state
    r = scene.client.post(f"/api/v1/agreements/{scene.fx.id}/parties/{scene.b_key}/signatures",
                          headers=b_signer.headers)
    assert r.status_code == 201 and r.json()["party_state"] == "signed", r.text


def test_a_signatory_of_the_party_but_not_listed_cannot_sign(scene: Scene) -> None:
    colleague = make_user(scene.ctx, org_key=scene.b_key, name="Listaamaton allekirjoittaja")
    b_signer = scene.fx.signatories[scene.b_key][0]
    base = f"/api/v1/agreements/{scene.fx.id}/parties/{scene.b_key}"
    assert scene.client.post(f"{base}/decision", json=decision(), headers=b_signer.headers).status_code == 201
    scene.refused("POST", f"{base}/signatures", 403, user=colleague)


def coordinator_routes(ctx: AppContext, coordinator: User) -> list[tuple[str, str, Any]]:
    """Every coordinator route, each aimed at an agreement in a state where the coordinator could use it."""
    draft = create_agreement(ctx, parties=2, circulate=False, coordinator=coordinator)
    live = create_agreement(ctx, parties=2, coordinator=coordinator)
    in_force = create_agreement(ctx, parties=2, coordinator=coordinator)
    client = TestClient(create_app(ctx=ctx))
    for key in in_force.keys:
        user = in_force.signatories[key][0]
        url = f"/api/v1/agreements/{in_force.id}/parties/{key}"
        assert client.post(f"{url}/decision", json=decision(), headers=user.headers).status_code == 201
        assert client.post(f"{url}/signatures", headers=user.headers).status_code == 201
    terminate = {"reason": "Korvataan uudella sopimuksella", "end_date": "2026-12-31"}
    routes: list[tuple[str, str, Any]] = [
        ("POST", f"/api/v1/agreements/{draft.id}/circulate", None),
        ("PUT", f"/api/v1/agreements/{draft.id}/document", {"text": "# Uusi luonnos\n"}),
        ("POST", f"/api/v1/agreements/{draft.id}/withdraw", {"reason": "Ei tarvita"}),
        ("PUT", f"/api/v1/agreements/{live.id}/document", {"text": "# Uusi versio\n", "note": "Pykälä 3"}),
        ("POST", f"/api/v1/agreements/{live.id}/withdraw", None),
        ("POST", f"/api/v1/agreements/{in_force.id}/terminate", terminate),
        ("POST", f"/api/v1/cases/{draft.id}/triggers/circulate", None),
        ("POST", f"/api/v1/cases/{live.id}/triggers/revise", {"text": "# Kolmas\n"}),
        ("POST", f"/api/v1/cases/{live.id}/triggers/withdraw", {}),
        ("POST", f"/api/v1/cases/{in_force.id}/triggers/terminate", terminate),
        ("POST", f"/api/v1/cases/{in_force.id}/triggers/start_review", {}),
    ]
    return routes


def test_a_signatory_cannot_use_coordinator_routes(scene: Scene) -> None:
    """A signatory of a party sees the agreement (so 403, not 404) but may not run it."""
    ctx = scene.ctx
    coordinator = scene.fx.coordinator
    routes = coordinator_routes(ctx, coordinator)
    for method, url, json in routes:
        agreement_id = int(url.split("/")[4])
        # the caller is a signatory of a party of that agreement
        with ctx.db.read_session() as s:
            party_org = s.execute(select(Case.organisation_id).where(Case.parent_id == agreement_id)
                                  .order_by(Case.id).limit(1)).scalar_one()
            key = s.execute(select(Case.data).where(Case.parent_id == agreement_id, Case.organisation_id ==
                                                    party_org)).scalar_one()["organisation_key"]
        caller = make_user(ctx, org_key=key, name="Osapuolen allekirjoittaja")
        scene.refused(method, url, 403, json, user=caller)
    creator = {"title": "Oma sopimus", "document": "# Teksti\n", "deadline": "2026-06-19",
               "parties": [{"organisation": scene.fx.keys[0], "signatories": [scene.a.id]}]}
    scene.refused("POST", "/api/v1/agreements", 403, creator)


def test_a_foreign_coordinator_cannot_see_or_run_the_agreement(scene: Scene) -> None:
    ctx = scene.ctx
    foreign = make_user(ctx, org_key="regional_council:02", roles="coordinator", name="Toinen koordinaattori")
    create_agreement(ctx, parties=1, coordinator=foreign)
    routes = coordinator_routes(ctx, scene.fx.coordinator)
    for method, url, json in routes:
        scene.refused(method, url, 404, json, user=foreign)
    for method, url, json, _status in party_b_routes(scene):
        scene.refused(method, url, 404, json, user=foreign)
    scene.refused("GET", f"/api/v1/agreements/{scene.fx.id}", 404, user=foreign)


# -- authentication and the admin-only directory routes ------------------------------------------------------

PUBLIC = {("get", "/api/v1/calendar/feeds/{token}.ics")}  # a calendar feed authenticates by its secret URL


def api_operations(client: TestClient) -> list[tuple[str, str]]:
    schema = client.get("/openapi.json").json()
    ops = [(m, p) for p, item in schema["paths"].items() if p.startswith("/api/v1")
           for m in item if m in ("get", "post", "put", "patch", "delete")]
    assert len(ops) >= 20
    return [op for op in ops if op not in PUBLIC]


def concrete(path: str) -> str:
    """Fill path parameters with plausible values."""
    out = []
    for part in path.split("/"):
        if part.startswith("{") and part.endswith("}"):
            part = "municipality:837" if "key" in part else ("x" if part in ("{network}", "{responsible}")
                                                              else "1")
        elif "{" in part:
            part = part.split("{")[0] + "x" + part.split("}")[1]
        out.append(part)
    return "/".join(out)


BAD_CREDENTIALS = [{}, {"Authorization": "Bearer vk_not-a-real-token"}, {"Authorization": "Basic YWRtaW46YWRtaW4="},
                   {"Authorization": "Bearer "}, {"Authorization": "bearer"}]


def test_every_api_route_needs_a_valid_token(ctx: AppContext) -> None:
    client = TestClient(create_app(ctx=ctx))
    before = snapshot(ctx)
    for headers in BAD_CREDENTIALS:
        for method, path in api_operations(client):
            r = client.request(method.upper(), concrete(path), headers=headers, json={})
            assert r.status_code == 401, f"{headers} {method} {path}: {r.status_code} {r.text[:200]}"
            assert r.json()["error"] == "Unauthenticated"
    assert snapshot(ctx) == before


def test_a_deactivated_person_s_token_stops_working(ctx: AppContext) -> None:
    admin = make_user(ctx, roles="admin")
    user = make_user(ctx, org_key="municipality:837")
    client = TestClient(create_app(ctx=ctx))
    assert client.get("/api/v1/workflows", headers=user.headers).status_code == 200
    r = client.patch(f"/api/v1/people/{user.id}", json={"active": False}, headers=admin.headers)
    assert r.status_code == 200, r.text
    assert client.get("/api/v1/workflows", headers=user.headers).status_code == 401


def test_only_admins_manage_people_and_tokens(ctx: AppContext) -> None:
    for roles in ("signatory", "coordinator", "signatory,coordinator"):
        only_admins_manage_people(ctx, roles)


def only_admins_manage_people(ctx: AppContext, roles: str) -> None:
    caller = make_user(ctx, org_key="municipality:837", roles=roles)
    other = make_user(ctx, org_key="municipality:091")
    client = TestClient(create_app(ctx=ctx))
    new_person = {"name": "Uusi Henkilö", "email": f"uusi{caller.id}@example.fi", "organisation": "municipality:837",
                  "roles": ["admin"]}
    attempts = [("POST", "/api/v1/people", new_person),
                ("PATCH", f"/api/v1/people/{other.id}", {"roles": ["admin"]}),
                ("PATCH", f"/api/v1/people/{caller.id}", {"roles": ["admin"]}),  # not even yourself
                ("POST", f"/api/v1/people/{other.id}/tokens", {"label": "varastettu"}),
                ("POST", f"/api/v1/people/{caller.id}/tokens", None)]
    for method, url, json in attempts:
        before, denied = snapshot(ctx), denials(ctx)
        r = client.request(method, url, json=json, headers=caller.headers)
        assert r.status_code == 403, f"{method} {url}: {r.status_code} {r.text}"
        assert r.json()["error"] == "NotPermitted"
        assert snapshot(ctx) == before
        assert denials(ctx) == denied + 1
    if "coordinator" not in roles:
        r = client.get(f"/api/v1/people/{other.id}", headers=caller.headers)
        assert r.status_code == 403
        listed = client.get("/api/v1/people", headers=caller.headers).json()
        assert [p["id"] for p in listed["items"]] == [caller.id]
    assert client.get(f"/api/v1/people/{caller.id}", headers=caller.headers).status_code == 200
