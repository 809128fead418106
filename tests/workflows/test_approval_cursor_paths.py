"""An approval's timers and its siblings' check on the transaction's cursor (bench.approvals).

A party's decision re-labels its pending timers (its `invited` and `approved` states declare the same ones) and its
signature cancels them, both with prebuilt statements on the cursor: neither opens an ORM session. Whether every
party has signed is read as the first sibling that has not, and must give the answer the full check of every
sibling's state gives, also when that first row turns out to be signed after all (the fallback).
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from api.context import AppContext
from engine.calendar import HELSINKI
from engine.models import Timer
from tests.support.builders import create_agreement
from workflows.agreement import service
from workflows.agreement.schemas import DecisionIn


def _decision(ctx: AppContext, sha: str) -> DecisionIn:
    return DecisionIn(outcome="approved", body="Kunnanhallitus", decided_on=ctx.clock.now().astimezone(HELSINKI).date(),
                      section="58", minutes_url="https://example.fi/poytakirja/58",  # type: ignore[arg-type]
                      document_sha256=sha)


def _timers(ctx: AppContext, case_id: int) -> list[tuple[str, str, str | None]]:
    return ctx.engine.run(lambda uow: [tuple(r) for r in uow.session.execute(
        select(Timer.state, Timer.status, Timer.note).where(Timer.case_id == case_id).order_by(Timer.id))])


def _full_check(uow: Any, parent_id: int) -> bool:
    return all(uow.registry.machine(w, v).definition.has_tag(s, "signed") for _i, w, v, s in
               uow.child_states(parent_id))


def test_decide_relabels_and_sign_cancels_the_timers_without_a_session(ctx: AppContext) -> None:
    fx = create_agreement(ctx, parties=2)
    key = fx.keys[0]
    signer = fx.signatories[key][0].actor
    sha = ctx.engine.run(lambda uow: uow.case(fx.id).data["sha256"])
    party = ctx.engine.run(lambda uow: uow.child(fx.id, key).id)
    armed = _timers(ctx, party)
    assert armed and {(s, st) for s, st, _n in armed} == {("invited", "pending")}

    opened = ctx.engine.run(lambda uow: (service.decide(uow, fx.id, key, _decision(ctx, sha), signer),
                                         uow.open_session)[1])
    assert opened is None
    assert _timers(ctx, party) == [("approved", "pending", None)] * len(armed)

    opened = ctx.engine.run(lambda uow: (service.sign(uow, fx.id, key, signer, sha), uow.open_session)[1])
    assert opened is None
    assert _timers(ctx, party) == [("approved", "cancelled", "left approved (PartySigned)")] * len(armed)


@pytest.mark.parametrize("fallback", [False, True])
def test_all_signed_gives_what_the_full_check_gives(ctx: AppContext, monkeypatch: pytest.MonkeyPatch,
                                                    fallback: bool) -> None:
    if fallback:  # every child comes back, so a signed first sibling sends the check down the full path
        from sqlalchemy import bindparam

        stmt = (select(service._CASE.c.id, service._CASE.c.workflow, service._CASE.c.workflow_version,
                       service._CASE.c.state)
                .where(service._CASE.c.parent_id == bindparam("cid", type_=service._CASE.c.id.type))
                .order_by(service._CASE.c.id).limit(1))
        monkeypatch.setattr(service, "_unsigned_statement", lambda signed: stmt)
    fx = create_agreement(ctx, parties=3)
    sha = ctx.engine.run(lambda uow: uow.case(fx.id).data["sha256"])
    seen = []
    for key in fx.keys:
        signer = fx.signatories[key][0].actor
        ctx.engine.run(lambda uow, k=key, s=signer: service.decide(uow, fx.id, k, _decision(ctx, sha), s))
        answers = ctx.engine.run(lambda uow: (service._all_parties_signed_now(uow, fx.id),
                                              _full_check(uow, fx.id)))
        assert answers[0] == answers[1]
        seen.append(answers[0])
        ctx.engine.run(lambda uow, k=key, s=signer: service.sign(uow, fx.id, k, s, sha))
        answers = ctx.engine.run(lambda uow: (service._all_parties_signed_now(uow, fx.id),
                                              _full_check(uow, fx.id)))
        assert answers[0] == answers[1]
        seen.append(answers[0])
    assert seen == [False] * 5 + [True]
    state = ctx.engine.run(lambda uow: uow.case(fx.id).state)
    assert ctx.registry.machine("agreement").definition.has_tag(state, "deadline_met")


def test_entry_into_force_adds_the_pending_record_row_as_the_orm_did(ctx: AppContext) -> None:
    from workflows.agreement.sealed import SealedRecord

    fx = create_agreement(ctx, parties=2)
    sha = ctx.engine.run(lambda uow: uow.case(fx.id).data["sha256"])
    for key in fx.keys:
        signer = fx.signatories[key][0].actor
        ctx.engine.run(lambda uow, k=key, s=signer: service.decide(uow, fx.id, k, _decision(ctx, sha), s))
        ctx.engine.run(lambda uow, k=key, s=signer: service.sign(uow, fx.id, k, s, sha))
    rows = ctx.engine.run(lambda uow: [r.model_dump() for r in uow.session.execute(
        select(SealedRecord).where(SealedRecord.case_id == fx.id)).scalars()])
    assert len(rows) == 1
    row = rows[0]
    assert row["created_at"] == ctx.clock.now()
    assert {k: v for k, v in row.items() if k not in ("id", "created_at")} == {
        "case_id": fx.id, "version_number": 1, "text_sha256": sha, "pdf_sha256": None, "status": "pending",
        "made_at": None, "pdf": None, "attempts": 0, "error": None}


def test_one_armed_timer_written_on_the_cursor_is_the_whole_row(ctx: AppContext) -> None:
    from engine import timers

    fx = create_agreement(ctx, parties=1)  # circulating: one escalation timer, after the deadline

    def arm_again(uow: Any) -> tuple[int, list[Any], Any, bool]:
        case = uow.case(fx.id)
        spec = uow.machine_of(case).definition.states["circulating"].timers[0]
        planned = timers.planned(uow, case, spec, uow.now)
        armed = timers.arm(uow, case, "circulating", 900)
        row = uow.session.execute(select(Timer).where(Timer.case_id == fx.id, Timer.armed_seq == 900)).scalars().all()
        return armed, [r.model_dump() for r in row], planned, uow.now

    armed, rows, planned, now = ctx.engine.run(arm_again)
    assert armed == 1 and len(rows) == 1 and len(planned) == 1
    row = rows[0]
    due, offset, deadline = planned[0]
    assert row["due_at"] == due and row["due_at"].tzinfo is not None and row["created_at"] == now
    assert {k: v for k, v in row.items() if k not in ("id", "due_at", "created_at")} == {
        "case_id": fx.id, "state": "circulating", "armed_seq": 900, "kind": "escalation",
        "name": "coordinator_escalation", "deadline": deadline, "offset": offset, "trigger": None,
        "roles": "coordinator,regional_director", "template": "deadline_passed",
        "dedupe_key": f"{fx.id}:900:coordinator_escalation:{offset}", "status": "pending", "note": None,
        "fired_at": None}
