"""Audit: any edit, deletion or reordering of events is found by `verify_all` and by `vuosikello audit verify`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, select, text
from sqlmodel import Session
from typer.testing import CliRunner

from api.cli import app as cli
from api.context import AppContext
from engine.audit import AuditProblem, verify_all
from engine.models import Event
from engine.settings import get_settings
from tests.support.builders import AgreementFixture, create_agreement, make_user
from workflows.agreement import cases, service
from workflows.agreement.schemas import DecisionIn

Tamper = Callable[[Connection, Event], None]


@pytest.fixture
def fx(ctx: AppContext) -> AgreementFixture:
    """An agreement with a history: created, circulated, one party approved and signed, one declined."""
    fx = create_agreement(ctx, parties=3, signatures=1)
    first, second = fx.keys[0], fx.keys[1]
    body = DecisionIn(outcome="approved", body="Kunnanhallitus", decided_on=ctx.clock.now().date(), section="58")
    ctx.engine.run(lambda uow: service.decide(uow, fx.id, first, body, fx.signatories[first][0].actor))
    ctx.clock.advance(timedelta(hours=1))
    ctx.engine.run(lambda uow: service.sign(uow, fx.id, first, fx.signatories[first][0].actor))
    declined = body.model_copy(update={"outcome": "declined", "note": "Ei hyväksytä"})
    ctx.engine.run(lambda uow: service.decide(uow, fx.id, second, declined, fx.signatories[second][0].actor))
    return fx


def events_of(ctx: AppContext, case_id: int) -> list[Event]:
    with Session(ctx.db.engine) as session:
        return list(session.execute(select(Event).where(Event.case_id == case_id)
                                    .order_by(Event.seq)).scalars())  # type: ignore[arg-type]


def party_case(ctx: AppContext, fx: AgreementFixture, key: str) -> int:
    return int(ctx.engine.run(lambda uow: cases.party_case(uow, fx.id, key).id))


def problems_after(ctx: AppContext, tamper: Callable[[Connection], None]) -> list[AuditProblem]:
    """Apply a tampering in a transaction, verify inside it, roll it back; return what was found."""
    with ctx.db.engine.connect() as conn:
        trans = conn.begin()
        try:
            tamper(conn)
            with Session(bind=conn) as session:
                _cases, _events, problems = verify_all(session)
        finally:
            trans.rollback()
    return problems


def set_field(conn: Connection, event_id: int, column: str, value: Any) -> None:
    conn.execute(text(f'UPDATE event SET "{column}" = :v WHERE id = :id'), {"v": value, "id": event_id})


def test_an_untouched_log_verifies(ctx: AppContext, fx: AgreementFixture) -> None:
    with Session(ctx.db.engine) as session:
        cases, events, problems = verify_all(session)
    assert problems == []
    assert cases >= 4 and events >= 9


# an edit of every stored field of an event, as a value that differs from any real one
EDITS: dict[str, Callable[[Event], Any]] = {
    "at": lambda e: e.at.replace(tzinfo=None) + timedelta(seconds=1),
    "actor_id": lambda e: None if e.actor_id is not None else 1,
    "on_behalf_of_id": lambda e: 1 if e.on_behalf_of_id != 1 else 2,
    "trigger": lambda e: e.trigger + "x",
    "name": lambda e: "PartyDeclined" if e.name != "PartyDeclined" else "PartyApproved",
    "from_state": lambda e: "declined" if e.from_state != "declined" else "invited",
    "to_state": lambda e: "declined" if e.to_state != "declined" else "approved",
    "payload": lambda e: '{"x":1}' if e.payload == "{}" else e.payload[:-1] + ',"x":1}',
    "document_hash": lambda e: "0" * 64 if e.document_hash != "0" * 64 else "1" * 64,
    "prev_hash": lambda e: "f" * 64,
    "hash": lambda e: "e" * 64,
    "seq": lambda e: e.seq + 100,
}


def test_editing_any_field_of_any_event_is_detected(ctx: AppContext, fx: AgreementFixture) -> None:
    party = party_case(ctx, fx, fx.keys[0])
    for column, edit in EDITS.items():
        for case_id in (fx.id, party):
            for event in events_of(ctx, case_id):
                value = edit(event)
                problems = problems_after(ctx, lambda conn: set_field(conn, event.id or 0, column, value))
                assert problems, f"editing {column} of case {case_id} event #{event.seq} went unnoticed"
                assert {p.case_id for p in problems} == {case_id}, (column, problems)
                if column not in ("hash", "seq"):  # those break the link of the next event, or the head
                    assert any(p.seq == event.seq and "edited" in p.problem for p in problems), (column, problems)


def test_moving_an_event_to_another_case_is_detected(ctx: AppContext, fx: AgreementFixture) -> None:
    party = party_case(ctx, fx, fx.keys[0])
    other = party_case(ctx, fx, fx.keys[2])
    last = events_of(ctx, party)[-1]
    problems = problems_after(ctx, lambda conn: conn.execute(
        text("UPDATE event SET case_id = :c, seq = 99 WHERE id = :id"), {"c": other, "id": last.id}))
    assert {p.case_id for p in problems} == {party, other}


def test_deleting_an_event_is_detected(ctx: AppContext, fx: AgreementFixture) -> None:
    party = party_case(ctx, fx, fx.keys[0])
    events = events_of(ctx, party)
    assert len(events) >= 3
    for which, victim in {"first": events[0], "middle": events[len(events) // 2], "last": events[-1]}.items():
        problems = problems_after(ctx, lambda conn: conn.execute(text("DELETE FROM event WHERE id = :id"),
                                                                 {"id": victim.id}))
        assert problems and {p.case_id for p in problems} == {party}, which
        assert any("records" in p.problem for p in problems), which  # the case knows how many it had


def swap_seq(conn: Connection, a: Event, b: Event) -> None:
    """Swap two events' positions (through a free number: (case_id, seq) is unique)."""
    set_field(conn, a.id or 0, "seq", -1)
    set_field(conn, b.id or 0, "seq", a.seq)
    set_field(conn, a.id or 0, "seq", b.seq)


def test_reordering_events_is_detected(ctx: AppContext, fx: AgreementFixture) -> None:
    for case_id in (fx.id, party_case(ctx, fx, fx.keys[0])):
        events = events_of(ctx, case_id)
        for first, second in [(0, 1), (1, 2), (0, -1)]:
            a, b = events[first], events[second]
            problems = problems_after(ctx, lambda conn: swap_seq(conn, a, b))
            assert problems and {p.case_id for p in problems} == {case_id}, (case_id, first, second)


def test_swapping_whole_rows_is_detected(ctx: AppContext, fx: AgreementFixture) -> None:
    """Reordering by rewriting two rows' contents while keeping ids and seqs in place."""
    party = party_case(ctx, fx, fx.keys[0])
    a, b = events_of(ctx, party)[1:3]
    columns = ["at", "actor_id", "on_behalf_of_id", "trigger", "name", "from_state", "to_state", "payload",
               "document_hash", "prev_hash", "hash"]

    def swap(conn: Connection) -> None:
        for src, dst in ((a, b), (b, a)):
            for c in columns:
                value = getattr(src, c)
                set_field(conn, dst.id or 0, c, value.replace(tzinfo=None) if c == "at" else value)

    problems = problems_after(ctx, swap)
    assert problems and {p.case_id for p in problems} == {party}


def test_editing_the_head_recorded_on_the_case_is_detected(ctx: AppContext, fx: AgreementFixture) -> None:
    for change in ("event_count = event_count + 1", "head_hash = :h"):
        problems = problems_after(ctx, lambda conn: conn.execute(
            text(f'UPDATE "case" SET {change} WHERE id = :id'), {"h": "a" * 64, "id": fx.id}))
        assert [p.case_id for p in problems] == [fx.id]


def test_a_consistent_rewrite_needs_every_later_hash(ctx: AppContext, fx: AgreementFixture) -> None:
    """Recomputing the edited event's own hash is not enough: the next event's link breaks."""
    from engine.audit import event_hash

    party = party_case(ctx, fx, fx.keys[0])
    events = events_of(ctx, party)
    target = events[1]
    forged_payload = target.payload.replace("58", "59")
    assert forged_payload != target.payload
    forged = event_hash(case_id=target.case_id, seq=target.seq, at=target.at, actor_id=target.actor_id,
                        on_behalf_of_id=target.on_behalf_of_id, trigger=target.trigger, name=target.name,
                        from_state=target.from_state, to_state=target.to_state, payload_json=forged_payload,
                        document_hash=target.document_hash, prev_hash=target.prev_hash)

    def rewrite(conn: Connection) -> None:
        set_field(conn, target.id or 0, "payload", forged_payload)
        set_field(conn, target.id or 0, "hash", forged)

    problems = problems_after(ctx, rewrite)
    assert [(p.case_id, p.seq) for p in problems] == [(party, events[2].seq)]
    assert "does not link" in problems[0].problem


# -- the command line ---------------------------------------------------------------------------------------


@pytest.fixture
def run_cli(ctx: AppContext, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Any]]:
    """Run `vuosikello ...` in-process against the test database."""
    monkeypatch.setenv("VUOSIKELLO_DATABASE_URL", ctx.db.url)
    get_settings.cache_clear()
    runner = CliRunner()
    yield lambda *args: runner.invoke(cli, list(args))
    get_settings.cache_clear()


def committed(ctx: AppContext, sql: str, **params: Any) -> None:
    with ctx.db.engine.begin() as conn:
        conn.execute(text(sql), params)


def test_cli_verify_exits_1_on_edit_deletion_and_reordering(ctx: AppContext, fx: AgreementFixture,
                                                            run_cli: Callable[..., Any]) -> None:
    clean = run_cli("audit", "verify")
    assert clean.exit_code == 0, (clean.stdout, clean.stderr, clean.exception)
    assert "0 problems" in clean.stdout
    party = party_case(ctx, fx, fx.keys[0])
    events = events_of(ctx, party)
    a, b = events[1], events[2]

    committed(ctx, "UPDATE event SET payload = :p WHERE id = :id", p=a.payload.replace("58", "59"), id=a.id)
    edited = run_cli("audit", "verify")
    assert edited.exit_code == 1
    assert f"TAMPERED  case {party} event #{a.seq}" in edited.stderr
    committed(ctx, "UPDATE event SET payload = :p WHERE id = :id", p=a.payload, id=a.id)
    assert run_cli("audit", "verify").exit_code == 0  # put back exactly, it verifies again

    committed(ctx, "UPDATE event SET seq = -1 WHERE id = :id", id=a.id)
    committed(ctx, "UPDATE event SET seq = :s WHERE id = :id", s=a.seq, id=b.id)
    committed(ctx, "UPDATE event SET seq = :s WHERE id = :id", s=b.seq, id=a.id)
    reordered = run_cli("audit", "verify")
    assert reordered.exit_code == 1 and f"case {party}" in reordered.stderr
    committed(ctx, "UPDATE event SET seq = -1 WHERE id = :id", id=b.id)
    committed(ctx, "UPDATE event SET seq = :s WHERE id = :id", s=a.seq, id=a.id)
    committed(ctx, "UPDATE event SET seq = :s WHERE id = :id", s=b.seq, id=b.id)
    assert run_cli("audit", "verify").exit_code == 0

    committed(ctx, "DELETE FROM event WHERE id = :id", id=events[-1].id)
    deleted = run_cli("audit", "verify")
    assert deleted.exit_code == 1 and f"TAMPERED  case {party}: case records" in deleted.stderr
    assert " 0 problems" not in deleted.stdout


def test_cli_verify_counts_what_it_checked(ctx: AppContext, fx: AgreementFixture,
                                           run_cli: Callable[..., Any]) -> None:
    make_user(ctx, org_key="municipality:837")
    with Session(ctx.db.engine) as session:
        cases, events, _ = verify_all(session)
    result = run_cli("audit", "verify")
    assert result.exit_code == 0
    assert f"checked {cases} cases, {events} events: 0 problems" in result.stdout
