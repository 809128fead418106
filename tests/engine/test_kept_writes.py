"""Writes kept for the next round trip, the transition's one statement, the first reads (issue 11, PostgreSQL).

On PostgreSQL a unit of work keeps the writes nobody reads a result of (`UnitOfWork.execute_later`: a party's
timers relabelled or cancelled by its transition) and sends them with the transaction's next statement or with its
COMMIT; the case write and the event of a transition are one statement; BEGIN and the reads declared with
`Registry.read_first` go out with the first statement. On SQLite the same calls run at once. Either way, what the
transaction reads must see what it wrote, a refusal must leave nothing of its transaction, a savepoint rolled back
must undo what it kept, a stale version must write no event, and a process killed with writes kept must have
committed nothing of that transaction while the others stand, each exactly once.

`python -m tests.engine.test_kept_writes` is the process the kill test starts: it records the parties' decisions
one transaction each and stops, inside the transaction of the party named by VK_STALL_PARTY, after its
transition kept its timer write and before the commit, until the test kills it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import bindparam, func, select, update
from sqlmodel import Session

from api.context import AppContext
from engine.actors import SYSTEM
from engine.definition import parse_definition
from engine.errors import Conflict, InvalidInput
from engine.models import Case, Event, Person, Timer, table_of
from engine.service import UnitOfWork
from tests.engine.test_timer_batches import assert_chains_intact
from tests.support.builders import create_agreement
from tests.support.service_process import READY_TIMEOUT, ROOT, log_tail, reaped

TIMER = table_of(Timer)
_NOTE = (update(TIMER).where(TIMER.c.case_id == bindparam("case"), TIMER.c.status == "pending")
         .values(note=bindparam("note")))
_NOTES = select(TIMER.c.note).where(TIMER.c.case_id == bindparam("case"), TIMER.c.status == "pending")
# a NOT NULL column set to NULL: refused by either database, only when the statement reaches it
_BROKEN = (update(TIMER).where(TIMER.c.case_id == bindparam("case"), TIMER.c.status == "pending")
           .values(status=bindparam("status")))


def _party(ctx: AppContext) -> tuple[int, int]:
    fx = create_agreement(ctx, parties=2)
    party = ctx.engine.run(lambda uow: uow.child(fx.id, fx.keys[0]))
    assert party is not None
    return fx.id, party.id


def _notes(ctx: AppContext, party: int) -> list[str | None]:
    return ctx.engine.run(lambda uow: [r[0] for r in uow.session.connection().execute(_NOTES, {"case": party})])


def _case_and_events(ctx: AppContext, case_id: int) -> tuple[str, int, int, int]:
    with Session(ctx.db.engine) as s:
        case = s.get(Case, case_id)
        assert case is not None
        events = s.execute(select(func.count()).select_from(Event).where(Event.case_id == case_id)).scalar_one()
        return case.state, case.version, case.event_count, int(events)


def test_a_kept_write_is_seen_by_the_next_read_of_either_path_and_commits(ctx: AppContext) -> None:
    _, party = _party(ctx)
    assert _notes(ctx, party), "the party has pending timers to write to"

    def work(uow: UnitOfWork) -> tuple[list[Any], list[Any]]:
        uow.execute_later(_NOTE, {"case": party, "note": "kept"})
        on_cursor = [r[0] for r in uow.select(_NOTES, {"case": party})]
        uow.execute_later(_NOTE, {"case": party, "note": "kept again"})
        on_session = list(uow.session.execute(select(Timer.note).where(
            Timer.case_id == party, Timer.status == "pending")).scalars())
        uow.execute_later(_NOTE, {"case": party, "note": "last"})  # nothing reads it: it goes with the COMMIT
        return on_cursor, on_session

    on_cursor, on_session = ctx.engine.run(work)
    assert on_cursor and set(on_cursor) == {"kept"}
    assert on_session and set(on_session) == {"kept again"}
    assert set(_notes(ctx, party)) == {"last"}


def test_a_kept_write_alone_goes_with_the_commit(ctx: AppContext) -> None:
    _, party = _party(ctx)
    ctx.engine.run(lambda uow: uow.execute_later(_NOTE, {"case": party, "note": "only this"}))
    assert set(_notes(ctx, party)) == {"only this"}


def test_a_refused_kept_write_commits_nothing_of_its_transaction(ctx: AppContext) -> None:
    agreement, party = _party(ctx)
    before = _case_and_events(ctx, agreement)
    notes = _notes(ctx, party)

    def work(uow: UnitOfWork) -> None:
        uow.set_data(uow.case(agreement), title_note="changed in the refused transaction")
        uow.execute_later(_NOTE, {"case": party, "note": "never committed"})
        uow.execute_later(_BROKEN, {"case": party, "status": None})

    with pytest.raises(Conflict):
        ctx.engine.run(work)
    assert _case_and_events(ctx, agreement) == before
    assert _notes(ctx, party) == notes
    data = ctx.engine.run(lambda uow: uow.case(agreement).data)
    assert "title_note" not in data


def test_a_kept_write_inside_a_refused_attempt_is_undone(ctx: AppContext) -> None:
    _, party = _party(ctx)
    notes = _notes(ctx, party)

    def refused(uow: UnitOfWork) -> None:
        uow.execute_later(_NOTE, {"case": party, "note": "undone"})
        raise InvalidInput("note", "refused after the write was kept")

    def work(uow: UnitOfWork) -> str:
        try:
            uow.attempt(refused)
        except InvalidInput:
            pass
        return "went on"

    assert ctx.engine.run(work) == "went on"
    assert _notes(ctx, party) == notes


PROBE = """
name: kept_writes_probe
version: 1
title: {fi: Koetapaus, sv: Provärende, en: Probe}
initial: open
states:
  open:
    description: Open.
  closed:
    description: Closed.
    final: true
transitions:
  - trigger: close
    source: open
    dest: closed
    roles: [system]
    event: Closed
"""


def test_a_stale_version_refuses_the_transition_and_writes_no_event(ctx: AppContext) -> None:
    ctx.registry.register(parse_definition(PROBE, "kept_writes_probe"))
    case_id = ctx.engine.run(lambda uow: uow.create_case("kept_writes_probe", actor=SYSTEM).id)
    before = _case_and_events(ctx, case_id)

    def work(uow: UnitOfWork) -> None:
        uow.case(case_id).version -= 1  # as if read before someone else's transition
        uow.fire(case_id, "close")

    with pytest.raises(Conflict) as refused:
        ctx.engine.run(work)
    assert refused.value.message_id == "error.changed_meanwhile"
    assert _case_and_events(ctx, case_id) == before
    ctx.engine.run(lambda uow: uow.fire(case_id, "close"))  # at the version stored: moved, one event more
    assert _case_and_events(ctx, case_id) == ("closed", before[1] + 1, before[2] + 1, before[3] + 1)


def test_the_declared_first_reads_match_a_fresh_read(ctx: AppContext) -> None:
    agreement, _ = _party(ctx)
    probe = select(Person.__table__.c.id, Person.__table__.c.email).order_by(Person.__table__.c.id)  # type: ignore[attr-defined]
    ctx.registry.read_first("test_people", probe)
    try:
        def work(uow: UnitOfWork) -> tuple[bool, list[Any], list[Any]]:
            uow.case(agreement)  # the transaction's first statement
            sent_with_it = "test_people" in uow.cursor.prefetched
            first = uow.prefetched("test_people")
            fresh = [tuple(r) for r in uow.session.connection().execute(probe)]
            return sent_with_it, first, fresh

        sent_with_it, first, fresh = ctx.engine.run(work)
        assert first == fresh and first
        assert sent_with_it == (not ctx.db.is_sqlite)  # PostgreSQL: in the first statement's round trip
    finally:
        del ctx.registry.prefetch["test_people"]


# -- kill -9 with writes kept ------------------------------------------------------------------------------------

PARTIES = 6


@pytest.mark.slow
def test_kill_9_with_a_transition_kept_commits_none_of_it_and_the_rest_once(ctx: AppContext, tmp_path: Path) -> None:
    fx = create_agreement(ctx, parties=PARTIES, deadline=_today(ctx) + timedelta(days=60))
    stall = fx.keys[PARTIES // 2]
    signers = {k: fx.signatories[k][0].person.id for k in fx.keys}
    log = tmp_path / "decider.log"
    env = {"VUOSIKELLO_DATABASE_URL": ctx.db.url, "VUOSIKELLO_ENVIRONMENT": "test",
           "VUOSIKELLO_BASE_URL": "http://testserver", "VUOSIKELLO_SCHEDULER_ENABLED": "false",
           "VK_AGREEMENT": str(fx.id), "VK_SIGNERS": json.dumps(signers)}
    with reaped(_start({**env, "VK_STALL_PARTY": stall}, log)) as first:
        _wait_for(first, b"stalled", log)  # inside the stalled party's transaction, its timer write kept
    parties = _parties(ctx, fx.id)
    decided = {k for k, (state, *_rest) in parties.items() if state != "invited"}
    assert decided == set(fx.keys[:PARTIES // 2]), parties  # those before the stalled one, not it
    _assert_consistent(ctx, parties)

    with reaped(_start(env, log)) as second:  # the rest, the stalled party included: each decided once
        assert second.wait(READY_TIMEOUT) == 0, log_tail(log)
    parties = _parties(ctx, fx.id)
    assert {state for state, *_rest in parties.values()} == {"approved"}, parties
    assert all(approvals == 1 for _state, approvals, _labels, _counted in parties.values()), parties
    _assert_consistent(ctx, parties)


def _today(ctx: AppContext) -> Any:
    from engine.calendar import HELSINKI

    return ctx.clock.now().astimezone(HELSINKI).date()


def _parties(ctx: AppContext, agreement: int) -> dict[str, tuple[str, int, set[str], tuple[int, int]]]:
    """Per organisation key: state, Approved events, the states its pending timers are labelled with, and
    (event_count, events stored)."""
    from engine.models import Organisation

    out: dict[str, tuple[str, int, set[str], tuple[int, int]]] = {}
    with Session(ctx.db.engine) as s:
        rows = s.execute(select(Case, Organisation.key).join(Organisation, Organisation.id == Case.organisation_id)
                         .where(Case.parent_id == agreement)).all()
        for case, key in rows:
            approved = s.execute(select(func.count()).select_from(Event).where(
                Event.case_id == case.id, Event.trigger == "approve")).scalar_one()
            stored = s.execute(select(func.count()).select_from(Event).where(Event.case_id == case.id)).scalar_one()
            labels = set(s.execute(select(Timer.state).where(Timer.case_id == case.id,
                                                             Timer.status == "pending")).scalars())
            out[key] = (case.state, int(approved), labels, (case.event_count, int(stored)))
    return out


def _assert_consistent(ctx: AppContext, parties: dict[str, tuple[str, int, set[str], tuple[int, int]]]) -> None:
    for key, (state, _approved, labels, (counted, stored)) in parties.items():
        assert counted == stored, f"{key}: the case counts {counted} events, {stored} are stored"
        assert labels and labels == {state}, f"{key} is {state!r}, its pending timers say {labels}"
    assert assert_chains_intact(ctx.db) > 0


def _start(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", "tests.engine.test_kept_writes"], cwd=ROOT,
                                env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=out)


def _wait_for(proc: subprocess.Popen[bytes], prefix: bytes, log: Path) -> None:
    assert proc.stdout is not None
    deadline = time.monotonic() + READY_TIMEOUT
    for line in proc.stdout:
        if line.startswith(prefix):
            return
        if time.monotonic() > deadline:  # pragma: no cover - reported below
            break
    raise AssertionError(f"process {proc.pid} printed no {prefix!r}:\n{log_tail(log)}")


def main() -> int:
    """The decider of the kill test: each party's decision in its own transaction; may stop inside one."""
    from api.context import build_context
    from engine.actors import Actor
    from engine.settings import Settings
    from workflows.agreement import service
    from workflows.agreement.schemas import DecisionIn

    ctx = build_context(Settings())
    agreement = int(os.environ["VK_AGREEMENT"])
    stall = os.environ.get("VK_STALL_PARTY")
    signers: dict[str, int] = json.loads(os.environ["VK_SIGNERS"])
    sha = ctx.engine.run(lambda uow: uow.case(agreement).data["sha256"])
    today = _today(ctx)

    def stop_inside(uow: UnitOfWork, record: Any) -> None:  # after the timers listener kept its write
        if stall and record.trigger == "approve":
            key = uow.info.get("deciding")
            if key == stall:
                print(f"stalled {os.getpid()} {key} kept={len(uow.cursor.later)}", flush=True)
                while True:  # inside the transaction, before its commit, until the test kills this process
                    time.sleep(1)

    ctx.registry.on_transition(stop_inside)
    for key, person_id in signers.items():
        with Session(ctx.db.engine) as s:
            person = s.get(Person, person_id)
            assert person is not None
            actor = Actor(person_id=person.id, name=person.name, roles=person.role_set,
                          organisation_id=person.organisation_id)

        def decide(uow: UnitOfWork, k: str = key, a: Actor = actor) -> None:
            uow.info["deciding"] = k
            body = DecisionIn(outcome="approved", body="Kunnanhallitus", decided_on=today, section="§ 7",
                              document_sha256=sha)
            service.decide(uow, agreement, k, body, a)

        ctx.engine.run(decide)
        print(f"decided {key}", flush=True)
    ctx.db.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
