"""Webhooks end to end against a real HTTP receiver on loopback: signed CloudEvents, queued with the transition,
delivered after the commit in order per case, retried with backoff while the receiver is down, failing or slow,
dead letters and replay; subscriptions validated (no private address unless an administrator allows it)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlmodel import Session, col
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from api.app import create_app
from notifications.webhooks.models import WebhookDelivery
from notifications.webhooks.sender import WebhookSender
from tests.support.builders import create_agreement, decision, make_user
from tests.support.webhook_receiver import Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


def _subscribe(client: TestClient, admin_headers: dict[str, str], url: str, **filters: object) -> dict[str, object]:
    r = client.post("/api/v1/webhooks", json={"name": "Asianhallinta", "url": url, "allow_private": True, **filters},
                    headers=admin_headers)
    assert r.status_code == 201, r.text
    body = r.json()
    assert str(body["secret"]).startswith("whsec_")
    return body


def _approve_all(client: TestClient, fx) -> None:  # type: ignore[no-untyped-def]
    for key in fx.keys:
        user = fx.signatories[key][0]
        url = f"/api/v1/agreements/{fx.id}/parties/{key}"
        assert client.post(f"{url}/decision", json=decision(), headers=user.headers).status_code == 201
        assert client.post(f"{url}/signatures", headers=user.headers).status_code == 201


def _events(receiver: Receiver, secret: str) -> list[dict[str, object]]:
    out = []
    for got in receiver.accepted():
        payload = Webhook(secret).verify(got.body, got.headers)  # the scheme's own verifier
        assert got.headers["webhook-id"] == payload["id"]
        assert got.headers["content-type"].startswith("application/cloudevents+json")
        out.append(payload)
    return out


def _deliveries(ctx) -> list[tuple[object, ...]]:  # type: ignore[no-untyped-def]
    """Every delivery row's status, attempts and last error, for an assertion's message."""
    with Session(ctx.db.engine) as session:
        return [tuple(r) for r in session.execute(select(
            WebhookDelivery.id, WebhookDelivery.event_type, WebhookDelivery.status, WebhookDelivery.attempts,
            WebhookDelivery.last_status, WebhookDelivery.last_error)).all()]


def test_events_arrive_signed_as_cloudevents_in_order_per_case_exactly_once(ctx, receiver: Receiver) -> None:
    admin = make_user(ctx, roles="admin")
    client = TestClient(create_app(ctx=ctx))
    with client:
        sub = _subscribe(client, admin.headers, receiver.url, workflows=["agreement", "agreement_party"])
        fx = create_agreement(ctx, parties=3)
        _approve_all(client, fx)
        assert client.get(f"/api/v1/agreements/{fx.id}", headers=fx.coordinator.headers).json()["state"] == "in_force"
    assert receiver.received == []  # nothing leaves before the sweep: delivery is after the commit, not in it
    delivered = ctx.webhooks.deliver_due_sync()
    events = _events(receiver, str(sub["secret"]))
    assert delivered == len(events) > 0, _deliveries(ctx)  # once (CI, 4 December) none: what the rows then said
    ids = [e["id"] for e in events]
    assert len(ids) == len(set(ids))  # each event once
    assert all(e["specversion"] == "1.0" and str(e["type"]).startswith("fi.vuosikello.") for e in events)
    by_case: dict[object, list[int]] = {}
    for e in events:
        by_case.setdefault(e["data"]["case_id"], []).append(int(str(e["sequence"])))  # type: ignore[index]
    assert all(seqs == sorted(seqs) for seqs in by_case.values())
    assert "fi.vuosikello.agreement.AgreementEnteredIntoForce" in {e["type"] for e in events}
    with pytest.raises(WebhookVerificationError):  # a forged body does not verify
        got = receiver.accepted()[0]
        Webhook(str(sub["secret"])).verify(got.body.replace(b"agreement", b"agreemenX"), got.headers)
    assert ctx.webhooks.deliver_due_sync() == 0  # nothing twice


def test_an_endpoint_down_for_an_hour_gets_every_event_in_order_once_back(ctx, clock, receiver: Receiver) -> None:
    admin = make_user(ctx, roles="admin")
    client = TestClient(create_app(ctx=ctx))
    with client:
        sub = _subscribe(client, admin.headers, receiver.url, events=["PartyApproved", "PartySigned"])
        receiver.stop()  # down
        fx = create_agreement(ctx, parties=2)
        _approve_all(client, fx)
    start = clock.now()
    while clock.now() - start < timedelta(hours=1):
        assert ctx.webhooks.deliver_due_sync() == 0
        clock.advance(timedelta(minutes=1))
    with Session(ctx.db.engine) as session:
        waiting = session.execute(select(WebhookDelivery).order_by(col(WebhookDelivery.id))).scalars().all()
        assert {d.status for d in waiting} == {"pending"}
        head_attempts = max(d.attempts for d in waiting)
        assert head_attempts >= 5  # retried with backoff while down (5 s, 30 s, 2 min, 5 min, then every 10 min)
    receiver.start()  # back on the same port
    for _ in range(11):
        ctx.webhooks.deliver_due_sync()
        clock.advance(timedelta(minutes=1))
    events = _events(receiver, str(sub["secret"]))
    assert len(events) == len(waiting) == 4  # 2 parties x (approved, signed)
    assert len({e["id"] for e in events}) == 4
    for case_id in {e["data"]["case_id"] for e in events}:  # type: ignore[index]
        names = [e["data"]["event"] for e in events if e["data"]["case_id"] == case_id]  # type: ignore[index]
        assert names == ["PartyApproved", "PartySigned"]
    r = client.get(f"/api/v1/webhooks/{sub['id']}/deliveries/{waiting[0].id}/attempts", headers=admin.headers)
    log = r.json()
    assert r.status_code == 200 and log[-1]["status_code"] == 204 and all(a["error"] for a in log[:-1])


def test_a_failing_and_a_slow_receiver_are_retried_and_cannot_hold_the_sweep(ctx, clock, receiver: Receiver) -> None:
    admin = make_user(ctx, roles="admin")
    client = TestClient(create_app(ctx=ctx))
    with client:
        sub = _subscribe(client, admin.headers, receiver.url, events=["PartyApproved"])
        fx = create_agreement(ctx, parties=1)
        key = fx.keys[0]
        user = fx.signatories[key][0]
        client.post(f"/api/v1/agreements/{fx.id}/parties/{key}/decision", json=decision(), headers=user.headers)
    receiver.fail_next = 2
    ctx.webhooks.deliver_due_sync()
    clock.advance(timedelta(seconds=5))
    ctx.webhooks.deliver_due_sync()
    clock.advance(timedelta(seconds=30))
    ctx.webhooks.deliver_due_sync()
    assert [r.status for r in receiver.received] == [500, 500, 204]
    assert len({r.headers["webhook-id"] for r in receiver.received}) == 1  # the same id on every retry
    # slow: cut off at the timeout, recorded, retried later
    slow = WebhookSender(ctx.engine, ctx.settings.secret_key, timeout=0.3)
    receiver.mode, receiver.delay = "slow", 2.0
    with client:
        client.post(f"/api/v1/webhooks/{sub['id']}/replay",
                    json={"delivery_ids": [d["id"] for d in client.get(
                        f"/api/v1/webhooks/{sub['id']}/deliveries", headers=admin.headers).json()]},
                    headers=admin.headers)
    started = time.monotonic()
    assert slow.deliver_due_sync() == 0
    assert time.monotonic() - started < 1.5
    with Session(ctx.db.engine) as session:
        row = session.execute(select(WebhookDelivery)).scalars().one()
        assert row.status == "pending" and "no answer within 0.3 s" in (row.last_error or "")


def test_dead_letters_are_listed_and_replayed(ctx, clock, receiver: Receiver) -> None:
    admin = make_user(ctx, roles="admin")
    client = TestClient(create_app(ctx=ctx))
    with client:
        sub = _subscribe(client, admin.headers, receiver.url, events=["PartyApproved"])
        fx = create_agreement(ctx, parties=1)
        key = fx.keys[0]
        client.post(f"/api/v1/agreements/{fx.id}/parties/{key}/decision", json=decision(),
                    headers=fx.signatories[key][0].headers)
        receiver.mode = "fail"
        for step in (0, 5, 30, 120, 300, 600, 600, 600, 600):  # the first retries...
            clock.advance(timedelta(seconds=step))
            ctx.webhooks.deliver_due_sync()
        live = client.get(f"/api/v1/webhooks/{sub['id']}/deliveries?status=dead", headers=admin.headers).json()
        assert live == []  # nine tries in an hour: not dead yet
        clock.advance(timedelta(days=3))  # ...then nothing answers for three days
        ctx.webhooks.deliver_due_sync()
        dead = client.get(f"/api/v1/webhooks/{sub['id']}/deliveries?status=dead", headers=admin.headers).json()
        assert len(dead) == 1 and dead[0]["last_status"] == 500
        assert client.get(f"/api/v1/webhooks/{sub['id']}", headers=admin.headers).json()["dead"] == 1
        receiver.mode = "ok"
        r = client.post(f"/api/v1/webhooks/{sub['id']}/replay", json={"delivery_ids": [dead[0]["id"]]},
                        headers=admin.headers)
        assert r.json() == {"queued": 1}
        assert ctx.webhooks.deliver_due_sync() == 1
        assert json.loads(receiver.accepted()[-1].body)["id"] == dead[0]["message_id"]


def test_a_refused_transition_queues_nothing_and_filters_select_events(ctx, receiver: Receiver) -> None:
    admin = make_user(ctx, roles="admin")
    client = TestClient(create_app(ctx=ctx))
    fx = create_agreement(ctx, parties=2)
    mine, other = fx.keys

    def queued() -> list[str]:
        with Session(ctx.db.engine) as session:
            return list(session.execute(select(col(WebhookDelivery.event_type))).scalars())
    with client:
        _subscribe(client, admin.headers, receiver.url, organisations=[mine], events=["PartyApproved", "PartySigned"])
        r = client.post(f"/api/v1/agreements/{fx.id}/parties/{mine}/signatures",
                        headers=fx.signatories[mine][0].headers)  # sign before approval: refused, rolled back
        assert r.status_code in (409, 422), r.text
        assert queued() == []
        client.post(f"/api/v1/agreements/{fx.id}/parties/{other}/decision", json=decision(),
                    headers=fx.signatories[other][0].headers)
        assert queued() == []  # another organisation's decision does not match the filter
        client.post(f"/api/v1/agreements/{fx.id}/parties/{mine}/decision", json=decision(),
                    headers=fx.signatories[mine][0].headers)
        assert queued() == ["fi.vuosikello.agreement_party.PartyApproved"]


@pytest.mark.parametrize(("url", "allow", "field", "reason"), [
    ("http://127.0.0.1:9/x", False, "url", "webhook.error.scheme"),
    ("https://127.0.0.1/x", False, "url", "webhook.error.private"),
    ("https://169.254.169.254/latest/meta-data", False, "url", "webhook.error.private"),
    ("https://[::1]/x", False, "url", "webhook.error.private"),
    ("ftp://example.org/x", True, "url", "webhook.error.scheme"),
    ("https://user:pw@example.org/x", True, "url", "webhook.error.credentials"),
])
def test_subscriptions_to_private_addresses_are_refused_unless_allowed(ctx, url: str, allow: bool, field: str,
                                                                       reason: str) -> None:
    admin = make_user(ctx, roles="admin")
    client = TestClient(create_app(ctx=ctx))
    r = client.post("/api/v1/webhooks", json={"name": "x", "url": url, "allow_private": allow},
                    headers={**admin.headers, "Accept-Language": "fi"})
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field and r.json()["message_id"] == reason
    assert r.json()["message"] != r.json()["detail"]  # the caller's language, not the English detail


def test_only_administrators_manage_subscriptions_and_filters_are_checked(ctx, receiver: Receiver) -> None:
    admin = make_user(ctx, roles="admin")
    coordinator = make_user(ctx, org_key="regional_council:06", roles="coordinator")
    client = TestClient(create_app(ctx=ctx))
    body = {"name": "x", "url": receiver.url, "allow_private": True}
    assert client.post("/api/v1/webhooks", json=body, headers=coordinator.headers).status_code == 403
    assert client.get("/api/v1/webhooks", headers=coordinator.headers).status_code == 403
    assert client.post("/api/v1/webhooks", json=body).status_code == 401
    bad = client.post("/api/v1/webhooks", json={**body, "workflows": ["agreement", "nonesuch"]}, headers=admin.headers)
    assert bad.status_code == 422 and bad.json()["field"] == "workflows[1]"
    bad = client.post("/api/v1/webhooks", json={**body, "organisations": ["municipality:999999"]},
                      headers=admin.headers)
    assert bad.status_code == 422 and bad.json()["field"] == "organisations[0]"
    made = client.post("/api/v1/webhooks", json=body, headers=admin.headers).json()
    listed = client.get("/api/v1/webhooks", headers=admin.headers).json()
    assert [s["id"] for s in listed] == [made["id"]] and "secret" not in listed[0]
    assert "secret_encrypted" not in json.dumps(listed)


def test_the_published_stdlib_snippet_verifies_a_real_delivery(ctx, receiver: Receiver) -> None:
    import re
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "webhooks.md").read_text(encoding="utf-8")
    snippet = [b for b in re.findall(r"```python\n(.*?)```", doc, re.S) if "def verify" in b][0]
    namespace: dict[str, object] = {}
    exec(snippet, namespace)  # noqa: S102 - the documentation's own code, run as a receiver would
    verify = namespace["verify"]
    admin = make_user(ctx, roles="admin")
    client = TestClient(create_app(ctx=ctx))
    with client:
        sub = _subscribe(client, admin.headers, receiver.url)
        create_agreement(ctx, parties=1)
    assert ctx.webhooks.deliver_due_sync() > 0
    got = receiver.accepted()[0]
    assert verify(sub["secret"], got.headers, got.body)  # type: ignore[operator]
    assert not verify(sub["secret"], got.headers, got.body + b" ")  # type: ignore[operator]
    assert not verify("whsec_" + "A" * 32, got.headers, got.body)  # type: ignore[operator]
