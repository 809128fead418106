"""Task-specific agreements over the REST API: both directions of the link, least disclosure, bad input in
fi/sv/en naming the field with nothing written, the framework's review and termination reaching each one."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.app import create_app
from api.context import AppContext
from engine.models import Case, Event
from tests.support.builders import AgreementFixture, User, create_agreement, decision, make_user
from tests.support.task_agreements import LAPE, approve_all
from workflows.task_agreement.models import TaskAgreementLink


def body(fx: AgreementFixture, keys: list[str], **overrides: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "title": "LAPE-sopimus",
        "theme": LAPE,
        "document": "# LAPE-sopimus\n\nLasten, nuorten ja perheiden palvelut.\n",
        "deadline": "2026-09-18",
        "parties": [{"organisation": k, "signatories": [fx.signatories[k][0].id]} for k in keys],
    }
    out.update(overrides)
    return out


def written(ctx: AppContext) -> tuple[int, int, int]:
    with ctx.db.read_session() as s:
        return tuple(  # type: ignore[return-value]
            int(s.execute(select(func.count()).select_from(t)).scalar_one()) for t in (Case, Event, TaskAgreementLink)
        )


@pytest.fixture
def framework(ctx: AppContext) -> AgreementFixture:
    fx = create_agreement(ctx, parties=3)
    approve_all(ctx, fx)
    return fx


def test_create_and_read_both_directions(ctx: AppContext, framework: AgreementFixture) -> None:
    client = TestClient(create_app(ctx=ctx))
    outsider = make_user(ctx, org_key="municipality:091", name="Helsingin allekirjoittaja")
    data = body(framework, framework.keys[:2])
    data["parties"].append({"organisation": "municipality:091", "signatories": [outsider.id]})
    r = client.post(
        f"/api/v1/agreements/{framework.id}/task-agreements", json=data, headers=framework.coordinator.headers
    )
    assert r.status_code == 201, r.text
    created = r.json()
    task_id = created["agreement"]["id"]
    assert r.headers["location"] == f"/api/v1/agreements/{task_id}"
    assert created["agreement"]["state"] == "draft" and created["agreement"]["parties_total"] == 3
    assert created["framework"]["id"] == framework.id and created["framework"]["theme"] == LAPE
    assert [(w["field"], w["organisation"], w["message_id"]) for w in created["warnings"]] == [
        ("parties[2].organisation", "municipality:091", "task_agreement.warning.outside_framework")
    ]
    listed = client.get(f"/api/v1/agreements/{framework.id}/task-agreements", headers=framework.coordinator.headers)
    assert [(t["id"], t["state"], t["theme"], t["outside_framework"]) for t in listed.json()] == [
        (task_id, "draft", LAPE, ["municipality:091"])
    ]
    up = client.get(f"/api/v1/agreements/{task_id}/framework", headers=framework.coordinator.headers).json()
    assert (up["id"], up["title"], up["state"]) == (framework.id, "Pirkanmaan puitesopimus", "in_force")
    # the outside party reads its agreement and the framework's id, not the framework it cannot open
    up = client.get(f"/api/v1/agreements/{task_id}/framework", headers=outsider.headers).json()
    assert (up["id"], up["title"], up["state"]) == (framework.id, None, None)
    # a party of the framework that is not a party of the task agreement does not see it listed
    third = framework.signatories[framework.keys[2]][0]
    assert client.get(f"/api/v1/agreements/{framework.id}/task-agreements", headers=third.headers).json() == []
    assert client.get(f"/api/v1/agreements/{task_id}", headers=third.headers).status_code == 404
    # an agreement that is no task-specific one has no framework
    r = client.get(f"/api/v1/agreements/{framework.id}/framework", headers=framework.coordinator.headers)
    assert r.status_code == 404 and r.json()["message_id"] == "task_agreement.error.not_task"


CASES = {
    "not_in_force": ("framework_id", "task_agreement.error.framework_not_in_force"),
    "empty": ("parties", "task_agreement.error.no_parties"),
    "unknown": ("parties[1].organisation", None),
    "past": ("deadline", None),
}


@pytest.mark.parametrize("bad", list(CASES))
def test_bad_input_is_422_naming_the_field_in_each_language(
    ctx: AppContext, framework: AgreementFixture, bad: str
) -> None:
    client = TestClient(create_app(ctx=ctx))
    target = framework.id
    data = body(framework, framework.keys[:1])
    if bad == "not_in_force":
        target = create_agreement(ctx, parties=2, coordinator=framework.coordinator).id  # circulating
    elif bad == "empty":
        data["parties"] = []
    elif bad == "unknown":
        data["parties"].append(
            {"organisation": "municipality:999", "signatories": [framework.signatories[framework.keys[0]][0].id]}
        )
    elif bad == "past":
        data["deadline"] = "2026-03-01"
    field, message_id = CASES[bad]
    before = written(ctx)
    messages = {}
    for lang in ("fi", "sv", "en"):
        r = client.post(
            f"/api/v1/agreements/{target}/task-agreements",
            json=data,
            headers={**framework.coordinator.headers, "Accept-Language": lang},
        )
        assert r.status_code == 422, r.text
        assert r.json()["field"] == field
        assert r.json().get("message_id") == message_id
        messages[lang] = r.json()["message"]
        assert field in messages[lang]  # the sentence names the field
    assert len(set(messages.values())) == 3  # three languages, three sentences
    assert written(ctx) == before


def test_only_the_framework_s_coordinator_starts_one(ctx: AppContext, framework: AgreementFixture) -> None:
    client = TestClient(create_app(ctx=ctx))
    signer: User = framework.signatories[framework.keys[0]][0]
    county_coordinator = make_user(ctx, org_key=framework.keys[0], roles="coordinator")
    before = written(ctx)
    for user, status in ((signer, 403), (county_coordinator, 403)):
        r = client.post(
            f"/api/v1/agreements/{framework.id}/task-agreements",
            json=body(framework, framework.keys),
            headers=user.headers,
        )
        assert r.status_code == status, r.text
    foreign = make_user(ctx, org_key="regional_council:02", roles="coordinator")
    r = client.post(
        f"/api/v1/agreements/{framework.id}/task-agreements",
        json=body(framework, framework.keys),
        headers=foreign.headers,
    )
    assert r.status_code == 404  # cannot see the framework at all
    assert written(ctx) == before


def _sign_all(client: TestClient, task_id: int, fx: AgreementFixture, keys: list[str]) -> None:
    for key in keys:
        user = fx.signatories[key][0]
        url = f"/api/v1/agreements/{task_id}/parties/{key}"
        assert client.post(f"{url}/decision", json=decision(), headers=user.headers).status_code == 201
        assert client.post(f"{url}/signatures", headers=user.headers).status_code == 201


def test_review_and_termination_over_the_api(ctx: AppContext, framework: AgreementFixture) -> None:
    client = TestClient(create_app(ctx=ctx))
    coord = framework.coordinator.headers
    keys = framework.keys[:2]
    task_id = client.post(
        f"/api/v1/agreements/{framework.id}/task-agreements", json=body(framework, keys), headers=coord
    ).json()["agreement"]["id"]
    assert client.post(f"/api/v1/agreements/{task_id}/circulate", headers=coord).status_code == 200
    _sign_all(client, task_id, framework, keys)
    assert client.get(f"/api/v1/agreements/{task_id}", headers=coord).json()["state"] == "in_force"
    review = client.post(f"/api/v1/agreements/{framework.id}/reviews", json={}, headers=coord).json()
    listed = client.get(f"/api/v1/reviews/{review['id']}/task-agreements", headers=coord).json()
    assert [(t["id"], t["state"]) for t in listed] == [(task_id, "under_review")]
    assert {"confirm_unchanged", "revise", "terminate"} <= set(listed[0]["allowed_triggers"])
    r = client.post(f"/api/v1/agreements/{task_id}/confirm-unchanged", headers=coord)
    assert r.status_code == 200 and r.json()["state"] == "in_force"
    # terminated framework: the task agreement is flagged, and goes on only with a reason
    r = client.post(
        f"/api/v1/agreements/{framework.id}/terminate",
        headers=coord,
        json={"reason": "Uusi puitesopimus", "end_date": "2026-12-31"},
    )
    assert r.status_code == 200, r.text
    assert client.get(f"/api/v1/agreements/{task_id}", headers=coord).json()["state"] == "framework_ended"
    up = client.get(f"/api/v1/agreements/{task_id}/framework", headers=coord).json()
    assert up["ended_on"] == "2026-12-31" and up["continued_alone"] is False
    r = client.post(f"/api/v1/agreements/{task_id}/continue-alone", json={"reason": ""}, headers=coord)
    assert r.status_code == 422 and r.json()["field"] == "reason"
    r = client.post(f"/api/v1/agreements/{task_id}/continue-alone", json={"reason": "Jatkuu LAPE-työnä"}, headers=coord)
    assert r.status_code == 200 and r.json()["state"] == "in_force"
    up = client.get(f"/api/v1/agreements/{task_id}/framework", headers=coord).json()
    assert up["continued_alone"] is True and up["continued_alone_reason"] == "Jatkuu LAPE-työnä"


def test_the_annual_clock_and_the_calendar_feed_show_its_deadline(ctx: AppContext, framework: AgreementFixture) -> None:
    from sqlmodel import Session

    from workflows.annual_clock import ical

    client = TestClient(create_app(ctx=ctx))
    coord = framework.coordinator.headers
    task_id = client.post(
        f"/api/v1/agreements/{framework.id}/task-agreements", json=body(framework, framework.keys[:2]), headers=coord
    ).json()["agreement"]["id"]
    items = client.get("/api/v1/calendar/items?year=2026", headers=coord).json()
    mine = [i for i in items if i.get("case_id") == task_id]
    assert len(mine) == 1 and mine[0]["start"] == "2026-09-18", mine
    assert mine[0]["title"] == "LAPE-sopimus (tehtäväkohtainen yhteistyösopimus)"
    signer = framework.signatories[framework.keys[0]][0]  # a party of the task agreement
    with Session(ctx.db.write_engine) as s:
        _feed, token = ical.create_feed(s, signer.actor, ctx.clock.now(), person_id=signer.id)
        s.commit()
    feed = client.get(f"/api/v1/calendar/feeds/{token}.ics").text
    assert (
        "SUMMARY:Määräaika: LAPE-sopimus (tehtäväkohtainen yhteistyösopimus)\r\n"
        "DTSTART;TZID=Europe/Helsinki:20260918T235959" in feed
    )
