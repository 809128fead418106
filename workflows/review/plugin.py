"""The council-term review plugin: a review per agreement in force and council term, wired for the registry."""

from __future__ import annotations

from pathlib import Path

from engine.plugin import WorkflowPlugin
from workflows.agreement.cases import AGREEMENT
from workflows.review import service as review
from workflows.review.schemas import ConfirmIn, ReviseIn
from workflows.triggers import parse

PLUGIN = WorkflowPlugin(
    name="review",
    definitions={Path(__file__).resolve().parent: {}},
    # reviews follow their agreement: scheduled when it enters into force, cancelled when it is terminated
    listeners={AGREEMENT: (review.react_to_agreement,), review.REVIEW: (review.react_to_review,)},
    triggers={
        ("review", "confirm_unchanged"): lambda uow, cid, a, p, v: review.confirm_unchanged(
            uow, cid, parse(ConfirmIn, p), a),
        ("review", "revise"): lambda uow, cid, a, p, v: review.revise(uow, cid, parse(ReviseIn, p), a),
    },
)
