"""The nomination plugin: the request (parent) and its proposal cases, wired for the registry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.actors import Actor
from engine.plugin import WorkflowPlugin
from engine.service import UnitOfWork
from workflows.nomination import appointments
from workflows.nomination import service as nomination
from workflows.nomination.models import (
    Appointment,
    Candidate,
    NominationDecision,
    NominationLetter,
    NominationSeat,
    ProposalException,
)
from workflows.nomination.schemas import CancelIn, DecisionIn, ProposalIn, ReplacementIn, WaiveIn
from workflows.triggers import child_key, parse


def _propose(uow: UnitOfWork, cid: int, actor: Actor, p: dict[str, Any], _v: int | None) -> Any:
    parent, org = child_key(uow, cid, "organisation_key")
    return nomination.propose(uow, parent, org, parse(ProposalIn, p), actor)


def _waive(uow: UnitOfWork, cid: int, actor: Actor, p: dict[str, Any], _v: int | None) -> Any:
    parent, org = child_key(uow, cid, "organisation_key")
    return nomination.waive(uow, parent, org, parse(WaiveIn, p), actor)


PLUGIN = WorkflowPlugin(
    name="nomination",
    definitions={Path(__file__).resolve().parent: nomination.GUARDS},
    listeners={nomination.NOMINATION: (nomination.react_to_request,)},
    recipients={nomination.NOMINATION: nomination.recipients, nomination.PROPOSAL: nomination.recipients},
    triggers={
        ("nomination", "decide"): lambda uow, cid, a, p, v: appointments.decide(uow, cid, parse(DecisionIn, p), a),
        ("nomination", "communicate"): lambda uow, cid, a, p, v: appointments.communicate(uow, cid, a),
        ("nomination", "replace_member"): lambda uow, cid, a, p, v: appointments.replace(
            uow, cid, parse(ReplacementIn, p), a),
        ("nomination", "cancel"): lambda uow, cid, a, p, v: nomination.cancel(uow, cid, parse(CancelIn, p), a),
        ("nomination_proposal", "propose"): _propose,
        ("nomination_proposal", "waive"): _waive,
    },
    tables=(NominationSeat, Candidate, ProposalException, NominationDecision, Appointment, NominationLetter),
)
