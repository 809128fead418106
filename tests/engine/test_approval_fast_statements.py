"""`UnitOfWork.execute` and `select`: prebuilt Core statements on the transaction's cursor (issue 11, approvals).

They must give what the session's connection gives (values through the columns' own processors, literal values
of the statement included), see the ORM's unflushed rows, be undone with their transaction or savepoint, open no
ORM session, and take the old path for an IN list to expand.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import bindparam, select, update

from api.context import AppContext
from engine import service as engine_service
from engine.models import Person, Timer, table_of
from notifications.webhooks import events
from tests.support.builders import create_agreement, make_user

TIMER = table_of(Timer)
PERSON = table_of(Person)
_PENDING = select(TIMER.c.id, TIMER.c.case_id, TIMER.c.due_at, TIMER.c.status).where(
    TIMER.c.case_id == bindparam("case"), TIMER.c.status == "pending").order_by(TIMER.c.id)
_RELABEL = (update(TIMER).where(TIMER.c.case_id == bindparam("case"), TIMER.c.status == "pending")
            .values(note=bindparam("note")))
_BY_IDS = select(PERSON.c.id, PERSON.c.name).where(PERSON.c.id.in_(bindparam("ids", expanding=True)))
_NAMED = select(PERSON.c.id).where(PERSON.c.name == bindparam("name"))


def _party_with_timers(ctx: AppContext) -> int:
    fx = create_agreement(ctx, parties=2)
    return int(ctx.engine.run(lambda uow: uow.child(fx.id, fx.keys[0]).id))  # type: ignore[union-attr]


def test_the_same_values_as_the_connection_and_no_session_opened(ctx: AppContext) -> None:
    party = _party_with_timers(ctx)

    def both(uow: engine_service.UnitOfWork) -> tuple[list[tuple[object, ...]], bool]:
        fast = uow.select(_PENDING, {"case": party})
        opened = uow.open_session is not None
        slow = [tuple(r) for r in uow.session.connection().execute(_PENDING, {"case": party})]
        assert fast == slow
        return fast, opened

    rows, opened = ctx.engine.run(both)
    assert rows and not opened
    assert all(isinstance(r[2], datetime) and r[2].tzinfo is not None and r[3] == "pending" for r in rows)
    touched = ctx.engine.run(lambda uow: (uow.execute(_RELABEL, {"case": party, "note": "x"}),
                                          uow.open_session is None))
    assert touched == (len(rows), True)
    notes = ctx.engine.run(lambda uow: uow.session.execute(
        select(Timer.note).where(Timer.case_id == party, Timer.status == "pending")).scalars().all())
    assert notes == ["x"] * len(rows)


def test_unflushed_orm_rows_are_seen_and_an_in_list_takes_the_old_path(ctx: AppContext) -> None:
    def work(uow: engine_service.UnitOfWork) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
        person = Person(name="Lisätty Istunnossa", email="lisatty@example.fi", roles="signatory",
                        created_at=datetime(2026, 1, 5, tzinfo=UTC))
        uow.session.add(person)  # not flushed
        found = uow.select(_NAMED, {"name": "Lisätty Istunnossa"})
        uow.session.flush()
        return found, uow.select(_BY_IDS, {"ids": [person.id, -1]})

    found, listed = ctx.engine.run(work)
    assert len(found) == 1 and listed == [(found[0][0], "Lisätty Istunnossa")]


def test_undone_with_the_transaction_and_with_a_savepoint(ctx: AppContext) -> None:
    party = _party_with_timers(ctx)
    with pytest.raises(RuntimeError):
        def fail(uow: engine_service.UnitOfWork) -> None:
            assert uow.execute(_RELABEL, {"case": party, "note": "rolled back"}) > 0
            raise RuntimeError("undo")
        ctx.engine.run(fail)

    def partly(uow: engine_service.UnitOfWork) -> None:
        def inner(u: engine_service.UnitOfWork) -> None:
            u.execute(_RELABEL, {"case": party, "note": "savepoint"})
            raise ValueError("undo the savepoint only")
        with pytest.raises(ValueError):
            uow.attempt(inner)
        uow.execute(_RELABEL, {"case": party, "note": "kept"})

    ctx.engine.run(partly)
    notes = ctx.engine.run(lambda uow: {r[0] for r in uow.session.execute(
        select(Timer.note).where(Timer.case_id == party, Timer.status == "pending"))})
    assert notes == {"kept"}


def test_compiled_once_and_the_webhook_subscriptions_read_once_per_transaction(ctx: AppContext) -> None:
    party = _party_with_timers(ctx)
    ctx.engine.run(lambda uow: uow.select(_PENDING, {"case": party}))
    size = len(engine_service._COMPILED)
    ctx.engine.run(lambda uow: uow.select(_PENDING, {"case": party}))
    assert len(engine_service._COMPILED) == size

    def twice(uow: engine_service.UnitOfWork) -> bool:
        first = events._subscriptions(uow)
        return events._subscriptions(uow) is first and uow.open_session is None
    assert ctx.engine.run(twice)
    make_user(ctx, org_key="municipality:837")  # the set-up still writes through the ORM as before
