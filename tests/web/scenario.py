"""Test data and helpers of the part-2 web tests: a realistic scenario, a person's language, a version 2."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import update
from sqlmodel import Session, col

from api.context import AppContext
from engine.models import OutboxMessage, Person
from notifications.outbox import queue_email
from tests.support.builders import AgreementFixture, User, create_agreement, make_user
from workflows.agreement import service as agreements
from workflows.agreement.schemas import DecisionIn
from workflows.cycle import service as cycles
from workflows.cycle.schemas import AgreeIn, CycleCreate, NoteIn
from workflows.nomination import service as nominations
from workflows.nomination.schemas import NominationCreate, WaiveIn

MEASURES = [("Ilmastotyön yhteinen tiekartta", "climate", "regional_council:06", date(2026, 9, 30), "ongoing"),
            ("Sopimuksellisen yhteistyön malli", "contract_based_cooperation", "network:alke", date(2026, 5, 29),
             "not_started"),
            ("Työperäisen maahanmuuton palvelut", "work_based_immigration", "regional_council:02",
             date(2026, 4, 30), "done")]


@dataclass
class Scenario:
    """What the dashboards show."""

    admin: User
    coordinator: User
    agreement: AgreementFixture
    nomination_id: int
    cycle_id: int
    failed_message_id: int


def approve_and_sign(ctx: AppContext, fx: AgreementFixture, key: str) -> None:
    """Have one party approve and sign."""
    signer = fx.signatories[key][0]
    ctx.engine.run(lambda uow: agreements.decide(uow, fx.id, key, DecisionIn(
        outcome="approved", body="Kunnanhallitus", decided_on="2026-03-02", section="§ 58"), signer.actor))
    ctx.engine.run(lambda uow: agreements.sign(uow, fx.id, key, signer.actor))


def _nomination(ctx: AppContext, coordinator: User) -> int:
    body = NominationCreate(requester={"name": "Valtiovarainministeriö", "email": "kirjaamo@vm.example"},
                            group="Alueiden kehittämisen lainvalmisteluryhmä", seats=[{}],
                            term_start=date(2026, 6, 1), term_end=date(2027, 5, 31), deadline=date(2026, 4, 15),
                            asked={"organisations": ["regional_council:06", "regional_council:02"]})
    case = ctx.engine.run(lambda uow: nominations.create_nomination(uow, body, coordinator.actor))
    ctx.engine.run(lambda uow: nominations.waive(uow, case.id, "regional_council:02", WaiveIn(), coordinator.actor))
    return int(case.id)


def _cycle(ctx: AppContext, coordinator: User) -> int:
    case = ctx.engine.run(lambda uow: cycles.create_cycle(uow, CycleCreate(year=2026), coordinator.actor))
    measures = [dict(title=t, theme=th, responsible=r, due_date=d) for t, th, r, d, _s in MEASURES]
    rows = ctx.engine.run(lambda uow: cycles.agree(uow, case.id, AgreeIn(measures=measures), coordinator.actor))
    for row, (*_rest, status) in zip(rows, MEASURES, strict=True):
        if status != "not_started":
            ctx.engine.run(lambda uow, row=row, status=status: cycles.note(
                uow, case.id, row.id, NoteIn(status=status, text="Tilanne päivitetty"), coordinator.actor))
    return int(case.id)


def _failed_message(ctx: AppContext, person: User) -> int:
    message_id = ctx.engine.run(lambda uow: queue_email(
        uow, template="sign_in_link", key="scenario:failed", person_id=person.id,
        context={"link": "https://vuosikello.example/link/x", "case": None, "expires_at": uow.now}))
    with ctx.db.write_engine.begin() as conn:
        conn.execute(update(OutboxMessage).where(col(OutboxMessage.id) == message_id).values(
            status="dead", attempts=5, last_error="550 5.1.1 mailbox unavailable"))
    return int(message_id)


def set_language(ctx: AppContext, person_id: int, lang: str) -> None:
    """Make a person's pages speak a language."""
    with Session(ctx.db.write_engine) as session:
        session.execute(update(Person).where(Person.id == person_id).values(language=lang))  # type: ignore[arg-type]
        session.commit()


def proposal_v2(ctx: AppContext) -> str:
    """Return version 2 of the proposal workflow, where `waived` is called `passed`."""
    text = ctx.registry.sources[("nomination_proposal", 1)].read_text(encoding="utf-8")
    return text.replace("version: 1", "version: 2", 1).replace("waived", "passed")


def build(ctx: AppContext) -> Scenario:
    """Build the scenario at 2.3.2026: a 3-party agreement (one signed), a nomination, the 2026 cycle."""
    admin = make_user(ctx, roles="admin", name="Pää Käyttäjä", email="admin@vuosikello.example")
    coordinator = make_user(ctx, org_key="regional_council:06", roles="coordinator", name="Kaisa Koordinaattori")
    fx = create_agreement(ctx, parties=3, coordinator=coordinator)
    approve_and_sign(ctx, fx, fx.keys[2])
    return Scenario(admin, coordinator, fx, _nomination(ctx, coordinator), _cycle(ctx, coordinator),
                    _failed_message(ctx, fx.signatories[fx.keys[0]][0]))
