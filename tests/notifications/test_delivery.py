"""Delivery that holds: retries with backoff, dead letters, refused recipients, an SMTP outage, admin retry."""

from __future__ import annotations

import time
from collections import Counter
from datetime import date, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlmodel import Session

import notifications.delivery
from api.app import create_app
from engine.models import Event, OutboxMessage
from notifications.outbox import queue_email
from notifications.smtp import PermanentDeliveryError, TemporaryDeliveryError
from tests.support.builders import create_agreement, make_user, render_mail


def _rows(ctx) -> list[OutboxMessage]:
    with Session(ctx.db.engine) as s:
        return list(s.execute(select(OutboxMessage).order_by(OutboxMessage.id)).scalars())


def _drain(ctx, *, hours: float, step_minutes: int = 5) -> None:
    for _ in range(int(hours * 60 / step_minutes)):
        ctx.clock.advance(timedelta(minutes=step_minutes))
        ctx.tick()


def test_421_three_times_then_250_is_one_delivery(smtp_ctx, smtp_server) -> None:
    smtp_server.handler.fail_next(421, "try later", times=3)
    create_agreement(smtp_ctx, parties=1, deadline=date(2026, 6, 19))
    smtp_ctx.tick()
    assert _rows(smtp_ctx)[0].status == "pending" and _rows(smtp_ctx)[0].attempts == 1
    _drain(smtp_ctx, hours=3)
    row = _rows(smtp_ctx)[0]
    assert row.status == "sent" and row.attempts == 4
    assert len(smtp_server.messages) == 1


def test_an_email_not_rendered_yet_is_listed_as_queued_and_then_as_sent(smtp_ctx, smtp_server) -> None:
    fx = create_agreement(smtp_ctx, parties=1, deadline=date(2026, 6, 19))
    admin = make_user(smtp_ctx, roles="admin")
    client = TestClient(create_app(ctx=smtp_ctx))
    queued = client.get(f"/api/v1/outbox?status=queued&case_id={fx.id}", headers=admin.headers)
    assert queued.status_code == 200 and queued.json()["total"] >= 1
    assert {(m["status"], m["subject"]) for m in queued.json()["items"]} == {("queued", "")}
    smtp_ctx.tick()  # the mail job renders, then sends
    assert client.get(f"/api/v1/outbox?status=queued&case_id={fx.id}", headers=admin.headers).json()["total"] == 0
    sent = client.get(f"/api/v1/outbox?status=sent&case_id={fx.id}", headers=admin.headers).json()["items"]
    assert len(sent) == queued.json()["total"] and all(m["subject"] for m in sent)
    assert len(smtp_server.messages) == len(sent)


def test_550_is_a_dead_letter_after_one_try_and_shown_on_the_case(smtp_ctx, smtp_server) -> None:
    smtp_server.handler.fail_next(550, "no such mailbox", times=1)
    fx = create_agreement(smtp_ctx, parties=1, deadline=date(2026, 6, 19))
    smtp_ctx.tick()
    _drain(smtp_ctx, hours=1)
    row = _rows(smtp_ctx)[0]
    assert row.status == "failed" and row.attempts == 1 and "550" in (row.last_error or "")
    assert smtp_server.messages == []
    with Session(smtp_ctx.db.engine) as s:
        failed = s.execute(select(Event).where(Event.case_id == fx.id, Event.name == "DeliveryFailed")).scalars().all()
    assert len(failed) == 1
    admin = make_user(smtp_ctx, roles="admin")
    client = TestClient(create_app(ctx=smtp_ctx))
    listed = client.get("/api/v1/outbox?status=failed", headers=admin.headers).json()
    assert listed["total"] == 1 and "550" in listed["items"][0]["last_error"]
    assert client.post(f"/api/v1/outbox/{row.id}/retry", headers=admin.headers).status_code == 200
    smtp_ctx.tick()
    assert len(smtp_server.messages) == 1
    assert client.post(f"/api/v1/outbox/{row.id}/retry", headers=admin.headers).status_code == 409


def test_one_refused_recipient_of_three_does_not_stop_the_others(smtp_ctx, smtp_server) -> None:
    fx = create_agreement(smtp_ctx, parties=1, circulate=False, deadline=date(2026, 6, 19))
    smtp_server.handler.refuse_recipient("b@example.fi", 550)

    def queue(uow):
        queue_email(uow, template="agreement_in_force", key="letter:1", case_id=fx.id, address="a@example.fi",
                    cc=["b@example.fi", "c@example.fi"], context={"case": {"title": "Sopimus", "id": fx.id},
                                                                  "parent": None, "deadline": None, "actions": {},
                                                                  "link": "http://testserver/", "organisation": None})
    smtp_ctx.engine.run(queue)
    smtp_ctx.tick()
    assert len(smtp_server.messages) == 1
    assert sorted(smtp_server.messages[0].rcpt_tos) == ["a@example.fi", "c@example.fi"]
    row = _rows(smtp_ctx)[0]
    assert row.status == "sent" and "b@example.fi" in row.refused


def test_smtp_down_for_an_hour_then_back_delivers_everything_once(smtp_ctx, smtp_server) -> None:
    smtp_server.stop()
    create_agreement(smtp_ctx, parties=5, deadline=date(2026, 6, 19))
    _drain(smtp_ctx, hours=1)
    assert all(r.status == "pending" and r.attempts >= 2 for r in _rows(smtp_ctx))
    smtp_server.start()
    _drain(smtp_ctx, hours=2)
    assert [r.status for r in _rows(smtp_ctx)] == ["sent"] * 5
    ids = [m.message["Message-ID"] for m in smtp_server.messages]
    assert len(ids) == 5 and len(set(ids)) == 5


def test_temporary_failures_give_up_after_24_hours(smtp_ctx, smtp_server) -> None:
    smtp_server.stop()
    create_agreement(smtp_ctx, parties=1, deadline=date(2026, 6, 19))
    _drain(smtp_ctx, hours=25, step_minutes=30)
    row = _rows(smtp_ctx)[0]
    assert row.status == "dead" and "24 hours" in (row.last_error or "")


def test_timeline_and_timers_api(ctx) -> None:
    fx = create_agreement(ctx, parties=2, deadline=date(2026, 6, 19))
    client = TestClient(create_app(ctx=ctx))
    timers = client.get(f"/api/v1/timers?case_id={fx.id + 1}", headers=fx.coordinator.headers).json()
    assert timers["total"] == 8 and timers["items"][0]["kind"] == "reminder"
    line = client.get(f"/api/v1/cases/{fx.id}/timeline", headers=fx.coordinator.headers).json()
    kinds = {e["kind"] for e in line}
    assert kinds == {"event", "timer", "email"}
    assert [e["at"] for e in line] == sorted(e["at"] for e in line)
    outsider = make_user(ctx, org_key="municipality:091")
    assert client.get(f"/api/v1/cases/{fx.id}/timeline", headers=outsider.headers).status_code == 404
    assert client.get(f"/api/v1/timers?case_id={fx.id}", headers=outsider.headers).json()["total"] == 0


def test_a_batch_goes_over_the_pooled_connections_each_message_once(smtp_ctx, smtp_server) -> None:
    create_agreement(smtp_ctx, parties=12, deadline=date(2026, 6, 19))
    queued = len(_rows(smtp_ctx))
    assert queued >= 12
    recorded: list[int] = []
    mark_sent = smtp_ctx.delivery._mark_sent

    def counting(row_ids, claimed, status="sent"):  # type: ignore[no-untyped-def]
        recorded.extend(row_ids)
        return mark_sent(row_ids, claimed, status)

    smtp_ctx.delivery._mark_sent = counting
    assert smtp_ctx.delivery.deliver_due_sync() == queued
    assert smtp_server.handler.session_count == smtp_ctx.delivery.connections == 4  # each connection took a share
    ids = [m.message["Message-ID"] for m in smtp_server.messages]
    rows = _rows(smtp_ctx)
    assert sorted(ids) == sorted(r.message_id for r in rows)  # each once
    assert sorted(recorded) == sorted(r.id for r in rows)  # each recorded by exactly one group commit
    assert {(r.status, r.attempts) for r in rows} == {("sent", 1)}
    by_id = {r.message_id: r for r in rows}
    for m in smtp_server.messages:  # the recipient's language on every message
        assert m.message["Content-Language"] == by_id[m.message["Message-ID"]].language


def test_one_message_opens_one_connection(smtp_ctx, smtp_server) -> None:
    create_agreement(smtp_ctx, parties=1, circulate=False, deadline=date(2026, 6, 19))

    def queue(uow):
        queue_email(uow, template="agreement_in_force", key="letter:one", address="a@example.fi",
                    context={"case": {"title": "Sopimus", "id": 1}, "parent": None, "deadline": None, "actions": {},
                             "link": "http://testserver/", "organisation": None})
    smtp_ctx.engine.run(queue)
    assert smtp_ctx.delivery.deliver_due_sync() == 1
    assert smtp_server.handler.session_count == 1 and len(smtp_server.messages) == 1


def test_a_failed_sent_commit_stops_the_batch_and_the_rows_go_out_again(smtp_ctx, smtp_server) -> None:
    create_agreement(smtp_ctx, parties=6, deadline=date(2026, 6, 19))
    queued = len(_rows(smtp_ctx))

    def broken(row_ids, claimed, status="sent"):  # type: ignore[no-untyped-def]
        raise OSError("disk full")

    mark_sent = smtp_ctx.delivery._mark_sent
    smtp_ctx.delivery._mark_sent = broken
    try:
        smtp_ctx.delivery.deliver_due_sync()
    except OSError as exc:
        assert "disk full" in str(exc)
    else:
        raise AssertionError("the failed commit was swallowed")
    first = len(smtp_server.messages)
    assert 1 <= first <= smtp_ctx.delivery.connections  # each connection stopped before its next DATA
    assert {r.status for r in _rows(smtp_ctx)} == {"sending"}  # nothing recorded: all will go out again
    smtp_ctx.delivery._mark_sent = mark_sent
    assert smtp_ctx.delivery.release_claims() == queued  # as the next leader does
    assert smtp_ctx.delivery.deliver_due_sync() == queued
    counts = Counter(m.message["Message-ID"] for m in smtp_server.messages)
    assert len(counts) == queued and sum(counts.values()) == queued + first  # the unrecorded ones twice


def test_captured_mail_is_marked_in_one_commit(ctx) -> None:
    create_agreement(ctx, parties=3, deadline=date(2026, 6, 19))
    queued = len(_rows(ctx))
    assert ctx.delivery.deliver_due_sync() == queued
    assert {(r.status, r.attempts) for r in _rows(ctx)} == {("captured", 1)}


def test_the_pool_size_is_a_setting(database, clock, smtp_server) -> None:
    from tests.conftest import context_for

    ctx = context_for(database, clock, smtp_host=smtp_server.hostname, smtp_port=smtp_server.port,
                      smtp_timeout=5.0, smtp_connections=2)
    assert ctx.delivery.connections == 2
    create_agreement(ctx, parties=6, deadline=date(2026, 6, 19))
    queued = len(_rows(ctx))
    assert ctx.delivery.deliver_due_sync() == queued
    assert smtp_server.handler.session_count == 2 and len(smtp_server.messages) == queued


def test_the_first_retry_waits_up_to_30_seconds_and_each_next_one_twice_as_long(smtp_ctx, smtp_server) -> None:
    smtp_ctx.delivery.jitter = lambda: 1.0  # the longest wait the full jitter can draw
    smtp_server.handler.fail_next(421, "try later", times=2)
    create_agreement(smtp_ctx, parties=1, deadline=date(2026, 6, 19))
    waits = []
    for attempts in (1, 2):
        tried_at = smtp_ctx.clock.now()
        smtp_ctx.tick()
        row = _rows(smtp_ctx)[0]
        assert (row.status, row.attempts) == ("pending", attempts)
        waits.append(row.next_attempt_at.replace(tzinfo=None) - tried_at.replace(tzinfo=None))
        smtp_ctx.clock.advance(waits[-1])
    assert waits == [timedelta(seconds=30), timedelta(seconds=60)]  # retry 0 then retry 1 (notifications/smtp.py)
    smtp_ctx.tick()
    assert (_rows(smtp_ctx)[0].status, len(smtp_server.messages)) == ("sent", 1)


def test_a_deposed_sender_neither_fails_nor_notes_a_row_a_new_leader_took_over(smtp_ctx, smtp_server) -> None:
    fx = create_agreement(smtp_ctx, parties=2, deadline=date(2026, 6, 19))
    render_mail(smtp_ctx)
    now = smtp_ctx.clock.now()
    claimed = smtp_ctx.delivery._claim(now)  # then frozen, deposed, and woken with a failure in hand
    assert len(claimed) >= 2 and smtp_ctx.delivery.release_claims() == len(claimed)
    smtp_ctx.delivery._outcome(claimed[0], now, PermanentDeliveryError("550 5.1.1 no such mailbox"), {})
    smtp_ctx.clock.advance(timedelta(days=2))  # past the retry window: a temporary failure would make it dead
    smtp_ctx.delivery._outcome(claimed[1], now, TemporaryDeliveryError("421 try later"), {})
    smtp_ctx.delivery._outcome(claimed[1], now, None, {"b@example.fi": "550 5.1.1 no such mailbox"})
    assert {(r.status, r.attempts) for r in _rows(smtp_ctx)} == {("pending", 0)}
    with Session(smtp_ctx.db.engine) as s:
        assert s.execute(select(Event).where(Event.case_id == fx.id, Event.name == "DeliveryFailed")).first() is None
    smtp_ctx.tick()  # the new leader sends every row, once
    assert {r.status for r in _rows(smtp_ctx)} == {"sent"} and len(smtp_server.messages) == len(claimed)


def test_a_batch_claimed_just_before_a_freeze_checks_its_claims_before_its_first_message(
        smtp_ctx, smtp_server, monkeypatch) -> None:
    # frozen between its claim's commit and its first message, deposed meanwhile: on waking it must not send
    monkeypatch.setattr(notifications.delivery, "CLAIM_RECHECK", 0.2)
    create_agreement(smtp_ctx, parties=3, deadline=date(2026, 6, 19))
    delivery = smtp_ctx.delivery
    claim = delivery._claim

    def claim_then_freeze(now, fence=None):  # type: ignore[no-untyped-def]
        rows = claim(now, fence)
        delivery.release_claims()  # a new leader took over while this process stood still...
        time.sleep(0.4)  # ...for longer than CLAIM_RECHECK (a simulated freeze, not a wait for a deadline)
        return rows

    monkeypatch.setattr(delivery, "_claim", claim_then_freeze)
    assert delivery.deliver_due_sync() == 0
    assert smtp_server.messages == []  # nothing the new leader sends went out twice
    assert {r.status for r in _rows(smtp_ctx)} == {"pending"}
