"""Task-specific agreements: started on a framework in force, approved like any agreement, reviewed and flagged
with their framework. Real services on a SQLite file and PostgreSQL; every check can fail."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from api.context import AppContext
from engine.audit import verify_all
from engine.errors import GuardRejected, InvalidInput, NotPermitted
from engine.models import Case, Event
from tests.support.builders import AgreementFixture, create_agreement, make_user
from tests.support.task_agreements import approve_all, create_task_agreement, task_body
from workflows.agreement import service as agreements
from workflows.agreement.schemas import DocumentIn, PartyIn, TerminateIn
from workflows.review import service as reviews
from workflows.review.schemas import ReviewStart
from workflows.task_agreement import service
from workflows.task_agreement.models import TaskAgreementLink
from workflows.task_agreement.schemas import ContinueIn


def state_of(ctx: AppContext, case_id: int) -> str:
    return str(ctx.engine.run(lambda uow: uow.case(case_id).state))


def events_of(ctx: AppContext, case_id: int) -> list[tuple[str, str]]:
    with Session(ctx.db.engine) as s:
        rows = s.execute(select(Event.name, Event.payload).where(Event.case_id == case_id).order_by(Event.seq)).all()
    return [(name, payload) for name, payload in rows]


def counts(ctx: AppContext) -> tuple[int, int, int]:
    with Session(ctx.db.engine) as s:
        return (
            int(s.execute(select(func.count()).select_from(Case)).scalar_one()),
            int(s.execute(select(func.count()).select_from(Event)).scalar_one()),
            int(s.execute(select(func.count()).select_from(TaskAgreementLink)).scalar_one()),
        )


@pytest.fixture
def framework(ctx: AppContext) -> AgreementFixture:
    fx = create_agreement(ctx, parties=4)
    approve_all(ctx, fx)
    assert state_of(ctx, fx.id) == "in_force"
    return fx


def terminate(ctx: AppContext, fx: AgreementFixture, end: date = date(2026, 12, 31)) -> None:
    body = TerminateIn(reason="Korvattu uudella puitesopimuksella", end_date=end)
    ctx.engine.run(lambda uow: agreements.terminate(uow, fx.id, body, fx.coordinator.actor))


def test_started_on_a_framework_in_force_and_linked_both_ways(ctx: AppContext, framework: AgreementFixture) -> None:
    outsider_org = "municipality:091"  # Helsinki: not a party of Pirkanmaa's framework
    outsider = make_user(ctx, org_key=outsider_org, name="Helsingin allekirjoittaja")
    body = task_body(framework, framework.keys[:2], extra={outsider_org: [outsider]})
    case, warnings = ctx.engine.run(
        lambda uow: service.create_task_agreement(uow, framework.id, body, framework.coordinator.actor)
    )
    assert [(w.field, w.organisation) for w in warnings] == [("parties[2].organisation", outsider_org)]
    assert state_of(ctx, case.id) == "draft"
    with Session(ctx.db.engine) as s:
        link = s.execute(select(TaskAgreementLink)).scalar_one()
        task = s.get(Case, case.id)
        assert task is not None
        assert (link.framework_id, link.agreement_id, link.outside_framework) == (framework.id, case.id, [outsider_org])
        assert task.parent_id is None  # not a party of the framework: its own agreement with its own parties
        assert task.data["framework_id"] == framework.id
    # both audit chains name the link; the warning is in the hashed payloads
    created = events_of(ctx, case.id)[0]
    assert created[0] == "Created" and f'"framework_id":{framework.id}' in created[1] and outsider_org in created[1]
    started = events_of(ctx, framework.id)[-1]
    assert started[0] == "TaskAgreementStarted" and f'"task_agreement":{case.id}' in started[1]
    assert state_of(ctx, framework.id) == "in_force"  # recorded on the framework, which stays where it was
    with Session(ctx.db.engine) as s:
        assert verify_all(s)[2] == []


@pytest.mark.parametrize("bad", ["draft_framework", "past_deadline", "unknown_org", "nested", "not_coordinator"])
def test_bad_input_names_the_field_and_writes_nothing(ctx: AppContext, framework: AgreementFixture, bad: str) -> None:
    target = framework.id
    actor = framework.coordinator.actor
    body = task_body(framework, framework.keys[:2])
    field = None
    if bad == "draft_framework":
        target = create_agreement(ctx, parties=2, circulate=False, coordinator=framework.coordinator).id
        field = "framework_id"
    elif bad == "past_deadline":
        body = task_body(framework, framework.keys[:2], deadline=date(2026, 1, 2))
        field = "deadline"
    elif bad == "unknown_org":
        body = body.model_copy(
            update={"parties": [*body.parties, PartyIn(organisation="municipality:999", signatories=[1])]}
        )
        field = "parties[2].organisation"
    elif bad == "nested":
        target = create_task_agreement(ctx, framework, keys=framework.keys[:2]).id
        approve_all(
            ctx,
            AgreementFixture(
                target, framework.coordinator, {k: framework.signatories[k] for k in framework.keys[:2]}, {}
            ),
        )
        field = "framework_id"
    elif bad == "not_coordinator":
        actor = make_user(ctx, org_key="regional_council:02", roles="coordinator").actor
    before = counts(ctx)
    expected = NotPermitted if field is None else InvalidInput
    with pytest.raises(expected) as err:
        ctx.engine.run(lambda uow: service.create_task_agreement(uow, target, body, actor))
    if field is not None:
        assert isinstance(err.value, InvalidInput) and err.value.field == field
    assert counts(ctx) == before


def test_an_empty_party_list_names_the_field_and_writes_nothing(ctx: AppContext, framework: AgreementFixture) -> None:
    body = task_body(framework, [])
    before = counts(ctx)
    with pytest.raises(InvalidInput) as err:
        ctx.engine.run(lambda uow: service.create_task_agreement(uow, framework.id, body, framework.coordinator.actor))
    assert err.value.field == "parties" and err.value.message_id == "task_agreement.error.no_parties"
    assert counts(ctx) == before


def test_same_approval_exactly_once_and_reviewed_with_its_framework(
    ctx: AppContext, framework: AgreementFixture
) -> None:
    task = create_task_agreement(ctx, framework, keys=framework.keys[:2])
    approve_all(ctx, task)
    assert state_of(ctx, task.id) == "in_force"
    names = [n for n, _ in events_of(ctx, task.id)]
    assert names.count("AgreementEnteredIntoForce") == 1
    with Session(ctx.db.engine) as s:
        own = [
            c
            for c in s.execute(select(Case).where(Case.workflow == "review")).scalars()
            if c.data.get("agreement_id") == task.id
        ]
    assert own == []  # the framework's review covers it; no review case of its own
    review = ctx.engine.run(
        lambda uow: reviews.start_now(uow, framework.id, ReviewStart(), framework.coordinator.actor)
    )
    assert state_of(ctx, framework.id) == "under_review"
    assert state_of(ctx, task.id) == "under_review"
    started = [p for n, p in events_of(ctx, task.id) if n == "ReviewStarted"]
    assert started == [f'{{"review_case":{review.id}}}']
    # confirm: the task's own transition, by its coordinator (not by another coordinator)
    foreign = make_user(ctx, org_key="regional_council:02", roles="coordinator")
    with pytest.raises(NotPermitted):
        ctx.engine.run(lambda uow: service.confirm_unchanged(uow, task.id, foreign.actor))
    ctx.engine.run(lambda uow: service.confirm_unchanged(uow, task.id, task.coordinator.actor))
    assert state_of(ctx, task.id) == "in_force"


def test_review_revise_and_end_each_linked_agreement(ctx: AppContext, framework: AgreementFixture) -> None:
    first = create_task_agreement(ctx, framework, keys=framework.keys[:2])
    second = create_task_agreement(ctx, framework, keys=framework.keys[2:])
    draft = create_task_agreement(ctx, framework, keys=framework.keys[:1], circulate=False)
    approve_all(ctx, first)
    approve_all(ctx, second)
    ctx.engine.run(lambda uow: reviews.start_now(uow, framework.id, ReviewStart(), framework.coordinator.actor))
    assert [state_of(ctx, c.id) for c in (first, second, draft)] == ["under_review", "under_review", "draft"]
    ctx.engine.run(
        lambda uow: agreements.revise(uow, first.id, DocumentIn(text="# LAPE-sopimus 2\n"), first.coordinator.actor)
    )
    assert state_of(ctx, first.id) == "circulating"
    end = TerminateIn(reason="Tehtävä siirtyi hyvinvointialueelle", end_date=date(2026, 6, 30))
    ctx.engine.run(lambda uow: agreements.terminate(uow, second.id, end, second.coordinator.actor))
    assert state_of(ctx, second.id) == "terminated"
    assert state_of(ctx, framework.id) == "under_review"  # the framework's own review goes on


def test_termination_flags_each_one_and_its_coordinator_decides(ctx: AppContext, framework: AgreementFixture) -> None:
    other = make_user(ctx, org_key="wellbeing_county:08", roles="coordinator", name="LAPE-koordinaattori")
    in_force = create_task_agreement(ctx, framework, keys=framework.keys[:2])
    in_force = AgreementFixture(in_force.id, in_force.coordinator, in_force.signatories, in_force.required)
    approve_all(ctx, in_force)
    body = task_body(framework, framework.keys[2:]).model_copy(update={"coordinator_id": other.id})
    circulating, _ = ctx.engine.run(
        lambda uow: service.create_task_agreement(uow, framework.id, body, framework.coordinator.actor)
    )
    ctx.engine.run(lambda uow: agreements.circulate(uow, circulating.id, other.actor))
    # not yet flagged: going on alone is refused by the definition's guard
    with pytest.raises(GuardRejected):
        ctx.engine.run(lambda uow: service.continue_alone(uow, circulating.id, ContinueIn(reason="x"), other.actor))
    terminate(ctx, framework)
    assert state_of(ctx, framework.id) == "terminated"
    assert state_of(ctx, in_force.id) == "framework_ended"
    assert state_of(ctx, circulating.id) == "circulating"  # flagged on its chain, still asking its parties
    flagged = [p for n, p in events_of(ctx, circulating.id) if n == "FrameworkTerminated"]
    assert flagged == [f'{{"end_date":"2026-12-31","framework":{framework.id}}}']
    # the in-force one continues on its own with a reason; from now on it has its own council-term review
    reason = "LAPE-yhteistyö jatkuu uuden puitesopimuksen valmisteluun asti"
    with pytest.raises(NotPermitted):
        ctx.engine.run(lambda uow: service.continue_alone(uow, in_force.id, ContinueIn(reason=reason), other.actor))
    ctx.engine.run(
        lambda uow: service.continue_alone(uow, in_force.id, ContinueIn(reason=reason), in_force.coordinator.actor)
    )
    assert state_of(ctx, in_force.id) == "in_force"
    assert [p for n, p in events_of(ctx, in_force.id) if n == "ContinuedWithoutFramework"] == [
        f'{{"reason":"{reason}"}}'
    ]
    with Session(ctx.db.engine) as s:
        own = [
            c
            for c in s.execute(select(Case).where(Case.workflow == "review")).scalars()
            if c.data.get("agreement_id") == in_force.id
        ]
        assert [(c.state, c.data["term_start"]) for c in own] == [("scheduled", "2029-06-01")]
    # the circulating one: its coordinator goes on (guard passes now), once
    ctx.engine.run(lambda uow: service.continue_alone(uow, circulating.id, ContinueIn(reason="Jatketaan"), other.actor))
    assert state_of(ctx, circulating.id) == "circulating"
    with pytest.raises(GuardRejected):
        ctx.engine.run(lambda uow: service.continue_alone(uow, circulating.id, ContinueIn(reason="Taas"), other.actor))
    with Session(ctx.db.engine) as s:
        assert verify_all(s)[2] == []


def test_end_with_the_framework(ctx: AppContext, framework: AgreementFixture) -> None:
    task = create_task_agreement(ctx, framework, keys=framework.keys[:2])
    approve_all(ctx, task)
    terminate(ctx, framework)
    end = TerminateIn(reason="Päättyy puitesopimuksen mukana", end_date=date(2026, 12, 31))
    ctx.engine.run(lambda uow: agreements.terminate(uow, task.id, end, task.coordinator.actor))
    assert state_of(ctx, task.id) == "terminated"


def test_flagged_while_being_approved_it_waits_for_the_choice_once_in_force(
    ctx: AppContext, framework: AgreementFixture
) -> None:
    task = create_task_agreement(ctx, framework, keys=framework.keys[:2])
    terminate(ctx, framework)
    assert state_of(ctx, task.id) == "circulating"  # flagged in place, still asking its parties
    approve_all(ctx, task)
    assert state_of(ctx, task.id) == "framework_ended"  # in force, and waiting for its coordinator's choice
    names = [n for n, _ in events_of(ctx, task.id)]
    assert names.count("AgreementEnteredIntoForce") == 1 and names.count("FrameworkTerminated") == 2
    ctx.engine.run(
        lambda uow: service.continue_alone(uow, task.id, ContinueIn(reason="Jatkuu"), task.coordinator.actor)
    )
    assert state_of(ctx, task.id) == "in_force"
