"""The approval's hot path (issue 11): a decision and a signature written with compiled statements on the cursor.

What it must still do: return rows that are the stored ones (and that a session can take without inserting them
again), see what the ORM wrote earlier in the same transaction, count a party's signatures right when it needs
more than one, refuse an unlisted signer or a stale text with nothing written, and on PostgreSQL lock the
agreement, its framework and the party in one statement, in id order.
"""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

from api.context import AppContext
from engine.errors import Conflict, NotFound, NotPermitted
from engine.models import Event
from tests.support.builders import create_agreement, make_user
from workflows.agreement import cases, service
from workflows.agreement.models import Decision, Signature
from workflows.agreement.schemas import DecisionIn


def _decision(sha: str | None = None, **overrides: object) -> DecisionIn:
    body: dict[str, object] = dict(outcome="approved", body="Kunnanhallitus", decided_on=date(2026, 1, 2),
                                   section="58", minutes_url="https://example.fi/poytakirja/58",
                                   document_sha256=sha)
    body.update(overrides)
    return DecisionIn(**body)  # type: ignore[arg-type]


def _count(ctx: AppContext, model: type, **where: object) -> int:
    def read(uow: object) -> int:
        stmt = select(func.count()).select_from(model)
        for name, value in where.items():
            stmt = stmt.where(getattr(model, name) == value)
        return int(uow.session.execute(stmt).scalar_one())  # type: ignore[attr-defined]
    return ctx.engine.run(read)


def test_the_returned_rows_are_the_stored_ones_and_a_session_does_not_insert_them_again(ctx: AppContext) -> None:
    fx = create_agreement(ctx, parties=2)
    key = fx.keys[0]
    signer = fx.signatories[key][0]
    sha = ctx.engine.run(lambda uow: uow.case(fx.id).data["sha256"])
    decision, created = ctx.engine.run(lambda uow: service.decide(uow, fx.id, key, _decision(sha), signer.actor))
    assert created and decision.id is not None and decision.section == "§ 58" and decision.voided_at is None
    signature, signed = ctx.engine.run(lambda uow: service.sign(uow, fx.id, key, signer.actor, sha))
    assert signed and signature.id is not None and signature.person_id == signer.id

    def compare(uow: object) -> None:
        session = uow.session  # type: ignore[attr-defined]
        stored = session.get(Decision, decision.id)
        assert stored.model_dump() == decision.model_dump()
        assert session.get(Signature, signature.id).model_dump() == signature.model_dump()
    ctx.engine.run(compare)

    def attach(uow: object) -> None:
        session = uow.session  # type: ignore[attr-defined]
        session.add(decision)  # attached as the row it is: no second INSERT
        session.add(signature)
        session.flush()
    ctx.engine.run(attach)
    assert _count(ctx, Decision, party_case_id=decision.party_case_id) == 1
    assert _count(ctx, Signature, party_case_id=signature.party_case_id) == 1
    # the event's payload names the rows written
    payloads = ctx.engine.run(lambda uow: [e.payload for e in uow.session.execute(
        select(Event).where(Event.case_id == decision.party_case_id).order_by(Event.seq)).scalars()])
    assert f'"decision_id":{decision.id}' in payloads[1] and f'"signature_id":{signature.id}' in payloads[2]


def test_a_repeat_returns_the_stored_rows_and_writes_nothing(ctx: AppContext) -> None:
    fx = create_agreement(ctx, parties=2)
    key = fx.keys[1]
    signer = fx.signatories[key][0]
    first, _ = ctx.engine.run(lambda uow: service.decide(uow, fx.id, key, _decision(), signer.actor))
    again, created = ctx.engine.run(lambda uow: service.decide(uow, fx.id, key, _decision(), signer.actor))
    assert not created and again.id == first.id
    other = _decision(section="59")  # a different decision on an approved party: the definition refuses it
    with pytest.raises(Exception):  # noqa: B017, PT011 - whichever refusal, nothing is written
        ctx.engine.run(lambda uow: service.decide(uow, fx.id, key, other, signer.actor))
    assert _count(ctx, Decision, party_case_id=first.party_case_id) == 1
    sig, _ = ctx.engine.run(lambda uow: service.sign(uow, fx.id, key, signer.actor))
    repeat, signed = ctx.engine.run(lambda uow: service.sign(uow, fx.id, key, signer.actor))
    assert not signed and repeat.id == sig.id
    assert _count(ctx, Signature, party_case_id=sig.party_case_id) == 1


def test_a_decision_sees_what_the_orm_wrote_earlier_in_its_transaction(ctx: AppContext) -> None:
    fx = create_agreement(ctx, parties=2)
    key = fx.keys[0]
    signer = fx.signatories[key][0]

    def both(uow: object) -> tuple[Decision, bool]:
        party = cases.party_case(uow, fx.id, key)  # type: ignore[arg-type]
        parent = uow.case(fx.id)  # type: ignore[attr-defined]
        # the same decision, added through the ORM and not flushed: the repeat check must find it
        uow.session.add(Decision(  # type: ignore[attr-defined]
            party_case_id=party.id, outcome="approved", body="Kunnanhallitus", decided_on=date(2026, 1, 2),
            section="§ 58", minutes_url="https://example.fi/poytakirja/58", document_version_id=parent.data[
                "document_version_id"], document_sha256=parent.data["sha256"], recorded_at=uow.now))  # type: ignore[attr-defined]
        return service.decide(uow, fx.id, key, _decision(), signer.actor)  # type: ignore[arg-type]

    found, created = ctx.engine.run(both)
    assert not created and found.section == "§ 58"


def test_a_party_needing_two_signatures_is_signed_by_the_second(ctx: AppContext) -> None:
    fx = create_agreement(ctx, parties=2, signatures=2)
    key = fx.keys[0]
    first, second = fx.signatories[key]
    ctx.engine.run(lambda uow: service.decide(uow, fx.id, key, _decision(), first.actor))
    ctx.engine.run(lambda uow: service.sign(uow, fx.id, key, first.actor))
    state = ctx.engine.run(lambda uow: cases.party_case(uow, fx.id, key).state)
    machine = ctx.registry.machine("agreement_party")
    assert not machine.definition.has_tag(state, "signed")
    ctx.engine.run(lambda uow: service.sign(uow, fx.id, key, second.actor))
    state = ctx.engine.run(lambda uow: cases.party_case(uow, fx.id, key).state)
    assert machine.definition.has_tag(state, "signed")
    # the count a signature brings to its own guard is not left for another one
    assert cases.COUNTED.get() is None


def test_refusals_write_nothing(ctx: AppContext) -> None:
    fx = create_agreement(ctx, parties=2)
    key = fx.keys[0]
    signer = fx.signatories[key][0]
    with pytest.raises(Conflict):
        ctx.engine.run(lambda uow: service.decide(uow, fx.id, key, _decision("0" * 64), signer.actor))
    assert _count(ctx, Decision) == 0
    ctx.engine.run(lambda uow: service.decide(uow, fx.id, key, _decision(), signer.actor))
    stranger = make_user(ctx, org_key=key, name="Ei listalla")
    with pytest.raises(NotPermitted):
        ctx.engine.run(lambda uow: service.sign(uow, fx.id, key, stranger.actor))
    with pytest.raises(Conflict):
        ctx.engine.run(lambda uow: service.sign(uow, fx.id, key, signer.actor, "0" * 64))
    assert _count(ctx, Signature) == 0
    with pytest.raises(NotFound):
        ctx.engine.run(lambda uow: service.sign(uow, fx.id, "municipality:091", signer.actor))
    with pytest.raises(NotFound):
        ctx.engine.run(lambda uow: cases.party_case(uow, 999_999, key))


def test_the_party_comes_with_its_agreement_and_framework(ctx: AppContext) -> None:
    """The agreement's own parent (a task-specific agreement's framework) is read and locked with it, first."""
    fx = create_agreement(ctx, parties=2)
    framework = create_agreement(ctx, parties=2)

    def link(uow: object) -> None:
        uow.cursor.cursor.execute(  # type: ignore[attr-defined]
            'UPDATE "case" SET parent_id = %s WHERE id = %s' if not ctx.db.is_sqlite
            else 'UPDATE "case" SET parent_id = ? WHERE id = ?', (framework.id, fx.id))
    ctx.engine.run(link)
    key = fx.keys[1]

    def read(uow: object) -> list[int]:
        party = cases.party_case(uow, fx.id, key)  # type: ignore[arg-type]
        assert party.data["organisation_key"] == key and party.parent_id == fx.id
        return sorted(uow._rows)  # type: ignore[attr-defined]
    rows = ctx.engine.run(read)
    assert framework.id in rows and fx.id in rows and len(rows) == 3
