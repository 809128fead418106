"""Errors through the API: 422 naming the field, 409 for stale versions and disallowed triggers, never a 500."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.app import create_app
from api.context import AppContext
from engine.models import Case, Event
from tests.support.builders import AgreementFixture, User, create_agreement, decision, make_user


@pytest.fixture
def client(ctx: AppContext) -> TestClient:
    # raise_server_exceptions=False: a bug must show up as the 500 a caller would get, not as a test crash
    return TestClient(create_app(ctx=ctx), raise_server_exceptions=False)


@pytest.fixture
def coordinator(ctx: AppContext) -> User:
    return make_user(ctx, org_key="regional_council:06", roles="coordinator", name="Koordinaattori")


def counts(ctx: AppContext) -> tuple[int, int]:
    with ctx.db.read_session() as s:
        return (int(s.execute(select(func.count()).select_from(Case)).scalar_one()),
                int(s.execute(select(func.count()).select_from(Event)).scalar_one()))


def agreement_body(ctx: AppContext, **overrides: Any) -> dict[str, Any]:
    tampere = make_user(ctx, org_key="municipality:837", name="Tampereen allekirjoittaja")
    council = make_user(ctx, org_key="regional_council:06", name="Liiton allekirjoittaja")
    body: dict[str, Any] = {
        "title": "Pirkanmaan puitesopimus", "document": "# Sopimus\n", "deadline": "2026-06-19",
        "parties": [{"organisation": "municipality:837", "signatories": [tampere.id], "required_signatures": 1},
                    {"organisation": "regional_council:06", "signatories": [council.id]}],
    }
    body.update(overrides)
    return body


def assert_error(r: Any, status: int, error: str, field: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, f"{r.status_code} {r.text}"
    body: dict[str, Any] = r.json()
    assert body["error"] == error and body["detail"], body
    if field is not None:
        assert body["field"] == field, body
    return body


# -- creating an agreement -----------------------------------------------------------------------------------


def test_a_good_body_is_accepted(ctx: AppContext, client: TestClient, coordinator: User) -> None:
    r = client.post("/api/v1/agreements", json=agreement_body(ctx), headers=coordinator.headers)
    assert r.status_code == 201, r.text
    assert r.headers["Location"] == f"/api/v1/agreements/{r.json()['id']}"


def _party(ctx: AppContext, key: str, **extra: Any) -> dict[str, Any]:
    return {"organisation": key, "signatories": [make_user(ctx, org_key=key).id], **extra}


BAD_AGREEMENTS: dict[str, tuple[Any, str]] = {
    "unknown organisation": (lambda ctx, b: b["parties"].__setitem__(
        0, {**b["parties"][0], "organisation": "municipality:999"}), "parties[0].organisation"),
    "organisation without kind": (lambda ctx, b: b["parties"].__setitem__(
        0, {**b["parties"][0], "organisation": "Tampere"}), "parties[0].organisation"),
    "party listed twice": (lambda ctx, b: b["parties"].append(_party(ctx, "municipality:837")),
                           "parties[2].organisation"),
    "foreign signatory": (lambda ctx, b: b["parties"][0].__setitem__(
        "signatories", [make_user(ctx, org_key="municipality:091").id]), "parties[0].signatories[0]"),
    "unknown signatory": (lambda ctx, b: b["parties"][1].__setitem__("signatories", [987654]),
                          "parties[1].signatories[0]"),
    "signatory listed twice": (lambda ctx, b: b["parties"][1].__setitem__(
        "signatories", b["parties"][1]["signatories"] * 2), "parties[1].signatories"),
    "a coordinator who cannot sign": (lambda ctx, b: b["parties"][0].__setitem__(
        "signatories", [make_user(ctx, org_key="municipality:837", roles="coordinator").id]),
        "parties[0].signatories[0]"),
    "impossible date": (lambda ctx, b: b.__setitem__("deadline", "2026-02-30"), "deadline"),
    "not a date": (lambda ctx, b: b.__setitem__("deadline", "19.6.2026"), "deadline"),
    "deadline in the past": (lambda ctx, b: b.__setitem__("deadline", "2026-03-01"), "deadline"),
    "more signatures than signatories": (lambda ctx, b: b["parties"][0].__setitem__("required_signatures", 2),
                                         "parties[0].required_signatures"),
    "zero signatures": (lambda ctx, b: b["parties"][0].__setitem__("required_signatures", 0),
                        "parties[0].required_signatures"),
    "no parties": (lambda ctx, b: b.__setitem__("parties", []), "parties"),
    "no signatories": (lambda ctx, b: b["parties"][0].__setitem__("signatories", []), "parties[0].signatories"),
    "empty title": (lambda ctx, b: b.__setitem__("title", ""), "title"),
    "missing document": (lambda ctx, b: b.pop("document"), "document"),
    "unknown field": (lambda ctx, b: b.__setitem__("colour", "red"), "colour"),
    "coordinator who is not one": (lambda ctx, b: b.__setitem__(
        "coordinator_id", make_user(ctx, org_key="municipality:837").id), "coordinator_id"),
    "bad reminder offset": (lambda ctx, b: b.__setitem__("reminder_offsets", ["-P7D", "soon"]),
                            "reminder_offsets[1]"),
}


def test_bad_agreement_is_422_naming_the_field(ctx: AppContext, client: TestClient, coordinator: User) -> None:
    for case, (mutate, field) in BAD_AGREEMENTS.items():
        body = agreement_body(ctx)
        mutate(ctx, body)
        before = counts(ctx)
        r = client.post("/api/v1/agreements", json=body, headers=coordinator.headers)
        assert r.status_code == 422, f"{case}: {r.status_code} {r.text}"
        assert r.json()["error"] in ("InvalidInput", "ValidationError"), case
        assert r.json()["field"] == field, f"{case}: {r.json()}"
        assert field.split("[")[0].split(".")[0] in r.json()["detail"], case
        assert counts(ctx) == before, f"{case}: something was half-created"


# -- decisions and signatures ---------------------------------------------------------------------------------


@pytest.fixture
def fx(ctx: AppContext, coordinator: User) -> AgreementFixture:
    return create_agreement(ctx, parties=2, coordinator=coordinator)


BAD_DECISIONS = [
    ({"decided_on": "2026-02-30"}, "decided_on"),
    ({"decided_on": "2026-03-03"}, "decided_on"),  # tomorrow: not decided yet
    ({"section": "pykälä viisi"}, "section"),
    ({"outcome": "maybe"}, "outcome"),
    ({"minutes_url": "javascript:alert(1)"}, "minutes_url"),
    ({"body": ""}, "body"),
    ({"extra": 1}, "extra"),
    ({"body": None}, "body"),
]


def test_bad_decision_is_422_naming_the_field(ctx: AppContext, client: TestClient, fx: AgreementFixture) -> None:
    key = fx.keys[0]
    before = counts(ctx)
    for change, field in BAD_DECISIONS:
        r = client.post(f"/api/v1/agreements/{fx.id}/parties/{key}/decision", json=decision(**change),
                        headers=fx.signatories[key][0].headers)
        assert r.status_code == 422 and r.json()["field"] == field, f"{change}: {r.status_code} {r.text}"
    assert counts(ctx) == before


def test_decision_through_the_generic_trigger_names_the_field(client: TestClient, fx: AgreementFixture,
                                                              ctx: AppContext) -> None:
    key = fx.keys[0]
    party = client.get("/api/v1/cases", params={"parent_id": fx.id}, headers=fx.coordinator.headers).json()
    case_id = next(c["id"] for c in party["items"] if c["organisation"] == key)
    headers = fx.signatories[key][0].headers
    payload = {k: v for k, v in decision(decided_on="2026-02-30").items() if k != "outcome"}
    assert_error(client.post(f"/api/v1/cases/{case_id}/triggers/approve", json=payload, headers=headers),
                 422, "InvalidInput", "decided_on")
    assert_error(client.post(f"/api/v1/cases/{case_id}/triggers/approve", json={**payload, "decided_on": None},
                             headers=headers), 422, "InvalidInput", "decided_on")
    assert_error(client.post(f"/api/v1/cases/{case_id}/triggers/sign", json={"pen": "blue"}, headers=headers),
                 409, "InvalidTransition")  # the state is checked first: not approved yet
    payload["decided_on"] = "2026-03-02"
    r = client.post(f"/api/v1/cases/{case_id}/triggers/approve", json=payload, headers=headers)
    assert r.status_code == 200 and r.json()["state"] == "approved", r.text
    assert_error(client.post(f"/api/v1/cases/{case_id}/triggers/sign", json={"pen": "blue"}, headers=headers),
                 422, "InvalidInput", "pen")


def test_signing_before_approval_is_409_naming_what_is_allowed(client: TestClient, fx: AgreementFixture) -> None:
    key = fx.keys[0]
    r = client.post(f"/api/v1/agreements/{fx.id}/parties/{key}/signatures", headers=fx.signatories[key][0].headers)
    body = assert_error(r, 409, "Conflict")
    assert "approve" in body["detail"] and body["allowed"][:2] == ["approve", "decline"]


def test_unknown_party_and_agreement_are_404(client: TestClient, fx: AgreementFixture) -> None:
    headers = fx.coordinator.headers
    assert_error(client.post(f"/api/v1/agreements/{fx.id}/parties/municipality:091/decision", json=decision(),
                             headers=headers), 404, "NotFound")
    assert_error(client.get("/api/v1/agreements/987654", headers=headers), 404, "CaseNotFound")
    party_id = fx.id + 1  # a party case is a case, not an agreement
    assert client.get(f"/api/v1/agreements/{party_id}", headers=headers).status_code == 404


# -- stale versions and disallowed triggers ---------------------------------------------------------------------


def test_stale_if_match_is_409_and_changes_nothing(ctx: AppContext, client: TestClient,
                                                  coordinator: User) -> None:
    fx = create_agreement(ctx, parties=2, circulate=False, coordinator=coordinator)
    headers = coordinator.headers
    version = client.get(f"/api/v1/cases/{fx.id}", headers=headers).json()["version"]
    before = counts(ctx)
    for stale in (str(version - 1), f'"{version + 1}"', f'W/"{version - 1}"'):
        r = client.post(f"/api/v1/agreements/{fx.id}/circulate", headers={**headers, "If-Match": stale})
        assert_error(r, 409, "Conflict")
        r = client.put(f"/api/v1/agreements/{fx.id}/document", json={"text": "# Uusi\n"},
                       headers={**headers, "If-Match": stale})
        assert_error(r, 409, "Conflict")
        r = client.post(f"/api/v1/cases/{fx.id}/triggers/circulate", json={}, headers={**headers, "If-Match": stale})
        assert_error(r, 409, "Conflict")
    assert counts(ctx) == before
    assert_error(client.post(f"/api/v1/agreements/{fx.id}/circulate", headers={**headers, "If-Match": "soon"}),
                 422, "InvalidInput", "If-Match")
    r = client.post(f"/api/v1/agreements/{fx.id}/circulate", headers={**headers, "If-Match": f'"{version}"'})
    assert r.status_code == 200 and r.json()["state"] == "circulating", r.text
    assert r.json()["version"] == version + 1
    r = client.put(f"/api/v1/agreements/{fx.id}/document", json={"text": "# Uusi\n"},
                   headers={**headers, "If-Match": str(version)})  # now stale
    assert_error(r, 409, "Conflict")


def test_trigger_not_allowed_is_409_listing_the_allowed(client: TestClient, fx: AgreementFixture) -> None:
    headers = fx.coordinator.headers
    r = client.post(f"/api/v1/agreements/{fx.id}/circulate", headers=headers)
    body = assert_error(r, 409, "InvalidTransition")
    allowed = client.get(f"/api/v1/cases/{fx.id}", headers=headers).json()["allowed_triggers"]
    assert body["allowed"] == allowed and "withdraw" in allowed
    assert all(t in body["detail"] for t in allowed) and "circulating" in body["detail"]
    body = assert_error(client.post(f"/api/v1/cases/{fx.id}/triggers/fly_to_the_moon", json={}, headers=headers),
                        409, "InvalidTransition")
    assert body["allowed"] == allowed
    r = client.post(f"/api/v1/agreements/{fx.id}/terminate", json={"reason": "x", "end_date": "2026-12-31"},
                    headers=headers)
    assert_error(r, 409, "InvalidTransition")
    client.post(f"/api/v1/agreements/{fx.id}/withdraw", headers=headers)
    body = assert_error(client.post(f"/api/v1/agreements/{fx.id}/withdraw", headers=headers), 409,
                        "InvalidTransition")
    assert body["allowed"] == [] and "final" in body["detail"]


# -- malformed requests -----------------------------------------------------------------------------------------


MALFORMED = [  # body, content type, acceptable answers ({"error"} by status)
    (b"{not json", "application/json", {422}),
    (b'{"title": "x", ', "application/json", {422}),
    (b"[1, 2, 3]", "application/json", {422}),
    (b'"just a string"', "application/json", {422}),
    (b"\xff\xfe\x00", "application/json", {400}),  # not UTF-8: FastAPI cannot even start parsing
    (b"title=x", "application/x-www-form-urlencoded", {400, 422}),  # a form where JSON belongs
]


def test_malformed_body_is_4xx_never_500(ctx: AppContext, client: TestClient, fx: AgreementFixture) -> None:
    admin = make_user(ctx, roles="admin")
    before = counts(ctx)
    for content, content_type, statuses in MALFORMED:
        headers = {**admin.headers, "Content-Type": content_type}
        for method, url in (("POST", "/api/v1/agreements"), ("PUT", f"/api/v1/agreements/{fx.id}/document"),
                            ("POST", f"/api/v1/cases/{fx.id}/triggers/withdraw"), ("POST", "/api/v1/people"),
                            ("POST", f"/api/v1/agreements/{fx.id}/parties/{fx.keys[0]}/decision")):
            r = client.request(method, url, content=content, headers=headers)
            assert r.status_code in statuses, f"{content!r} {method} {url}: {r.status_code} {r.text}"
            assert r.json()["error"] == {400: "BadRequest", 422: "ValidationError"}[r.status_code]
            assert r.json()["detail"]
    assert counts(ctx) == before


def test_an_empty_body_is_no_payload(client: TestClient, fx: AgreementFixture) -> None:
    r = client.post(f"/api/v1/cases/{fx.id}/triggers/withdraw", content=b"",
                    headers={**fx.coordinator.headers, "Content-Type": "application/json"})
    assert r.status_code == 200 and r.json()["state"] == "withdrawn", r.text
    r = client.post("/api/v1/agreements", content=b"", headers={**fx.coordinator.headers,
                                                                 "Content-Type": "application/json"})
    assert_error(r, 422, "ValidationError", "body")


ODD_READS = [
    "/api/v1/cases/{big}", "/api/v1/cases/{big}/events", "/api/v1/agreements/{big}", "/api/v1/people/{big}",
    "/api/v1/cases/-1", "/api/v1/cases/abc", "/api/v1/agreements/1.5", "/api/v1/organisations/%00",
    "/api/v1/cases?limit=100000", "/api/v1/cases?state=" + "x" * 1000, "/api/v1/workflows/nope",
    "/api/v1/workflows/agreement?version=99", "/api/v1/cases?organisation=municipality:837&overdue=maybe",
    "/api/v1/people?organisation=%00",
]
NUL_SEARCHES = ["/api/v1/cases?state=%00", "/api/v1/organisations?q=%00", "/api/v1/cases?workflow=a%00b"]
BIG = [str(2**31), str(2**63), str(2**70)]  # beyond INTEGER (PostgreSQL), BIGINT, and anything


def test_odd_reads_are_4xx_never_500(client: TestClient, coordinator: User) -> None:
    for path in ODD_READS:
        for big in BIG:
            r = client.get(path.format(big=big), headers=coordinator.headers)
            assert 400 <= r.status_code < 500, f"{path.format(big=big)}: {r.status_code} {r.text[:300]}"
            assert r.json()["error"] and r.json()["detail"]
            if r.status_code == 422:
                assert r.json()["field"], r.json()
    for path in NUL_SEARCHES:  # SQLite simply finds nothing; PostgreSQL refuses NUL in text: 422, not 500
        r = client.get(path, headers=coordinator.headers)
        assert r.status_code in (200, 404, 422), f"{path}: {r.status_code} {r.text[:300]}"


def test_odd_writes_are_4xx_never_500(ctx: AppContext, client: TestClient, coordinator: User,
                                      fx: AgreementFixture) -> None:
    before = counts(ctx)
    for big in BIG:
        odd_writes(ctx, client, coordinator, big)
    assert counts(ctx) == before


def odd_writes(ctx: AppContext, client: TestClient, coordinator: User, big: str) -> None:
    headers = coordinator.headers
    attempts = [
        ("POST", f"/api/v1/cases/{big}/triggers/circulate", {}),
        ("POST", f"/api/v1/agreements/{big}/circulate", None),
        ("POST", f"/api/v1/agreements/{big}/parties/municipality:837/decision", decision()),
        ("POST", "/api/v1/agreements", {**agreement_body(ctx), "coordinator_id": int(big)}),
        ("POST", "/api/v1/agreements", {**agreement_body(ctx), "parties": [
            {"organisation": "municipality:837", "signatories": [int(big)]}]}),
        ("PATCH", f"/api/v1/people/{big}", {"title": "x"}),
    ]
    for method, url, json in attempts:
        r = client.request(method, url, json=json, headers={**headers, "If-Match": big})
        assert 400 <= r.status_code < 500, f"{method} {url}: {r.status_code} {r.text[:300]}"
