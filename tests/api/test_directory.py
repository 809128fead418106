"""The register through the API: organisation search and look-up, yearly re-import, people and personal tokens."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from sqlmodel import Session

from api.app import create_app
from api.context import AppContext
from engine.directory import DEFAULT_ORGANISATIONS, import_organisations
from engine.models import ApiToken, Case, Organisation
from tests.support.builders import User, create_agreement, make_user


@pytest.fixture
def admin(ctx: AppContext) -> User:
    return make_user(ctx, roles="admin", name="Pääkäyttäjä")


@pytest.fixture
def client(ctx: AppContext) -> TestClient:
    return TestClient(create_app(ctx=ctx))


def org_ids(ctx: AppContext) -> dict[str, int]:
    with Session(ctx.db.engine) as session:
        return dict(session.execute(select(Organisation.key, Organisation.id)).all())  # type: ignore[arg-type]


# -- organisations ------------------------------------------------------------------------------------------


def test_the_whole_register_is_imported(client: TestClient, admin: User) -> None:
    r = client.get("/api/v1/organisations", params={"limit": 1}, headers=admin.headers)
    assert r.status_code == 200 and r.json()["total"] == 368
    expected = {"municipality": 308, "region": 19, "regional_council": 18, "wellbeing_county": 22,
                "association": 1}
    for kind, n in expected.items():
        body = client.get("/api/v1/organisations", params={"kind": kind, "limit": 1}, headers=admin.headers).json()
        assert body["total"] == n, kind


def test_search_by_name_kind_and_region(client: TestClient, ctx: AppContext) -> None:
    user = make_user(ctx, org_key="municipality:091")  # any signed-in person may read the register
    get = lambda **params: client.get("/api/v1/organisations", params=params, headers=user.headers)  # noqa: E731
    keys = [o["key"] for o in get(q="TAMPERE").json()["items"]]
    assert "municipality:837" in keys
    assert [o["key"] for o in get(q="tammerfors").json()["items"]] == ["municipality:837"]  # the Swedish name
    pirkanmaa = get(kind="municipality", region="06", limit=500).json()
    assert pirkanmaa["total"] == 23
    assert all(o["region_code"] == "06" and o["kind"] == "municipality" for o in pirkanmaa["items"])
    assert get(q="liitto", kind="regional_council").json()["total"] == 18  # "Satakuntaliitto" too
    assert get(q="liitto", kind="municipality").json()["total"] == 0
    page = get(kind="municipality", limit=10, offset=300).json()
    assert page["total"] == 308 and len(page["items"]) == 8
    assert get(q="no such place anywhere").json() == {"items": [], "total": 0, "limit": 100, "offset": 0}
    r = get(kind="kingdom")
    assert r.status_code == 422 and r.json()["field"] == "kind"
    r = get(limit=0)
    assert r.status_code == 422 and r.json()["field"] == "limit"


def test_organisation_by_key(client: TestClient, admin: User) -> None:
    r = client.get("/api/v1/organisations/municipality:837", headers=admin.headers)
    assert r.status_code == 200
    assert r.json() == {"key": "municipality:837", "kind": "municipality", "code": "837", "name_fi": "Tampere",
                        "name_sv": "Tammerfors", "region_code": "06", "wellbeing_county_code": "08",
                        "active": True}
    for unknown in ("municipality:999", "837", "kingdom:837"):
        r = client.get(f"/api/v1/organisations/{unknown}", headers=admin.headers)
        assert r.status_code == 404, unknown
        assert r.json()["error"] == "NotFound" and unknown in r.json()["detail"]


def test_reimport_keeps_ids_and_links_to_cases(ctx: AppContext, client: TestClient, admin: User,
                                               tmp_path: Path) -> None:
    fx = create_agreement(ctx, parties=3)
    dropped, renamed = fx.keys[1], "municipality:837"
    before = org_ids(ctx)
    with DEFAULT_ORGANISATIONS.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    edited = tmp_path / "organisations_2027.csv"
    with edited.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        for row in rows:
            key = f"{row['kind']}:{row['code']}"
            if key == dropped:
                continue
            if key == renamed:
                row = {**row, "name_fi": "Tampereen kaupunki"}
            writer.writerow(row)
    with Session(ctx.db.engine) as session:
        stats = import_organisations(session, edited, ctx.clock.now())
        session.commit()
    assert (stats.created, stats.updated, stats.unchanged, stats.deactivated) == (0, 1, 366, 1)
    assert org_ids(ctx) == before  # nothing deleted, nothing renumbered
    tampere = client.get(f"/api/v1/organisations/{renamed}", headers=admin.headers).json()
    assert tampere["name_fi"] == "Tampereen kaupunki"
    gone = client.get(f"/api/v1/organisations/{dropped}", headers=admin.headers).json()
    assert gone["active"] is False
    listed = client.get("/api/v1/organisations", params={"limit": 1}, headers=admin.headers).json()
    assert listed["total"] == 367
    inactive = client.get("/api/v1/organisations", params={"active": False}, headers=admin.headers).json()
    assert [o["key"] for o in inactive["items"]] == [dropped]
    # the agreement still names the dropped party, through the same organisation row
    agreement = client.get(f"/api/v1/agreements/{fx.id}", headers=admin.headers).json()
    assert [p["organisation"] for p in agreement["parties"]] == fx.keys
    with Session(ctx.db.engine) as session:
        party_orgs = session.execute(select(Case.organisation_id).where(Case.parent_id == fx.id)
                                     .order_by(Case.id)).scalars().all()
    assert party_orgs == [before[k] for k in fx.keys]
    # a new agreement cannot name an inactive organisation
    coordinator = fx.coordinator
    body = {"title": "Uusi", "document": "# Uusi\n", "deadline": "2026-06-19",
            "parties": [{"organisation": dropped, "signatories": [fx.signatories[dropped][0].id]}]}
    r = client.post("/api/v1/agreements", json=body, headers=coordinator.headers)
    assert r.status_code == 422 and r.json()["field"] == "parties[0].organisation", r.text
    # importing last year's file again brings it back, under its old id
    with Session(ctx.db.engine) as session:
        stats = import_organisations(session, DEFAULT_ORGANISATIONS, ctx.clock.now())
        session.commit()
    assert (stats.created, stats.updated, stats.deactivated) == (0, 2, 0)
    assert org_ids(ctx) == before
    assert client.get(f"/api/v1/organisations/{dropped}", headers=admin.headers).json()["active"] is True


# -- people -------------------------------------------------------------------------------------------------


def person_body(**overrides: object) -> dict[str, object]:
    body: dict[str, object] = {"name": "Maija Meikäläinen", "email": "maija.meikalainen@tampere.fi",
                               "language": "fi", "organisation": "municipality:837", "roles": ["signatory"],
                               "title": "Kaupunginjohtaja"}
    body.update(overrides)
    return body


def test_people_create_list_get_update(client: TestClient, admin: User) -> None:
    r = client.post("/api/v1/people", json=person_body(), headers=admin.headers)
    assert r.status_code == 201, r.text
    maija = r.json()
    assert {k: maija[k] for k in ("name", "email", "language", "organisation", "roles", "title", "active")} == {
        "name": "Maija Meikäläinen", "email": "maija.meikalainen@tampere.fi", "language": "fi",
        "organisation": "municipality:837", "roles": ["signatory"], "title": "Kaupunginjohtaja", "active": True}
    r = client.post("/api/v1/people", json=person_body(name="Sven Svensson", email="Sven@Vasa.FI", language="sv",
                                                       organisation="municipality:905",
                                                       roles=["signatory", "coordinator"]), headers=admin.headers)
    assert r.status_code == 201 and r.json()["email"] == "sven@vasa.fi"
    sven = r.json()
    assert client.get(f"/api/v1/people/{maija['id']}", headers=admin.headers).json() == maija
    everyone = client.get("/api/v1/people", headers=admin.headers).json()
    assert {p["id"] for p in everyone["items"]} >= {maija["id"], sven["id"], admin.id}
    tampere = client.get("/api/v1/people", params={"organisation": "municipality:837"}, headers=admin.headers)
    assert [p["id"] for p in tampere.json()["items"]] == [maija["id"]]
    coordinators = client.get("/api/v1/people", params={"role": "coordinator"}, headers=admin.headers).json()
    assert [p["id"] for p in coordinators["items"]] == [sven["id"]]
    r = client.patch(f"/api/v1/people/{maija['id']}", headers=admin.headers,
                     json={"title": "Pormestari", "roles": ["signatory", "coordinator"], "language": "en"})
    assert r.status_code == 200, r.text
    assert (r.json()["title"], r.json()["roles"], r.json()["language"]) == (
        "Pormestari", ["coordinator", "signatory"], "en")
    assert r.json()["name"] == "Maija Meikäläinen"  # omitted fields stay
    r = client.patch(f"/api/v1/people/{maija['id']}", json={"organisation": None}, headers=admin.headers)
    assert r.status_code == 200 and r.json()["organisation"] is None
    assert client.get("/api/v1/people/99999", headers=admin.headers).status_code == 404
    assert client.patch("/api/v1/people/99999", json={"title": "x"}, headers=admin.headers).status_code == 404


def test_duplicate_email_is_409(client: TestClient, admin: User) -> None:
    first = client.post("/api/v1/people", json=person_body(), headers=admin.headers).json()
    r = client.post("/api/v1/people", json=person_body(email="MAIJA.Meikalainen@tampere.fi"), headers=admin.headers)
    assert r.status_code == 409 and r.json()["error"] == "Conflict", r.text
    other = client.post("/api/v1/people", json=person_body(email="toinen@tampere.fi"), headers=admin.headers).json()
    r = client.patch(f"/api/v1/people/{other['id']}", json={"email": first["email"]}, headers=admin.headers)
    assert r.status_code == 409, r.text
    r = client.patch(f"/api/v1/people/{first['id']}", json={"email": first["email"]}, headers=admin.headers)
    assert r.status_code == 200  # keeping your own address is no conflict


BAD_PEOPLE = [
    (person_body(organisation="municipality:999"), "organisation"),
    (person_body(organisation="Tampere"), "organisation"),
    (person_body(email="not-an-address"), "email"),
    (person_body(language="de"), "language"),
    (person_body(roles=["king"]), "roles[0]"),
    (person_body(name=""), "name"),
    (person_body(shoe_size=44), "shoe_size"),
    ({k: v for k, v in person_body().items() if k != "email"}, "email"),
]


def test_bad_person_is_422_naming_the_field(client: TestClient, admin: User) -> None:
    for body, field in BAD_PEOPLE:
        r = client.post("/api/v1/people", json=body, headers=admin.headers)
        assert r.status_code == 422, f"{field}: {r.text}"
        assert r.json()["field"] == field and field.split("[")[0] in r.json()["detail"], r.json()
    assert client.get("/api/v1/people", headers=admin.headers).json()["total"] == 1  # only the admin


BAD_UPDATES = [
    ({"organisation": "municipality:999"}, "organisation"),
    ({"name": None}, "name"), ({"email": None}, "email"), ({"active": None}, "active"),
    ({"language": "xx"}, "language"), ({"roles": ["signatory", "emperor"]}, "roles[1]"),
]


def test_bad_update_is_422_naming_the_field(client: TestClient, admin: User) -> None:
    person = client.post("/api/v1/people", json=person_body(), headers=admin.headers).json()
    for change, field in BAD_UPDATES:
        r = client.patch(f"/api/v1/people/{person['id']}", json=change, headers=admin.headers)
        assert r.status_code == 422, f"{change}: {r.text}"
        assert r.json()["field"] == field, r.json()
        assert client.get(f"/api/v1/people/{person['id']}", headers=admin.headers).json() == person


# -- tokens -------------------------------------------------------------------------------------------------


def test_tokens_are_shown_once_and_stored_hashed(ctx: AppContext, client: TestClient, admin: User) -> None:
    person = client.post("/api/v1/people", json=person_body(), headers=admin.headers).json()
    r = client.post(f"/api/v1/people/{person['id']}/tokens", json={"label": "kannettava"}, headers=admin.headers)
    assert r.status_code == 201, r.text
    issued = r.json()
    token = issued["token"]
    assert issued["person_id"] == person["id"] and issued["label"] == "kannettava"
    assert len(token) > 40
    second = client.post(f"/api/v1/people/{person['id']}/tokens", headers=admin.headers).json()["token"]
    assert second != token
    for t in (token, second):
        me = client.get(f"/api/v1/people/{person['id']}", headers={"Authorization": f"Bearer {t}"})
        assert me.status_code == 200 and token not in me.text
    with Session(ctx.db.engine) as session:
        stored = session.execute(select(ApiToken).where(ApiToken.person_id == person["id"])).scalars().all()
        assert sorted(t.token_hash for t in stored) == sorted(
            hashlib.sha256(t.encode()).hexdigest() for t in (token, second))
        dump = " ".join(str(v) for row in session.execute(text("SELECT * FROM api_token")) for v in row)
    assert token not in dump and second not in dump  # only the hash is kept
    listed = client.get("/api/v1/people", headers=admin.headers).text
    assert token not in listed
    assert client.post("/api/v1/people/99999/tokens", headers=admin.headers).status_code == 404
