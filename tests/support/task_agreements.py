"""Building task-specific agreements in tests: on a framework agreement in force, through the real services."""

from __future__ import annotations

from datetime import date

from api.context import AppContext
from tests.support.builders import DOCUMENT, AgreementFixture, User
from workflows.agreement import service as agreements
from workflows.agreement.schemas import DecisionIn, PartyIn
from workflows.task_agreement import service
from workflows.task_agreement.schemas import TaskAgreementCreate

LAPE = "Lasten, nuorten ja perheiden palvelut (LAPE)"


def approve_all(ctx: AppContext, fx: AgreementFixture) -> None:
    """Let every party of an agreement approve and sign it (it enters into force)."""
    body = DecisionIn(outcome="approved", body="Kunnanhallitus", decided_on=date(2026, 3, 2), section="§ 58")
    for key in fx.keys:
        signer = fx.signatories[key][0]
        ctx.engine.run(lambda uow, key=key, signer=signer: agreements.decide(uow, fx.id, key, body, signer.actor))
        ctx.engine.run(lambda uow, key=key, signer=signer: agreements.sign(uow, fx.id, key, signer.actor))


def task_body(
    framework: AgreementFixture,
    keys: list[str] | None = None,
    *,
    title: str = "LAPE-sopimus",
    deadline: date = date(2026, 9, 18),
    extra: dict[str, list[User]] | None = None,
) -> TaskAgreementCreate:
    """Return a task-specific agreement's body naming some of the framework's parties (and `extra` others)."""
    signers = {k: framework.signatories[k] for k in (keys if keys is not None else framework.keys)}
    signers.update(extra or {})
    return TaskAgreementCreate(
        title=title,
        theme=LAPE,
        document=DOCUMENT.replace("puitesopimus", "LAPE-sopimus"),
        deadline=deadline,
        parties=[PartyIn(organisation=k, signatories=[u.id for u in users]) for k, users in signers.items()],
    )


def create_task_agreement(
    ctx: AppContext,
    framework: AgreementFixture,
    *,
    keys: list[str] | None = None,
    coordinator: User | None = None,
    circulate: bool = True,
    extra: dict[str, list[User]] | None = None,
) -> AgreementFixture:
    """Start a task-specific agreement on a framework in force, started by the framework's coordinator."""
    starter = coordinator or framework.coordinator
    body = task_body(framework, keys, extra=extra)
    case, _warnings = ctx.engine.run(lambda uow: service.create_task_agreement(uow, framework.id, body, starter.actor))
    if circulate:
        ctx.engine.run(lambda uow: agreements.circulate(uow, case.id, starter.actor))
    signers = {
        p.organisation: [
            u for us in [*framework.signatories.values(), *(extra or {}).values()] for u in us if u.id in p.signatories
        ]
        for p in body.parties
    }
    return AgreementFixture(case.id, starter, signers, {k: 1 for k in signers})
