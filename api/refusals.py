"""Refusals in the person's language: an engine error's message id and params become a sentence in fi, sv or en.

The engine raises errors with a message id (`error.invalid_transition`, `agreement.error.revised_to`, ...) and
plain params (a workflow, a trigger, a state, the allowed triggers). This module fills them with labels, not
keys: states from the web catalogue (`state.<kind>.<state>`, or the `errors` domain for the few it lacks),
triggers from the `errors` domain, and, for a trigger refused where it cannot fire, the refusal text a
definition may give per transition. An error with no message id still gets a sentence of its kind (naming the
field for bad input), never the engine's English detail.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.errors import (
    Conflict,
    DefinitionError,
    EngineError,
    GuardRejected,
    InvalidInput,
    InvalidTransition,
    NotFound,
    NotPermitted,
    Unauthenticated,
)
from engine.i18n import Catalogue, language
from engine.registry import Registry

LOCALE = Path(__file__).resolve().parent / "locale"
ERRORS = Catalogue(LOCALE, "errors")
WEB = Catalogue(LOCALE, "web")

# the short names the web catalogue's state labels use for each workflow
KINDS = {"agreement_party": "party", "nomination_proposal": "proposal", "cycle_report": "report",
         "cycle_planner": "planner"}
FALLBACK = [(InvalidInput, "error.invalid_input"), (InvalidTransition, "error.conflict"),
            (GuardRejected, "error.conflict"), (Conflict, "error.conflict"),
            (NotPermitted, "error.not_permitted.generic"), (Unauthenticated, "error.unauthenticated"),
            (NotFound, "error.not_found"), (DefinitionError, "error.definition")]


def state_label(lang: str, workflow: str, state: str) -> str:
    """Return a state's label in a language (the state's name when no catalogue has one)."""
    key = f"state.{KINDS.get(workflow, workflow)}.{state}"
    for catalogue in (WEB, ERRORS):
        if catalogue.has(lang, key):
            return catalogue.gettext(lang, key)
    return state


def trigger_label(lang: str, trigger: str) -> str:
    """Return what a trigger does, in a language (its name when the catalogue has none)."""
    key = f"trigger.{trigger}"
    return ERRORS.gettext(lang, key) if ERRORS.has(lang, key) else trigger


def _definition_refusal(registry: Registry | None, exc: EngineError, lang: str) -> str | None:
    workflow, trigger = exc.params.get("workflow"), exc.params.get("trigger")
    if registry is None or not isinstance(exc, InvalidTransition) or not workflow or not trigger:
        return None
    try:
        definition = registry.machine(str(workflow)).definition
    except NotFound:
        return None
    for spec in definition.transitions_for(str(trigger)):
        if spec.refusal is not None:
            return str(getattr(spec.refusal, lang))
    return None


def _labelled(lang: str, params: dict[str, Any]) -> dict[str, Any]:
    out = dict(params)
    workflow = str(params.get("workflow", ""))
    if "state" in params:
        out["state"] = state_label(lang, workflow, str(params["state"]))
    if "trigger" in params:
        out["trigger"] = trigger_label(lang, str(params["trigger"]))
    if "allowed" in params:
        allowed = [trigger_label(lang, str(t)) for t in params["allowed"] or []]
        out["allowed"] = ", ".join(allowed) if allowed else ERRORS.gettext(lang, "error.none")
    return out


class _Missing(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "…"


def refusal_text(exc: EngineError, lang: str | None, registry: Registry | None = None) -> str:
    """Return the sentence that tells a person, in their language, why this was refused."""
    lang = language(lang)
    friendly = _definition_refusal(registry, exc, lang)
    if friendly is not None:
        return friendly
    message_id = exc.message_id
    if message_id == "error.invalid_transition" and not exc.params.get("allowed"):
        message_id = "error.invalid_transition.final"
    if message_id is None or not ERRORS.has(lang, message_id):
        message_id = next(m for cls, m in [*FALLBACK, (EngineError, "error.conflict")] if isinstance(exc, cls))
    params = _labelled(lang, exc.params)
    if isinstance(exc, InvalidInput):
        params.setdefault("field", exc.field)
    return ERRORS.translations(lang).gettext(message_id).format_map(_Missing(params))
