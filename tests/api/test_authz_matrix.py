"""Authorization matrix: a signatory of party A against every route of party B and every coordinator route.

Each refused request must answer 403 (404 where the case is invisible to the caller) and write nothing: every
table keeps its row count and every case its state, version and data. A 403 is itself recorded as a denial.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlmodel import Session, SQLModel

from api.app import create_app
from api.context import AppContext
from engine.models import AccessDenial, Case, OutboxMessage, Person
from tests.support.builders import AgreementFixture, User, create_agreement, decision, make_user
from workflows.agreement import cases

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
    b_case = ctx.engine.run(lambda uow: cases.party_case(uow, fx.id, b_key).id)
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
        ("POST", f"/api/v1/agreements/{in_force.id}/task-agreements", {  # only the framework's coordinator
            "title": "LAPE-sopimus", "theme": "LAPE", "document": "# LAPE\n", "deadline": "2026-09-18",
            "parties": [{"organisation": in_force.keys[0],
                         "signatories": [in_force.signatories[in_force.keys[0]][0].id]}]}),
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

PUBLIC = {("get", "/api/v1/calendar/feeds/{token}.ics"),  # a calendar feed authenticates by its secret URL
          ("post", "/api/v1/check")}  # the public check: anyone may ask (tests/api/test_public_check.py)


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


# -- every read route, as each kind of reader: least disclosure (issue 10, finding 5) ---------------------------

ADMIN, COORDINATOR, FOREIGN_COORDINATOR, PARTY, NON_PARTY, ANONYMOUS = (
    "admin", "coordinator", "foreign_coordinator", "party", "non_party", "anonymous")
READERS = (ADMIN, COORDINATOR, FOREIGN_COORDINATOR, PARTY, NON_PARTY, ANONYMOUS)
# who reads everything of the scene's cases: their addresses and timers are theirs to see
FULL_READERS = (ADMIN, COORDINATOR)


def get_routes(routes: Any) -> set[str]:
    """Return the path of every GET route under /api, walking included routers (FastAPI keeps them nested)."""
    out: set[str] = set()
    for r in routes:
        if hasattr(r, "effective_candidates"):
            out |= get_routes(r.effective_candidates())
        elif "GET" in (getattr(r, "methods", None) or ()) and str(getattr(r, "path", "")).startswith("/api/"):
            out.add(r.path)
    return out


@dataclass
class ReadScene:
    """An agreement of parties A, B and C, a nomination asking A and B (B has proposed), a cycle, a feed of A's."""

    ctx: AppContext
    client: TestClient
    users: dict[str, User]
    agreement: int
    parties: dict[str, int]  # organisation key -> party case id
    nomination: int
    proposals: dict[str, int]
    cycle: int
    feed_token: str
    mail_to_party: int
    keys: list[str]
    forbidden_addresses: dict[str, set[str]]  # reader -> addresses that must not appear in what they read
    forbidden_cases: dict[str, set[int]]  # reader -> case ids that must not appear as case_id (or item id)
    forbidden_titles: dict[str, set[str]]  # reader -> titles that must not appear in SVG, HTML or iCalendar


def _read_scene(ctx: AppContext) -> ReadScene:
    from tests.support.recurring import nomination_body, pair
    from workflows.annual_clock import ical
    from workflows.cycle import service as cycles
    from workflows.cycle.schemas import CycleCreate
    from workflows.nomination import service as nominations
    from workflows.nomination.schemas import NominationCreate, ProposalIn

    coordinator = make_user(ctx, org_key="regional_council:06", roles="coordinator", name="Koordinaattori")
    fx = create_agreement(ctx, parties=3, coordinator=coordinator)
    a_key, b_key, c_key = fx.keys
    users = {ADMIN: make_user(ctx, roles="admin", name="Pääkäyttäjä"), COORDINATOR: coordinator,
             FOREIGN_COORDINATOR: make_user(ctx, org_key="regional_council:02", roles="coordinator",
                                            name="Toinen koordinaattori"),
             PARTY: fx.signatories[a_key][0],
             NON_PARTY: make_user(ctx, org_key="municipality:091", name="Helsingin allekirjoittaja")}
    colleague_b = make_user(ctx, org_key=b_key, name="B:n yhteyshenkilö")  # mailed by the nomination, too
    body = NominationCreate.model_validate(nomination_body(seats=1, asked={"organisations": [a_key, b_key]}))
    nomination = ctx.engine.run(lambda uow: nominations.create_nomination(uow, body, coordinator.actor)).id
    b_signer = fx.signatories[b_key][0]
    proposal = ProposalIn.model_validate({"candidates": pair(1, org=b_key) + pair(1, "deputy", org=b_key)})
    ctx.engine.run(lambda uow: nominations.propose(uow, nomination, b_key, proposal, b_signer.actor))
    cycle = ctx.engine.run(lambda uow: cycles.create_cycle(uow, CycleCreate(year=2026), coordinator.actor)).id
    with Session(ctx.db.engine) as s:
        _feed, token = ical.create_feed(s, users[PARTY].actor, ctx.clock.now(), person_id=users[PARTY].id)
        s.commit()
        children = {c.id: c for c in s.execute(select(Case).where(Case.parent_id.in_([fx.id, nomination])))
                    .scalars()}  # type: ignore[union-attr]
        mail = s.execute(select(OutboxMessage.id).where(OutboxMessage.person_id == users[PARTY].id)
                         .order_by(OutboxMessage.id)).scalars().first()
        people = {p.email.lower(): p.organisation_id for p in s.execute(select(Person)).scalars()}
    parties = {c.data["organisation_key"]: c.id or 0 for c in children.values() if c.parent_id == fx.id}
    proposals = {c.data["organisation_key"]: c.id or 0 for c in children.values() if c.parent_id == nomination}
    assert mail is not None and len(parties) == 3 and len(proposals) == 2
    candidates_b = {str(c["email"]).lower() for c in proposal.model_dump()["candidates"]}

    def foreign(reader: str) -> set[str]:
        """Every address of a person outside the reader's organisation, and B's candidates' (none reads as B)."""
        own = users[reader].actor.organisation_id
        return {e for e, org_id in people.items() if org_id != own} | candidates_b

    every_case = set(parties.values()) | set(proposals.values()) | {fx.id, nomination, cycle}
    forbidden_cases = {
        FOREIGN_COORDINATOR: every_case - {cycle},  # a council: the cycle's shared plan, nothing else
        PARTY: {parties[b_key], parties[c_key], proposals[b_key], cycle},
        NON_PARTY: every_case,
    }
    agreement_title, group = "Pirkanmaan puitesopimus", body.group
    forbidden_titles = {FOREIGN_COORDINATOR: {agreement_title, group}, PARTY: {"Vuosiseuranta 2026"},
                        NON_PARTY: {agreement_title, group, "Vuosiseuranta 2026"}}
    assert colleague_b.person.email.lower() in foreign(PARTY)
    return ReadScene(ctx, TestClient(create_app(ctx=ctx)), users, fx.id, parties, nomination, proposals, cycle,
                     token, mail, fx.keys, {r: foreign(r) for r in forbidden_cases}, forbidden_cases,
                     forbidden_titles)


OK, GONE, NO, ANON = 200, 404, 403, 401
EVERYONE = {ADMIN: OK, COORDINATOR: OK, FOREIGN_COORDINATOR: OK, PARTY: OK, NON_PARTY: OK, ANONYMOUS: ANON}
AGREEMENT_READERS = {ADMIN: OK, COORDINATOR: OK, FOREIGN_COORDINATOR: GONE, PARTY: OK, NON_PARTY: GONE,
                     ANONYMOUS: ANON}
CYCLE_READERS = {ADMIN: OK, COORDINATOR: OK, FOREIGN_COORDINATOR: OK, PARTY: GONE, NON_PARTY: GONE,
                 ANONYMOUS: ANON}
ADMINS_ONLY = {ADMIN: OK, COORDINATOR: NO, FOREIGN_COORDINATOR: NO, PARTY: NO, NON_PARTY: NO, ANONYMOUS: ANON}


@dataclass(frozen=True)
class ReadRoute:
    """How to call one GET route in the scene, and what each reader must get."""

    url: Any  # (scene) -> str
    expected: dict[str, int]
    error: dict[str, str] = field(default_factory=dict)  # reader -> the error its 404 names (default CaseNotFound)
    directory: bool = False  # lists people: coordinators see everyone's address (the register is theirs)
    items_are_cases: bool = False  # the top-level items' `id` is a case id
    viewer: str | None = None  # the body shows what this reader may open, whoever calls (a feed's secret URL)
    lists_parties: bool = False  # names every party's case with its state: the agreement's shared facts


def _webhooks(expected_admin: int) -> dict[str, int]:
    return {**ADMINS_ONLY, ADMIN: expected_admin}


NO_SUBSCRIPTION = {ADMIN: "NotFound"}  # the scene has no webhook subscription: the admin hears so


READ_MATRIX: dict[str, ReadRoute] = {
    "/api/v1/organisations": ReadRoute(lambda s: "/api/v1/organisations?kind=regional_council", EVERYONE),
    "/api/v1/organisations/{key}": ReadRoute(lambda s: f"/api/v1/organisations/{s.keys[1]}", EVERYONE),
    "/api/v1/people": ReadRoute(lambda s: "/api/v1/people", EVERYONE, directory=True),
    "/api/v1/people/{person_id}": ReadRoute(lambda s: f"/api/v1/people/{s.users[PARTY].id}",
                                            {**EVERYONE, NON_PARTY: NO}, directory=True),
    "/api/v1/workflows": ReadRoute(lambda s: "/api/v1/workflows", EVERYONE),
    "/api/v1/workflows/{name}": ReadRoute(lambda s: "/api/v1/workflows/agreement", EVERYONE),
    "/api/v1/workflows/{name}/diagram": ReadRoute(lambda s: "/api/v1/workflows/agreement/diagram", EVERYONE),
    "/api/v1/cases": ReadRoute(lambda s: "/api/v1/cases", EVERYONE, items_are_cases=True),
    "/api/v1/cases/{case_id}": ReadRoute(lambda s: f"/api/v1/cases/{s.agreement}", AGREEMENT_READERS),
    "/api/v1/cases/{case_id}/events": ReadRoute(lambda s: f"/api/v1/cases/{s.agreement}/events",
                                                AGREEMENT_READERS),
    "/api/v1/cases/{case_id}/timeline": ReadRoute(lambda s: f"/api/v1/cases/{s.agreement}/timeline",
                                                  AGREEMENT_READERS),
    "/api/v1/agreements/{agreement_id}": ReadRoute(lambda s: f"/api/v1/agreements/{s.agreement}", AGREEMENT_READERS,
                                                   lists_parties=True),
    "/api/v1/agreements/{agreement_id}/versions": ReadRoute(lambda s: f"/api/v1/agreements/{s.agreement}/versions",
                                                            AGREEMENT_READERS),
    "/api/v1/agreements/{agreement_id}/versions/{number}/text": ReadRoute(
        lambda s: f"/api/v1/agreements/{s.agreement}/versions/1/text", AGREEMENT_READERS),
    # the scene's agreement is not in force: its readers hear it has no sealed record (NotFound), strangers that
    # there is no such agreement (CaseNotFound); tests/workflows/test_sealed_record.py downloads a made one
    "/api/v1/agreements/{agreement_id}/record": ReadRoute(
        lambda s: f"/api/v1/agreements/{s.agreement}/record",
        {**AGREEMENT_READERS, ADMIN: GONE, COORDINATOR: GONE, PARTY: GONE},
        error={ADMIN: "NotFound", COORDINATOR: "NotFound", PARTY: "NotFound"}),
    "/api/v1/agreements/{agreement_id}/reviews": ReadRoute(lambda s: f"/api/v1/agreements/{s.agreement}/reviews",
                                                           AGREEMENT_READERS),
    # task-specific agreements: a framework lists only those the reader may open (tests/api/test_task_specific_api.py
    # has a scene with some); the scene's agreement is no task-specific one and no review (NotFound to its readers)
    "/api/v1/agreements/{framework_id}/task-agreements": ReadRoute(
        lambda s: f"/api/v1/agreements/{s.agreement}/task-agreements", AGREEMENT_READERS, items_are_cases=True),
    "/api/v1/agreements/{agreement_id}/framework": ReadRoute(
        lambda s: f"/api/v1/agreements/{s.agreement}/framework",
        {**AGREEMENT_READERS, ADMIN: GONE, COORDINATOR: GONE, PARTY: GONE},
        error={ADMIN: "NotFound", COORDINATOR: "NotFound", PARTY: "NotFound"}),
    "/api/v1/reviews/{review_id}/task-agreements": ReadRoute(
        lambda s: f"/api/v1/reviews/{s.agreement}/task-agreements",
        {**AGREEMENT_READERS, ADMIN: GONE, COORDINATOR: GONE, PARTY: GONE},
        error={ADMIN: "NotFound", COORDINATOR: "NotFound", PARTY: "NotFound"}),
    "/api/v1/timers": ReadRoute(lambda s: "/api/v1/timers?limit=500", EVERYONE),
    "/api/v1/outbox": ReadRoute(lambda s: "/api/v1/outbox?limit=500", EVERYONE),
    "/api/v1/outbox/{message_id}": ReadRoute(lambda s: f"/api/v1/outbox/{s.mail_to_party}",
                                             {**EVERYONE, COORDINATOR: GONE, FOREIGN_COORDINATOR: GONE,
                                              NON_PARTY: GONE},
                                             error={r: "NotFound" for r in (COORDINATOR, FOREIGN_COORDINATOR,
                                                                            NON_PARTY)}),
    "/api/v1/nominations/{nomination_id}": ReadRoute(lambda s: f"/api/v1/nominations/{s.nomination}",
                                                     AGREEMENT_READERS),
    # the letter is the coordinator's and the requester's: they hear there is none yet (NotFound), an asked
    # organisation is refused (it reads the decision on the request), anyone else does not see the request at all
    "/api/v1/nominations/{nomination_id}/letter": ReadRoute(
        lambda s: f"/api/v1/nominations/{s.nomination}/letter", {**AGREEMENT_READERS, ADMIN: GONE, COORDINATOR: GONE,
                                                                 PARTY: NO},
        error={r: "NotFound" for r in (ADMIN, COORDINATOR)}),
    "/api/v1/cycles/schedule": ReadRoute(lambda s: "/api/v1/cycles/schedule", {**CYCLE_READERS, PARTY: NO,
                                                                               NON_PARTY: NO}),
    "/api/v1/cycles": ReadRoute(lambda s: "/api/v1/cycles", EVERYONE, items_are_cases=True),
    "/api/v1/cycles/{cycle_id}": ReadRoute(lambda s: f"/api/v1/cycles/{s.cycle}", CYCLE_READERS),
    "/api/v1/cycles/{cycle_id}/report.html": ReadRoute(lambda s: f"/api/v1/cycles/{s.cycle}/report.html",
                                                       CYCLE_READERS),
    "/api/v1/cycles/{cycle_id}/report.pdf": ReadRoute(lambda s: f"/api/v1/cycles/{s.cycle}/report.pdf",
                                                      CYCLE_READERS),
    "/api/v1/registers/meetings": ReadRoute(lambda s: "/api/v1/registers/meetings?year=2026", EVERYONE),
    "/api/v1/registers/statements": ReadRoute(lambda s: "/api/v1/registers/statements?year=2026", EVERYONE),
    "/api/v1/calendar/items": ReadRoute(lambda s: "/api/v1/calendar/items?year=2026", EVERYONE),
    "/api/v1/calendar/wheel.svg": ReadRoute(lambda s: "/api/v1/calendar/wheel.svg?year=2026", EVERYONE),
    "/api/v1/calendar/wheel.html": ReadRoute(lambda s: "/api/v1/calendar/wheel.html?year=2026", EVERYONE),
    # the secret URL is the credential (calendar clients send no headers): everyone gets the party's own feed
    "/api/v1/calendar/feeds/{token}.ics": ReadRoute(lambda s: f"/api/v1/calendar/feeds/{s.feed_token}.ics",
                                                    {**EVERYONE, ANONYMOUS: OK}, viewer=PARTY),
    "/api/v1/templates": ReadRoute(lambda s: "/api/v1/templates", ADMINS_ONLY),
    "/api/v1/templates/{name}": ReadRoute(lambda s: "/api/v1/templates/agreement_circulated", ADMINS_ONLY),
    "/api/v1/webhooks": ReadRoute(lambda s: "/api/v1/webhooks", _webhooks(OK)),
    "/api/v1/webhooks/{subscription_id}": ReadRoute(lambda s: "/api/v1/webhooks/1", _webhooks(GONE),
                                                    error=NO_SUBSCRIPTION),
    "/api/v1/webhooks/{subscription_id}/deliveries": ReadRoute(lambda s: "/api/v1/webhooks/1/deliveries",
                                                               _webhooks(GONE), error=NO_SUBSCRIPTION),
    "/api/v1/webhooks/{subscription_id}/deliveries/{delivery_id}/attempts": ReadRoute(
        lambda s: "/api/v1/webhooks/1/deliveries/1/attempts", _webhooks(GONE), error=NO_SUBSCRIPTION),
    "/api/v1/oidc-providers": ReadRoute(lambda s: "/api/v1/oidc-providers", _webhooks(OK)),
    "/api/v1/oidc-providers/{provider_id}": ReadRoute(lambda s: "/api/v1/oidc-providers/1", _webhooks(GONE),
                                                      error=NO_SUBSCRIPTION),  # no provider in the scene
}


def _case_ids(value: Any, top: bool, items_are_cases: bool) -> set[int]:
    """Return every `case_id` in a JSON body (and the items' `id` where the items are cases)."""
    found: set[int] = set()
    if isinstance(value, dict):
        if isinstance(value.get("case_id"), int):
            found.add(value["case_id"])
        if top and items_are_cases and isinstance(value.get("id"), int):
            found.add(value["id"])
        for k, v in value.items():
            found |= _case_ids(v, top and k == "items", items_are_cases)
    elif isinstance(value, list):
        for v in value:
            found |= _case_ids(v, top, items_are_cases)
    return found


def leaks(scene: ReadScene, route: ReadRoute, reader: str, response: Any) -> list[str]:
    """Return what a reader saw that is not theirs: other organisations' addresses, timers, cases and titles."""
    who = route.viewer or reader
    if who in FULL_READERS or who == ANONYMOUS:
        return []
    text = response.text.lower() if not response.headers.get("content-type", "").startswith("application/pdf") \
        else ""
    out = []
    if not (route.directory and "coordinator" in scene.users[reader].actor.roles):
        out += [f"address {a}" for a in sorted(scene.forbidden_addresses[who]) if a in text]
    if response.headers.get("content-type", "").startswith("application/json"):
        ids = _case_ids(response.json(), True, route.items_are_cases)
        shared = set(scene.parties.values()) if route.lists_parties else set()
        out += [f"case {i}" for i in sorted(ids & scene.forbidden_cases[who] - shared)]
    else:
        out += [f"title {t!r}" for t in sorted(scene.forbidden_titles[who]) if t.lower() in text]
    return out


@pytest.fixture
def read_scene(ctx: AppContext) -> ReadScene:
    return _read_scene(ctx)


def test_every_read_route_has_a_matrix_entry(ctx: AppContext) -> None:
    """A new GET route without an entry here fails: say who may read it before it ships."""
    routes = get_routes(create_app(ctx=ctx).routes)
    assert len(routes) >= 30
    assert routes - set(READ_MATRIX) == set(), "GET routes missing from READ_MATRIX"
    assert set(READ_MATRIX) - routes == set(), "READ_MATRIX names routes that no longer exist"


def test_every_read_route_as_every_reader(read_scene: ReadScene) -> None:
    scene, problems = read_scene, []
    before = snapshot(scene.ctx)
    for path in sorted(get_routes(create_app(ctx=scene.ctx).routes)):
        route = READ_MATRIX[path]
        for reader in READERS:
            url = route.url(scene)
            headers = scene.users[reader].headers if reader != ANONYMOUS else {}
            r = scene.client.get(url, headers=headers)
            expected = route.expected[reader]
            if r.status_code != expected:
                problems.append(f"{reader} GET {url}: {r.status_code}, expected {expected}: {r.text[:160]}")
                continue
            if expected >= 400:
                error = {401: "Unauthenticated", 403: "NotPermitted"}.get(expected) or route.error.get(
                    reader, "CaseNotFound")
                if r.json().get("error") != error:
                    problems.append(f"{reader} GET {url}: error {r.json().get('error')}, expected {error}")
                continue
            problems += [f"{reader} GET {url}: {leak}" for leak in leaks(scene, route, reader, r)]
    assert problems == [], "\n".join(problems)
    assert snapshot(scene.ctx) == before, "a read wrote something"
