"""`GET /api/v1/agreements/{id}`: the JSON built without validation equals the model's, ETag and 304 (issue 11).

The ETag changes with every transition of the agreement or of a party; `If-None-Match` with the current one is a
304 without a body; a party's ETag is keyed, so it says nothing but "changed or not"; the access check comes
before the 304 (a stranger gets the same 404 as for an unknown id). Each test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import dataclasses

from fastapi.testclient import TestClient
from pydantic import TypeAdapter
from sqlmodel import Session

from api.app import create_app
from api.context import AppContext
from api.readcache import AgreementReads
from tests.support.builders import create_agreement, decision, make_user
from workflows.agreement import service
from workflows.agreement.read import agreement_json, etag_matches, read_agreement
from workflows.agreement.schemas import AgreementRead, DecisionIn


def test_the_unvalidated_json_equals_the_models_byte_for_byte(ctx: AppContext) -> None:
    fx = create_agreement(ctx, parties=4, signatures=2)
    a, b, c = fx.keys[:3]
    principal, substitute = fx.signatories[a]
    as_substitute = dataclasses.replace(substitute.actor, on_behalf_of_person_id=principal.id)
    body = DecisionIn.model_validate(decision(note="Yksimielinen"))
    ctx.engine.run(lambda uow: service.decide(uow, fx.id, a, body, as_substitute))
    ctx.engine.run(lambda uow: service.sign(uow, fx.id, a, as_substitute))
    ctx.engine.run(lambda uow: service.sign(uow, fx.id, a, substitute.actor))
    ctx.engine.run(lambda uow: service.decide(uow, fx.id, b, body, fx.signatories[b][0].actor))
    ctx.engine.run(lambda uow: service.decide(uow, fx.id, c, DecisionIn.model_validate(decision("declined")),
                                              fx.signatories[c][0].actor))
    with Session(ctx.db.engine) as session:
        model = read_agreement(session, fx.id)
        fast = agreement_json(session, fx.id)
    assert model.parties[0].decision is not None and model.parties[0].decision.on_behalf_of_name
    assert any(s.substitute_name for s in model.parties[0].signatures)
    assert fast == TypeAdapter(AgreementRead).dump_json(model)


def test_the_etag_changes_with_a_transition_and_if_none_match_gives_304(ctx: AppContext) -> None:
    fx = create_agreement(ctx, parties=3)
    client = TestClient(create_app(ctx=ctx))
    url = f"/api/v1/agreements/{fx.id}"
    first = client.get(url, headers=fx.coordinator.headers)
    assert first.status_code == 200
    etag = first.headers["ETag"]
    assert etag.startswith('W/"') and first.json()["id"] == fx.id

    same = client.get(url, headers={**fx.coordinator.headers, "If-None-Match": etag})
    assert same.status_code == 304
    assert same.content == b"" and same.headers["ETag"] == etag
    other = client.get(url, headers={**fx.coordinator.headers, "If-None-Match": 'W/"something-else"'})
    assert other.status_code == 200 and other.json() == first.json()

    key = fx.keys[1]  # a party's decision moves its party case only: the agreement's ETag must still change
    decided = client.post(f"{url}/parties/{key}/decision", json=decision(), headers=fx.signatories[key][0].headers)
    assert decided.status_code == 201
    after = client.get(url, headers={**fx.coordinator.headers, "If-None-Match": etag})
    assert after.status_code == 200
    assert after.headers["ETag"] != etag
    assert next(p for p in after.json()["parties"] if p["organisation"] == key)["state"] == "approved"
    assert client.get(url, headers={**fx.coordinator.headers, "If-None-Match": after.headers["ETag"]}
                      ).status_code == 304


def test_a_party_readers_etag_is_keyed_and_a_stranger_gets_404_not_304(ctx: AppContext) -> None:
    fx = create_agreement(ctx, parties=3)
    client = TestClient(create_app(ctx=ctx))
    url = f"/api/v1/agreements/{fx.id}"
    party = fx.signatories[fx.keys[0]][0]
    read = client.get(url, headers=party.headers)
    assert read.status_code == 200
    etag = read.headers["ETag"]
    # the tag is a keyed hash: neither the versions nor the count of parties can be read off it
    with Session(ctx.db.engine) as session:  # the route's ETag: api.readcache's fingerprint, keyed
        assert AgreementReads(ctx.db.engine.dialect, ctx.settings.secret_key).etag(session, fx.id) == etag
        assert AgreementReads(ctx.db.engine.dialect, "another key").etag(session, fx.id) != etag
    for visible in (str(fx.id), str(read.json()["version"]), "3"):
        assert f":{visible}:" not in etag
    assert client.get(url, headers={**party.headers, "If-None-Match": etag}).status_code == 304

    stranger = make_user(ctx, org_key="municipality:091")  # Helsinki: not a party
    for tag in (etag, "*"):
        refused = client.get(url, headers={**stranger.headers, "If-None-Match": tag})
        assert refused.status_code == 404
        assert "ETag" not in refused.headers
    unknown = client.get(f"/api/v1/agreements/{fx.id + 999}", headers={**stranger.headers, "If-None-Match": "*"})
    assert refused.json()["detail"].replace(str(fx.id), "?") == unknown.json()["detail"].replace(str(fx.id + 999), "?")
    anonymous = client.get(url, headers={"If-None-Match": etag})
    assert anonymous.status_code == 401


def test_if_none_match_compares_weakly_and_lists() -> None:
    tag = 'W/"abc"'
    assert etag_matches('W/"abc"', tag) and etag_matches('"abc"', tag) and etag_matches('"x", W/"abc"', tag)
    assert etag_matches("*", tag)
    assert not etag_matches(None, tag) and not etag_matches('"abcd"', tag) and not etag_matches("", tag)
