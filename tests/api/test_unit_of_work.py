"""One request, one unit of work: the text a person saw is checked under the lock, refusals write nothing,
the allowed triggers are the actor's own, and a safe request cannot write."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlmodel import Session

from api.app import create_app
from api.unit import RequestWork
from engine.models import Case, Event, Person
from tests.support.builders import create_agreement, decision
from tests.web.support import csrf_of, sha_of, sign_in, web_client
from workflows.agreement.models import Decision, Signature


def _counts(ctx) -> tuple[int, int, int]:  # type: ignore[no-untyped-def]
    with Session(ctx.db.engine) as session:
        return (session.scalar(select(func.count()).select_from(Event)) or 0,
                session.scalar(select(func.count()).select_from(Decision)) or 0,
                session.scalar(select(func.count()).select_from(Signature)) or 0)


def _revise(client: TestClient, fx, text: str = "# Uusi teksti\n\nMuutettu.") -> dict:  # type: ignore[no-untyped-def]
    r = client.put(f"/api/v1/agreements/{fx.id}/document", json={"text": text}, headers=fx.coordinator.headers)
    assert r.status_code == 200, r.text
    return r.json()


def test_rest_decision_on_a_revised_text_is_409_naming_the_current_version_and_writes_nothing(ctx) -> None:
    fx = create_agreement(ctx, parties=2, signatures=1)
    key = fx.keys[0]
    me = fx.signatories[key][0]
    client = TestClient(create_app(ctx=ctx))
    with client:
        seen = client.get(f"/api/v1/agreements/{fx.id}", headers=me.headers).json()["document_sha256"]
        current = _revise(client, fx)  # the coordinator revises between "read" and "decide"
        before = _counts(ctx)
        r = client.post(f"/api/v1/agreements/{fx.id}/parties/{key}/decision",
                        json={**decision(), "document_sha256": seen}, headers={**me.headers, "Accept-Language": "sv"})
        assert r.status_code == 409, r.text
        body = r.json()
        assert body["error"] == "Conflict" and body["message_id"] == "agreement.error.revised_to"
        assert body["current_version"] == 2 and body["current_sha256"] == current["document_sha256"]
        assert "version 2" in body["message"] and "Ingenting sparades" in body["message"]
        assert _counts(ctx) == before
        ok = client.post(f"/api/v1/agreements/{fx.id}/parties/{key}/decision",
                         json={**decision(), "document_sha256": current["document_sha256"]}, headers=me.headers)
        assert ok.status_code == 201, ok.text
        assert ok.json()["decision"]["document_sha256"] == current["document_sha256"]
        stale_sign = client.post(f"/api/v1/agreements/{fx.id}/parties/{key}/signatures",
                                 json={"document_sha256": seen}, headers=me.headers)
        assert stale_sign.status_code == 409 and stale_sign.json()["current_version"] == 2
        assert _counts(ctx)[2] == before[2]  # no signature
        signed = client.post(f"/api/v1/agreements/{fx.id}/parties/{key}/signatures",
                             json={"document_sha256": current["document_sha256"]}, headers=me.headers)
        assert signed.status_code == 201, signed.text
        bad = client.post(f"/api/v1/agreements/{fx.id}/parties/{key}/signatures",
                          json={"document_sha256": "not-a-hash"}, headers=me.headers)
        assert bad.status_code == 422 and bad.json()["field"] == "document_sha256"


def test_web_decision_after_a_revision_between_opening_and_pressing_is_409_and_writes_nothing(ctx) -> None:
    fx = create_agreement(ctx, parties=2, signatures=1)
    key = fx.keys[0]
    me = fx.signatories[key][0]
    api = TestClient(create_app(ctx=ctx))
    with web_client(ctx) as client, api:
        sign_in(client, ctx, me.id, fx.id + 1)
        page = client.get(f"/agreements/{fx.id}").text  # "open the page"
        _revise(api, fx)
        before = _counts(ctx)
        form = {"party": key, "outcome": "approved", "body": "Kunnanhallitus", "decided_on": "2.3.2026",
                "section": "§ 58", "csrf_token": csrf_of(page), "sha256": sha_of(page)}
        r = client.post(f"/agreements/{fx.id}/decision", data=form)  # "press decide"
        assert r.status_code == 409
        assert "Tekstiä on muokattu" in r.text and "versio 2" in r.text and "Mitään ei tallennettu" in r.text
        assert _counts(ctx) == before
        fresh = client.get(f"/agreements/{fx.id}").text
        again = client.post(f"/agreements/{fx.id}/decision", data={**form, "sha256": sha_of(fresh),
                                                                    "csrf_token": csrf_of(fresh)})
        assert again.status_code == 303
        assert _counts(ctx)[1] == before[1] + 1


def test_allowed_triggers_are_those_of_the_asking_actor(ctx) -> None:
    fx = create_agreement(ctx, parties=2, signatures=1)
    me = fx.signatories[fx.keys[0]][0]
    party_id = fx.id + 1
    client = TestClient(create_app(ctx=ctx))
    with client:
        mine = client.get(f"/api/v1/cases/{party_id}", headers=me.headers).json()["allowed_triggers"]
        coord = client.get(f"/api/v1/cases/{party_id}", headers=fx.coordinator.headers).json()["allowed_triggers"]
        agreement = client.get(f"/api/v1/cases/{fx.id}", headers=me.headers).json()["allowed_triggers"]
        coordinated = client.get(f"/api/v1/cases/{fx.id}", headers=fx.coordinator.headers).json()["allowed_triggers"]
    assert mine == ["approve", "decline"]  # not the system's reinvite, mark_overdue or release
    assert coord == ["approve", "decline"]  # the coordinator may record a party's decision, never sign for it
    assert agreement == []  # a party runs nothing on the agreement itself
    assert coordinated == ["revise", "withdraw"]


def test_a_refusal_rolls_back_what_the_request_wrote_and_a_safe_request_cannot_write(ctx) -> None:
    fx = create_agreement(ctx, parties=2, signatures=1)
    me = fx.signatories[fx.keys[0]][0]
    work = RequestWork(ctx.engine, writes=True)
    person = work.session.get(Person, me.id)
    assert person is not None
    person.name = "Kirjoitettu ennen virhettä"

    def fails(uow) -> None:  # type: ignore[no-untyped-def]
        uow.session.get(Person, me.id).title = "osittainen"
        uow.fire(fx.id, "enter_into_force", payload={"sha256": "0" * 64})  # its guard refuses: not all signed

    try:
        work.run(fails)
    except Exception as exc:  # noqa: BLE001 - the refusal itself is asserted below
        assert type(exc).__name__ == "GuardRejected"
    else:
        raise AssertionError("entering into force before every party signed was not refused")
    work.finish()
    with Session(ctx.db.engine) as session:
        stored = session.get(Person, me.id)
        assert stored is not None and stored.title != "osittainen"  # the refused call's write was undone
        assert stored.name == "Kirjoitettu ennen virhettä"  # the request's earlier write committed
    read = RequestWork(ctx.engine, writes=False)
    case = read.session.get(Case, fx.id)
    assert case is not None
    case.title = "muutettu GET-pyynnössä"
    try:
        read.session.flush()
    except RuntimeError as exc:
        assert "may not write" in str(exc)
    else:
        raise AssertionError("a safe request's session flushed a write")
    finally:
        read.abort()


def test_a_transition_then_a_failure_in_the_first_run_of_a_request_is_undone(ctx) -> None:
    """The first thing a request does is a transition (written through the engine's own cursor), then its
    service raises: the savepoint must already be in place, so the state write and its event are undone too."""
    from workflows.agreement import service as agreements

    fx = create_agreement(ctx, parties=2, signatures=1, circulate=False)
    with Session(ctx.db.engine) as session:
        before = session.get(Case, fx.id)
        assert before is not None
        state, version = before.state, before.version
    events = _counts(ctx)[0]
    work = RequestWork(ctx.engine, writes=True)

    def circulates_then_fails(uow) -> None:  # type: ignore[no-untyped-def]
        agreements.circulate(uow, fx.id, fx.coordinator.actor)
        raise ValueError("the service fails after the transition")

    try:
        work.run(circulates_then_fails)
    except ValueError:
        pass
    else:
        raise AssertionError("the failure was swallowed")
    work.finish()  # the request goes on and commits what it did outside the failed run: nothing here
    with Session(ctx.db.engine) as session:
        after = session.get(Case, fx.id)
        assert after is not None and (after.state, after.version) == (state, version)
    assert _counts(ctx)[0] == events
