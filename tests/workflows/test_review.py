"""Council-term reviews: scheduled on entry into force, opened per term, confirmed unchanged or revised."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.app import create_app
from engine.errors import NotPermitted
from engine.models import Case, Timer
from tests.support.builders import create_agreement, decision, make_user
from workflows.review import service
from workflows.review.schemas import ReviewStart
from workflows.review.terms import next_term, term_of

TABLE = [  # (state, trigger, who) -> new state or error
    ("scheduled", "open", "system", "open"),
    ("open", "open", "system", "InvalidTransition"),
    ("open", "cancel", "system", "cancelled"),
    ("confirmed_unchanged", "cancel", "system", "InvalidTransition"),
    ("open", "confirm_unchanged", "outsider", "NotPermitted"),
]


def test_council_terms() -> None:
    assert term_of(date(2026, 3, 2)) == (date(2025, 6, 1), date(2029, 5, 31))
    assert term_of(date(2029, 5, 31)) == (date(2025, 6, 1), date(2029, 5, 31))
    assert term_of(date(2029, 6, 1)) == (date(2029, 6, 1), date(2033, 5, 31))
    assert term_of(date(2024, 1, 1)) == (date(2022, 3, 1), date(2025, 5, 31))
    assert next_term(date(2026, 3, 2)) == (date(2029, 6, 1), date(2033, 5, 31))


def _in_force(ctx, client):
    fx = create_agreement(ctx, parties=2)
    for key in fx.keys:
        user = fx.signatories[key][0]
        url = f"/api/v1/agreements/{fx.id}/parties/{key}"
        assert client.post(f"{url}/decision", json=decision(), headers=user.headers).status_code == 201
        assert client.post(f"{url}/signatures", headers=user.headers).status_code == 201
    return fx


def test_review_lifecycle(ctx) -> None:
    client = TestClient(create_app(ctx=ctx))
    fx = _in_force(ctx, client)
    headers = fx.coordinator.headers
    reviews = client.get(f"/api/v1/agreements/{fx.id}/reviews", headers=headers).json()
    # in force in this term: the next term's review waits for 1.6.2029
    assert [(r["state"], r["term_start"], r["deadline"]) for r in reviews] == [("scheduled", "2029-06-01",
                                                                               "2029-06-01")]
    outsider = make_user(ctx, org_key="municipality:091", roles="coordinator")
    r = client.post(f"/api/v1/agreements/{fx.id}/reviews", json={}, headers=outsider.headers)
    assert r.status_code == 404  # cannot even see the agreement
    r = client.post(f"/api/v1/agreements/{fx.id}/reviews", json={"deadline": "2030-01-01"}, headers=headers)
    assert r.status_code == 422 and r.json()["field"] == "deadline"
    r = client.post(f"/api/v1/agreements/{fx.id}/reviews", json={"deadline": "2026-11-30"}, headers=headers)
    assert r.status_code == 201, r.text
    review = r.json()
    assert review["state"] == "open" and review["deadline"] == "2026-11-30"
    assert client.get(f"/api/v1/agreements/{fx.id}", headers=headers).json()["state"] == "under_review"
    with ctx.db.read_session() as s:
        due = sorted(t.due_at for t in s.execute(select(Timer).where(Timer.case_id == review["id"],
                                                                       Timer.status == "pending")).scalars())
    # 90, 30 and 7 days before Mon 30.11.2026 at 09:00, and the day after it
    assert due == [datetime(2026, 9, 1, 6, 0, tzinfo=UTC), datetime(2026, 10, 30, 7, 0, tzinfo=UTC),
                   datetime(2026, 11, 23, 7, 0, tzinfo=UTC), datetime(2026, 12, 1, 7, 0, tzinfo=UTC)]
    r = client.post(f"/api/v1/reviews/{review['id']}/confirm", json={"note": "Ennallaan"}, headers=headers)
    assert r.status_code == 200 and r.json()["state"] == "confirmed_unchanged"
    assert client.get(f"/api/v1/agreements/{fx.id}", headers=headers).json()["state"] == "in_force"
    again = client.post(f"/api/v1/reviews/{review['id']}/confirm", json={}, headers=headers)
    assert again.status_code == 409 and "allowed" in again.json()


def test_revision_sends_the_agreement_round_again(ctx) -> None:
    client = TestClient(create_app(ctx=ctx))
    fx = _in_force(ctx, client)
    review = ctx.engine.run(lambda uow: service.start_now(uow, fx.id, ReviewStart(), fx.coordinator.actor))
    r = client.post(f"/api/v1/reviews/{review.id}/revision", json={"text": "# Uusi teksti\n", "note": "Tarkistus"},
                    headers=fx.coordinator.headers)
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "revision"
    body = client.get(f"/api/v1/agreements/{fx.id}", headers=fx.coordinator.headers).json()
    assert body["state"] == "circulating" and body["document_version"] == 2
    assert {p["state"] for p in body["parties"]} == {"invited"}


@pytest.mark.parametrize("row", TABLE, ids=[f"{s}-{t}-{w}" for s, t, w, _ in TABLE])
def test_definition_table(ctx, row) -> None:
    from engine.actors import SYSTEM
    from engine.errors import InvalidTransition
    from tests.support.recurring import force_state

    state, trigger, who, expected = row
    client = TestClient(create_app(ctx=ctx))
    fx = _in_force(ctx, client)
    with ctx.db.read_session() as s:
        review_id = s.execute(select(Case.id).where(Case.workflow == "review")).scalar_one()
    force_state(ctx, review_id, state)
    actor = SYSTEM if who == "system" else make_user(ctx, org_key="municipality:091", roles="coordinator").actor
    run = lambda uow: uow.fire(review_id, trigger, actor=actor)  # noqa: E731
    if expected in ("InvalidTransition", "NotPermitted"):
        with pytest.raises({"InvalidTransition": InvalidTransition, "NotPermitted": NotPermitted}[expected]):
            ctx.engine.run(run)
    else:
        assert ctx.engine.run(run).to_state == expected
    assert fx.id
