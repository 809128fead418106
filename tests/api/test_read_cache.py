"""The agreement read's cache (`api.readcache`): a cached body is served only while nothing it shows has changed.

Renames of an organisation or a person shown in the body, and transitions, change the fingerprint (and so the
ETag) even when they are written outside this process; the cache is keyed on the reader's access level too, and
never answers before the access check. Each test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlmodel import Session, col

import api.readcache
from api.app import create_app
from api.context import AppContext
from api.readcache import BodyCache
from engine.models import ApiToken, Organisation, Person
from tests.support.builders import create_agreement, decision, make_user
from workflows.agreement import service
from workflows.agreement.read import agreement_json


def _reads(client: TestClient) -> Any:
    return client.app.state.agreement_reads  # type: ignore[attr-defined]


def _write(ctx: AppContext, stmt: Any) -> None:
    """Change a row as another process would: committed, never through this app."""
    with Session(ctx.db.engine) as session:
        session.execute(stmt)
        session.commit()


def test_a_repeated_read_is_served_from_the_cache_byte_for_byte(ctx: AppContext) -> None:
    fx = create_agreement(ctx, parties=4, signatures=2)
    client = TestClient(create_app(ctx=ctx))
    url = f"/api/v1/agreements/{fx.id}"
    first = client.get(url, headers=fx.coordinator.headers)
    hits = _reads(client).cache.hits
    second = client.get(url, headers=fx.coordinator.headers)
    assert first.status_code == second.status_code == 200
    assert _reads(client).cache.hits == hits + 1
    assert second.content == first.content and second.headers["ETag"] == first.headers["ETag"]
    with Session(ctx.db.engine) as session:
        assert second.content == agreement_json(session, fx.id)


def test_renaming_an_organisation_or_a_signatory_elsewhere_changes_the_body_and_the_etag(ctx: AppContext) -> None:
    fx = create_agreement(ctx, parties=3)
    client = TestClient(create_app(ctx=ctx))
    url = f"/api/v1/agreements/{fx.id}"
    key = fx.keys[0]
    signer = fx.signatories[key][0]
    before = client.get(url, headers=fx.coordinator.headers)
    assert client.get(url, headers=fx.coordinator.headers).content == before.content  # cached now
    _write(ctx, update(Organisation).where(col(Organisation.key) == key).values(name_fi="Uusi kunta"))
    renamed = client.get(url, headers={**fx.coordinator.headers, "If-None-Match": before.headers["ETag"]})
    assert renamed.status_code == 200 and renamed.headers["ETag"] != before.headers["ETag"]
    party = next(p for p in renamed.json()["parties"] if p["organisation"] == key)
    assert party["organisation_name"] == "Uusi kunta"

    _write(ctx, update(Person).where(col(Person.id) == signer.id).values(name="Uusi Allekirjoittaja"))
    again = client.get(url, headers=fx.coordinator.headers)
    party = next(p for p in again.json()["parties"] if p["organisation"] == key)
    assert [s["name"] for s in party["signatories"] if s["person_id"] == signer.id] == ["Uusi Allekirjoittaja"]
    assert again.headers["ETag"] != renamed.headers["ETag"]


def test_a_transition_replaces_the_cached_body(ctx: AppContext) -> None:
    fx = create_agreement(ctx, parties=3)
    client = TestClient(create_app(ctx=ctx))
    url = f"/api/v1/agreements/{fx.id}"
    key = fx.keys[1]
    before = client.get(url, headers=fx.coordinator.headers)
    client.get(url, headers=fx.coordinator.headers)
    assert client.post(f"{url}/parties/{key}/decision", json=decision(),
                       headers=fx.signatories[key][0].headers).status_code == 201
    after = client.get(url, headers=fx.coordinator.headers)
    assert after.headers["ETag"] != before.headers["ETag"]
    assert next(p for p in after.json()["parties"] if p["organisation"] == key)["state"] == "approved"
    assert len(_reads(client).cache) == 1  # the case's newer body replaced the older one


def test_a_transition_of_the_agreement_itself_replaces_the_cached_body(ctx: AppContext) -> None:
    """The agreement's own row is in the fingerprint too (it has no organisation: an outer join's NULLs once
    dropped it from the aggregate, and only its parties' changes showed)."""
    fx = create_agreement(ctx, parties=2, circulate=False)
    client = TestClient(create_app(ctx=ctx))
    url = f"/api/v1/agreements/{fx.id}"
    before = client.get(url, headers=fx.coordinator.headers)
    assert client.get(url, headers=fx.coordinator.headers).json()["state"] == before.json()["state"]
    ctx.engine.run(lambda uow: service.circulate(uow, fx.id, fx.coordinator.actor))
    after = client.get(url, headers={**fx.coordinator.headers, "If-None-Match": before.headers["ETag"]})
    assert after.status_code == 200 and after.headers["ETag"] != before.headers["ETag"]
    assert after.json()["state"] != before.json()["state"]
    assert after.json()["version"] == before.json()["version"] + 1


def test_the_cache_never_answers_before_the_access_check(ctx: AppContext) -> None:
    fx = create_agreement(ctx, parties=3)
    client = TestClient(create_app(ctx=ctx))
    url = f"/api/v1/agreements/{fx.id}"
    party = fx.signatories[fx.keys[0]][0]
    full = client.get(url, headers=fx.coordinator.headers)
    shared = client.get(url, headers=party.headers)
    assert full.status_code == shared.status_code == 200
    assert len(_reads(client).cache) == 2  # one body per access level: FULL and SHARED never share an entry

    stranger = make_user(ctx, org_key="municipality:091")  # Helsinki: not a party
    for headers in (stranger.headers, {**stranger.headers, "If-None-Match": full.headers["ETag"]}):
        refused = client.get(url, headers=headers)
        assert refused.status_code == 404 and "ETag" not in refused.headers
    assert client.get(url).status_code == 401
    assert client.get(url, headers={"Authorization": "Bearer not-a-token"}).status_code == 401

    _write(ctx, update(ApiToken).where(col(ApiToken.person_id) == party.id).values(revoked_at=datetime.now(UTC)))
    assert client.get(url, headers=party.headers).status_code == 401
    _write(ctx, update(Person).where(col(Person.id) == fx.coordinator.id).values(active=False))
    assert client.get(url, headers=fx.coordinator.headers).status_code == 401


def test_a_case_that_is_not_an_agreement_is_404_for_its_reader(ctx: AppContext) -> None:
    fx = create_agreement(ctx, parties=2)
    client = TestClient(create_app(ctx=ctx))
    party_case = client.get(f"/api/v1/agreements/{fx.id + 1}", headers=fx.coordinator.headers)  # a party case
    assert party_case.status_code == 404


def test_a_body_built_across_a_concurrent_write_is_not_kept_for_the_older_fingerprint(
        ctx: AppContext, monkeypatch: pytest.MonkeyPatch) -> None:
    """A rename committed between the fingerprint and the body, then undone: the older fingerprint is current
    again, and only a body of that state may be served for it (PostgreSQL reads each statement at its own time:
    without the second fingerprint the renamed body would be kept; SQLite reads one snapshot)."""
    fx = create_agreement(ctx, parties=2)
    client = TestClient(create_app(ctx=ctx))
    url = f"/api/v1/agreements/{fx.id}"
    key = fx.keys[0]
    name = client.get(url, headers=fx.coordinator.headers).json()["parties"][0]["organisation_name"]
    _reads(client).cache = BodyCache()  # nothing cached: the next read builds its body
    real = agreement_json

    def rename_then_build(session: Session, agreement_id: int) -> bytes:
        _write(ctx, update(Organisation).where(col(Organisation.key) == key).values(name_fi="Hetken nimi"))
        return real(session, agreement_id)

    monkeypatch.setattr(api.readcache, "agreement_json", rename_then_build)
    client.get(url, headers=fx.coordinator.headers)
    monkeypatch.setattr(api.readcache, "agreement_json", real)
    _write(ctx, update(Organisation).where(col(Organisation.key) == key).values(name_fi=name))  # undone
    after = client.get(url, headers=fx.coordinator.headers)
    assert after.json()["parties"][0]["organisation_name"] == name
    with Session(ctx.db.engine) as session:
        assert after.content == real(session, fx.id)


def test_the_body_cache_is_bounded_in_entries_and_bytes() -> None:
    cache = BodyCache(max_entries=2, max_bytes=10)
    cache.put(1, 3, b"a", b"1234")
    cache.put(2, 3, b"a", b"1234")
    assert cache.get(1, 3, b"a") == b"1234"  # 1 is now the most recently used
    cache.put(3, 3, b"a", b"12")
    assert cache.get(2, 3, b"a") is None and cache.get(1, 3, b"a") == b"1234" and len(cache) == 2
    cache.put(1, 3, b"b", b"123456")  # a newer body of case 1 replaces its older one
    assert cache.get(1, 3, b"a") is None and cache.get(1, 3, b"b") == b"123456"
    assert cache.get(1, 1, b"b") is None  # another access level is another entry
    cache.put(4, 3, b"a", b"12345")  # 6 + 5 bytes > 10: the least recently used goes
    assert len(cache) <= 2 and cache.get(4, 3, b"a") == b"12345"
    cache.put(5, 3, b"a", b"x" * 11)  # larger than the whole cache: not kept
    assert cache.get(5, 3, b"a") is None
