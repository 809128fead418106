"""Decision finality (Local Government Act 410/2015, Act 150/1930): the counting, claims and entry into force.

The pure rule first (dates on the holidays that are not official but close the offices), then the flows on the
real database through the services and the timer sweep, with the movable clock.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlmodel import Session, col

import workflows
from api.context import AppContext
from engine.calendar import HELSINKI, is_business_day
from engine.errors import Conflict, InvalidInput, NotPermitted
from engine.models import OutboxMessage, Timer
from engine.versions import store_version
from tests.support.builders import AgreementFixture, User, create_agreement, make_user
from workflows.agreement import cases, claims, service
from workflows.agreement.finality import (
    SimpleClaim,
    SimpleDecision,
    claim_deadline_of,
    finality_of,
    notified_on_of,
    read_fields,
)
from workflows.agreement.models import Decision, DecisionClaim, Signature
from workflows.agreement.read import read_agreement
from workflows.agreement.schemas import ClaimIn, ClaimOutcomeIn, DecisionIn, PublicationIn
from workflows.annual_clock.items import collect, scope_for

SOURCE = Path(workflows.__file__).resolve().parent / "agreement" / "v1.yaml"
TODAY = date(2030, 1, 1)  # long after every date below: the decisions are final unless a claim holds them


def dates(published: date, notice: date | None = None) -> tuple[date | None, date | None, date | None]:
    f = finality_of(SimpleDecision(published, notice), [], TODAY)
    return f.notified_on, f.claim_deadline, f.final_on


# -- the rule ----------------------------------------------------------------------------------------------------


def test_the_holidays_that_close_offices_are_not_business_days() -> None:
    # not official holidays, but Act 150/1930 § 5 moves a deadline off them: the calendar must know them
    assert not is_business_day(date(2026, 6, 19))  # Midsummer Eve, a Friday
    assert not is_business_day(date(2026, 12, 24))  # Christmas Eve, a Thursday
    assert not is_business_day(date(2027, 12, 6))  # Independence Day, a Monday
    assert is_business_day(date(2026, 6, 18)) and is_business_day(date(2026, 12, 23))


def test_midsummer_eve_moves_the_last_day_to_monday() -> None:
    # published Fri 29.5.2026 -> notified Fri 5.6 (7th day) -> 14 days: Fri 19.6, Midsummer Eve; Sat 20.6 is
    # Midsummer Day, Sun 21.6 -> Mon 22.6; final on Tue 23.6
    assert dates(date(2026, 5, 29)) == (date(2026, 6, 5), date(2026, 6, 22), date(2026, 6, 23))


def test_christmas_eve_moves_the_last_day_past_christmas() -> None:
    # published Thu 3.12.2026 -> notified Thu 10.12 -> Thu 24.12 Christmas Eve, 25.12, 26.12 Sat, 27.12 Sun
    assert dates(date(2026, 12, 3)) == (date(2026, 12, 10), date(2026, 12, 28), date(2026, 12, 29))


def test_independence_day_on_a_weekend_and_on_a_monday() -> None:
    # 2026: Independence Day is a Sunday; a last day on Saturday 5.12 moves past it to Monday 7.12
    assert dates(date(2026, 11, 14)) == (date(2026, 11, 21), date(2026, 12, 7), date(2026, 12, 8))
    assert dates(date(2026, 11, 15)) == (date(2026, 11, 22), date(2026, 12, 7), date(2026, 12, 8))
    # 2027: it is a Monday; the last day moves to Tuesday 7.12
    assert dates(date(2027, 11, 15)) == (date(2027, 11, 22), date(2027, 12, 7), date(2027, 12, 8))


def test_an_ordinary_fortnight_and_the_notification_day_not_moved() -> None:
    # published Mon 2.3.2026 -> notified Mon 9.3 -> Mon 23.3 (a business day, not moved) -> final Tue 24.3
    assert dates(date(2026, 3, 2)) == (date(2026, 3, 9), date(2026, 3, 23), date(2026, 3, 24))
    # a notification day on a Saturday stays a Saturday (it is a fact, not a deadline)
    assert notified_on_of(date(2026, 3, 7)) == date(2026, 3, 14)
    assert claim_deadline_of(date(2026, 3, 14)) == date(2026, 3, 30)  # Sat 28.3 -> Mon 30.3


def test_an_electronic_notice_to_a_party_counts_from_its_third_day_when_later() -> None:
    # minutes published Mon 2.3 (residents notified 9.3), a notice sent Fri 13.3: the party is notified Mon 16.3
    assert dates(date(2026, 3, 2), date(2026, 3, 13)) == (date(2026, 3, 16), date(2026, 3, 30), date(2026, 3, 31))
    # a notice sent at once is notified before the residents: the later notification counts
    assert dates(date(2026, 3, 2), date(2026, 3, 2))[0] == date(2026, 3, 9)


def test_status_on_a_day_unpublished_claims_and_outcomes() -> None:
    published = SimpleDecision(date(2026, 3, 2))
    assert finality_of(SimpleDecision(None), [], TODAY).status == "unpublished"
    during = finality_of(published, [], date(2026, 3, 24 - 1))
    assert (during.status, during.final_on, during.expected_final_on) == ("claim_period", None, date(2026, 3, 24))
    on_the_day = finality_of(published, [], date(2026, 3, 24))
    assert on_the_day.is_final and on_the_day.final_on == date(2026, 3, 24)
    assert finality_of(published, [SimpleClaim("pending")], TODAY).status == "contested"
    assert finality_of(published, [SimpleClaim("upheld", date(2026, 4, 1))], TODAY).status == "void"
    rejected = finality_of(published, [SimpleClaim("rejected", date(2026, 4, 20))], TODAY)
    assert (rejected.status, rejected.final_on) == ("final", date(2026, 4, 21))  # the day after the outcome
    early = finality_of(published, [SimpleClaim("withdrawn", date(2026, 3, 10))], TODAY)
    assert early.final_on == date(2026, 3, 24)  # withdrawn within the period: the period still has to pass


def test_the_read_fields_do_not_depend_on_the_day() -> None:
    fields = read_fields(date(2026, 12, 3), None, [{"id": 1, "kind": "rectification", "claimant": "A",
                                                    "filed_on": "2026-12-11", "reference": None,
                                                    "outcome": "rejected", "outcome_on": "2026-12-20",
                                                    "outcome_note": None}])
    assert fields["finality"] == "counting" and fields["final_on"] == date(2026, 12, 29)
    assert fields["claims"][0]["filed_on"] == date(2026, 12, 11)


# -- the flows ---------------------------------------------------------------------------------------------------


def final_definition() -> str:
    return (SOURCE.read_text(encoding="utf-8").replace("version: 1", "version: 2", 1)
            .replace("enter_into_force_when_final: false", "enter_into_force_when_final: true", 1))


def decide(ctx: AppContext, fx: AgreementFixture, key: str, published: date | None = None,
           decided: date = date(2026, 3, 2)) -> None:
    body = DecisionIn(outcome="approved", body="Kunnanhallitus", decided_on=decided, section="§ 58",
                      published_on=published)
    ctx.engine.run(lambda uow: service.decide(uow, fx.id, key, body, fx.signatories[key][0].actor))


def sign(ctx: AppContext, fx: AgreementFixture, key: str) -> None:
    ctx.engine.run(lambda uow: service.sign(uow, fx.id, key, fx.signatories[key][0].actor))


def state(ctx: AppContext, case_id: int) -> str:
    return str(ctx.engine.run(lambda uow: uow.case(case_id).state))


def party_id(ctx: AppContext, fx: AgreementFixture, key: str) -> int:
    return int(ctx.engine.run(lambda uow: cases.party_case(uow, fx.id, key).id))


def record_claim(ctx: AppContext, fx: AgreementFixture, key: str, filed: date, coordinator: User) -> int:
    claim = ClaimIn(kind="rectification", claimant="Matti Meikäläinen", filed_on=filed, reference="KH/123/2026")
    return int(ctx.engine.run(lambda uow: claims.record_claim(uow, fx.id, key, claim, coordinator.actor).id or 0))


def outcome(ctx: AppContext, fx: AgreementFixture, key: str, claim_id: int, what: str, on: date,
            coordinator: User) -> None:
    body = ClaimOutcomeIn(outcome=what, outcome_on=on)  # type: ignore[arg-type]
    ctx.engine.run(lambda uow: claims.decide_claim(uow, fx.id, key, claim_id, body, coordinator.actor))


def at(d: date, hour: int = 9) -> datetime:
    return datetime(d.year, d.month, d.day, hour, tzinfo=HELSINKI).astimezone(UTC)


@pytest.fixture
def coordinator(ctx: AppContext) -> User:
    return make_user(ctx, org_key="regional_council:06", roles="coordinator", name="Koordinaattori")


def test_a_claim_upheld_voids_the_decision_and_asks_the_party_again(ctx: AppContext, coordinator: User) -> None:
    fx = create_agreement(ctx, parties=2, coordinator=coordinator)
    first, second = fx.keys
    decide(ctx, fx, first, published=date(2026, 3, 2))
    sign(ctx, fx, first)
    ctx.clock.set(at(date(2026, 3, 12)))
    claim_id = record_claim(ctx, fx, first, date(2026, 3, 12), coordinator)
    assert state(ctx, party_id(ctx, fx, first)) == "contested"
    with Session(ctx.db.engine) as s:
        party = read_agreement(s, fx.id).parties[0]
    assert party.decision is not None and party.decision.finality == "contested"
    assert party.decision.claims[0].reference == "KH/123/2026" and party.decision.claims[0].outcome == "pending"
    decide(ctx, fx, second)
    sign(ctx, fx, second)
    assert state(ctx, fx.id) == "circulating"  # a contested party has not signed: no entry into force
    with pytest.raises(NotPermitted):  # the party itself does not decide its claims
        body = ClaimOutcomeIn(outcome="upheld", outcome_on=date(2026, 3, 12))
        ctx.engine.run(lambda uow: claims.decide_claim(uow, fx.id, first, claim_id, body,
                                                       fx.signatories[first][0].actor))
    outcome(ctx, fx, first, claim_id, "upheld", date(2026, 3, 12), coordinator)
    pid = party_id(ctx, fx, first)
    assert state(ctx, pid) == "invited"  # asked again
    with Session(ctx.db.engine) as s:
        assert s.execute(select(Decision).where(col(Decision.party_case_id) == pid,
                                                col(Decision.voided_at).is_(None))).first() is None
        assert s.execute(select(Signature).where(col(Signature.party_case_id) == pid,
                                                 col(Signature.voided_at).is_(None))).first() is None
        mails = s.execute(select(OutboxMessage).where(col(OutboxMessage.template) == "claim_upheld")).scalars().all()
        assert [m.person_id for m in mails] == [fx.signatories[first][0].id]
        assert read_agreement(s, fx.id).parties[0].decision is None
    with pytest.raises(Conflict):  # decided once
        outcome(ctx, fx, first, claim_id, "rejected", date(2026, 3, 12), coordinator)
    decide(ctx, fx, first, published=date(2026, 3, 12), decided=date(2026, 3, 12))  # the body decides again
    sign(ctx, fx, first)
    assert state(ctx, fx.id) == "in_force"


def test_a_claim_rejected_returns_the_party_and_the_agreement_enters_into_force(ctx: AppContext,
                                                                                coordinator: User) -> None:
    fx = create_agreement(ctx, parties=2, coordinator=coordinator)
    first, second = fx.keys
    decide(ctx, fx, first, published=date(2026, 3, 2))
    sign(ctx, fx, first)
    ctx.clock.set(at(date(2026, 3, 10)))
    claim_id = record_claim(ctx, fx, first, date(2026, 3, 10), coordinator)
    decide(ctx, fx, second, published=date(2026, 3, 2))
    sign(ctx, fx, second)
    assert state(ctx, fx.id) == "circulating"
    ctx.clock.set(at(date(2026, 4, 1)))
    outcome(ctx, fx, first, claim_id, "rejected", date(2026, 3, 31), coordinator)
    assert state(ctx, party_id(ctx, fx, first)) == "signed"
    assert state(ctx, fx.id) == "in_force"  # the last party back to signed: in force (default setting)
    with Session(ctx.db.engine) as s:
        read = read_agreement(s, fx.id)
        decision = read.parties[0].decision
        assert decision is not None and decision.finality == "counting"
        assert decision.final_on == date(2026, 4, 1)  # the day after the outcome (the period ended 23.3)
        assert read.parties[1].decision is not None and read.parties[1].decision.final_on == date(2026, 3, 24)
        stored = s.execute(select(DecisionClaim)).scalars().one()
        assert (stored.outcome, stored.outcome_on) == ("rejected", date(2026, 3, 31))


def test_enter_into_force_only_when_every_decision_is_final(ctx: AppContext, coordinator: User) -> None:
    admin = make_user(ctx, roles="admin")
    ctx.engine.run(lambda uow: store_version(uow, ctx.registry, final_definition(), "agreement", actor=admin.actor))
    fx = create_agreement(ctx, parties=2, coordinator=coordinator)
    first, second = fx.keys
    decide(ctx, fx, first, published=date(2026, 3, 2))  # final on Tue 24.3
    decide(ctx, fx, second)  # no publication date yet
    sign(ctx, fx, first)
    sign(ctx, fx, second)
    assert state(ctx, fx.id) == "awaiting_finality"
    with Session(ctx.db.engine) as s:
        assert not s.execute(select(Timer).where(col(Timer.case_id) == fx.id, col(Timer.status) == "pending",
                                                 col(Timer.name) == "decisions_final")).first()  # unknown yet
    # the second party's minutes were published on Thu 4.6.2026: notified 11.6, last day Thu 25.6, final Fri 26.6
    ctx.clock.set(at(date(2026, 6, 5)))
    dates_in = PublicationIn(published_on=date(2026, 6, 4))
    ctx.engine.run(lambda uow: claims.record_publication(uow, fx.id, second, dates_in,
                                                         fx.signatories[second][0].actor))
    with Session(ctx.db.engine) as s:
        timer = s.execute(select(Timer).where(col(Timer.case_id) == fx.id, col(Timer.status) == "pending",
                                              col(Timer.name) == "decisions_final")).scalars().one()
    assert timer.due_at.astimezone(HELSINKI) == datetime(2026, 6, 26, 0, 0, tzinfo=HELSINKI)
    ctx.clock.set(datetime(2026, 6, 25, 23, 59, 59, tzinfo=HELSINKI).astimezone(UTC))  # the last day's end
    ctx.sweep.run_due()
    assert state(ctx, fx.id) == "awaiting_finality"
    ctx.clock.set(datetime(2026, 6, 26, 0, 0, 1, tzinfo=HELSINKI).astimezone(UTC))
    ctx.sweep.run_due()
    assert state(ctx, fx.id) == "in_force"
    with Session(ctx.db.engine) as s:
        read = read_agreement(s, fx.id)
        assert read.in_force_at is not None and read.in_force_at.astimezone(HELSINKI).date() == date(2026, 6, 26)
        mails = s.execute(select(OutboxMessage).where(col(OutboxMessage.template) == "agreement_in_force")).all()
        assert mails  # the in-force notice went out from the timer's transition too


def test_a_pending_claim_holds_the_wait_and_its_reminder_goes_to_the_coordinator(ctx: AppContext,
                                                                                 coordinator: User) -> None:
    admin = make_user(ctx, roles="admin")
    ctx.engine.run(lambda uow: store_version(uow, ctx.registry, final_definition(), "agreement", actor=admin.actor))
    fx = create_agreement(ctx, parties=1, coordinator=coordinator)
    (only,) = fx.keys
    decide(ctx, fx, only, published=date(2026, 3, 2))  # last day Mon 23.3, final Tue 24.3
    sign(ctx, fx, only)
    assert state(ctx, fx.id) == "awaiting_finality"
    ctx.clock.set(at(date(2026, 3, 20)))
    claim_id = record_claim(ctx, fx, only, date(2026, 3, 20), coordinator)  # filed Fri 20.3
    assert state(ctx, party_id(ctx, fx, only)) == "contested"
    ctx.clock.set(at(date(2026, 3, 27), 10))  # the weekly reminder: Fri 27.3 09:00; the final date passed
    ctx.sweep.run_due()
    assert state(ctx, fx.id) == "awaiting_finality"
    with Session(ctx.db.engine) as s:
        reminders = s.execute(select(OutboxMessage).where(col(OutboxMessage.template) == "claim_pending")).scalars()
        assert [m.person_id for m in reminders] == [coordinator.id]
    outcome(ctx, fx, only, claim_id, "withdrawn", date(2026, 3, 27), coordinator)
    assert state(ctx, fx.id) == "awaiting_finality"  # final on the day after the outcome: Sat 28.3
    ctx.clock.set(datetime(2026, 3, 28, 0, 0, 1, tzinfo=HELSINKI).astimezone(UTC))
    ctx.sweep.run_due()
    assert state(ctx, fx.id) == "in_force"


def test_claim_dates_before_the_decision_are_refused_with_the_field(ctx: AppContext, coordinator: User) -> None:
    fx = create_agreement(ctx, parties=1, coordinator=coordinator)
    (only,) = fx.keys
    ctx.clock.set(at(date(2026, 3, 10)))
    decide(ctx, fx, only, decided=date(2026, 3, 9))
    with pytest.raises(InvalidInput) as refused:
        record_claim(ctx, fx, only, date(2026, 3, 8), coordinator)
    assert refused.value.field == "filed_on"
    with pytest.raises(InvalidInput) as refused:
        record_claim(ctx, fx, only, date(2026, 3, 11), coordinator)  # in the future
    assert refused.value.field == "filed_on"
    with pytest.raises(InvalidInput) as refused:
        publication = PublicationIn(published_on=date(2026, 3, 8))
        ctx.engine.run(lambda uow: claims.record_publication(uow, fx.id, only, publication, coordinator.actor))
    assert refused.value.field == "published_on"
    claim_id = record_claim(ctx, fx, only, date(2026, 3, 10), coordinator)
    with pytest.raises(InvalidInput) as refused:
        outcome(ctx, fx, only, claim_id, "rejected", date(2026, 3, 9), coordinator)
    assert refused.value.field == "outcome_on"
    with Session(ctx.db.engine) as s:  # nothing of the refused ones was written
        assert len(s.execute(select(DecisionClaim)).all()) == 1


def test_the_party_case_data_carries_the_dates_for_the_annual_clock(ctx: AppContext, coordinator: User) -> None:
    fx = create_agreement(ctx, parties=1, coordinator=coordinator)
    (only,) = fx.keys
    decide(ctx, fx, only, published=date(2026, 5, 29))
    pid = party_id(ctx, fx, only)
    data = ctx.engine.run(lambda uow: uow.case(pid).data)
    assert (data["claim_deadline"], data["final_on"]) == ("2026-06-22", "2026-06-23")


def test_the_annual_clock_shows_the_claim_deadline_and_the_final_date(ctx: AppContext, coordinator: User) -> None:
    fx = create_agreement(ctx, parties=1, coordinator=coordinator)
    (only,) = fx.keys
    decide(ctx, fx, only, published=date(2026, 5, 29))
    with Session(ctx.db.engine) as s:
        scope = scope_for(s, organisation_key=only)
        items = collect(s, scope, date(2026, 6, 1), date(2026, 6, 30), ctx.clock.now(), ctx.registry)
    found = {i.uid.rsplit("-", 1)[1]: (i.kind, i.start, i.title_in("fi")) for i in items}
    assert found["claims"][:2] == ("deadline", date(2026, 6, 22))  # Midsummer moved it
    assert found["claims"][2].endswith(": oikaisuvaatimusaika päättyy")
    assert found["final"][:2] == ("meeting", date(2026, 6, 23)) and "lainvoimainen" in found["final"][2]
