"""The nomination letter (nimeämiskirje): rendered from the decision in the requester's language."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from sqlalchemy import select
from sqlmodel import Session, col

from engine.calendar import format_date
from engine.models import Organisation
from workflows.i18n import template_helpers, translate
from workflows.nomination.models import Appointment, NominationDecision

TEMPLATES = Path(__file__).resolve().parent / "templates"


@lru_cache(maxsize=1)
def _env() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), undefined=StrictUndefined,
                      autoescape=select_autoescape(["html", "html.j2"]), trim_blocks=True, lstrip_blocks=True)
    return env


def organisation_names(session: Session, keys: Iterable[str], lang: str) -> dict[str, str]:
    """Return organisations' names by key, in Swedish for a Swedish reader when there is one, else in Finnish."""
    rows = session.execute(select(Organisation).where(col(Organisation.key).in_(set(keys)))).scalars()
    return {o.key: (o.name_sv or o.name_fi) if lang == "sv" else o.name_fi for o in rows}


def render_letter(data: dict[str, Any], cited: str, decision: NominationDecision,
                  appointments: Sequence[Appointment], lang: str,
                  names: dict[str, str] | None = None) -> tuple[str, str, str]:
    """Return (subject, plain text, HTML) of the letter in fi, sv or en; organisations appear by `names`."""
    helpers = template_helpers(lang)
    lang = helpers["lang"]
    named = names or {}

    def org(key: str) -> str:
        return named.get(key, key)

    def d(value: date | str) -> str:
        return format_date(date.fromisoformat(value) if isinstance(value, str) else value, lang)

    seats = []
    for seat in data["seats"]:
        n = int(seat["number"])
        held = {a.position: a for a in appointments if a.seat == n}
        seats.append({"number": n, "label": seat.get("label"), "member": held.get("member"),
                      "deputy": held.get("deputy")})
    context = {**helpers, "d": d, "org": org, "group": data["group"], "requester": data["requester"],
               "term_start": data["term_start"], "term_end": data["term_end"], "citation": cited,
               "decision": decision, "seats": seats}
    subject = translate(lang, "letter.subject", group=data["group"])
    env = _env()
    text = env.get_template("letter.txt.j2").render(context)
    return subject, text, env.get_template("letter.html.j2").render(context)
