"""Reading the web forms: each field checked with a message id the page shows next to it (in its language).

A form that fails comes back with the same values and `errors` mapping field -> message id; the page is answered
with 422, and the errors are listed in a summary that links to each field.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, or_, select
from sqlmodel import Session, col

from api.unit import RequestWork
from engine.errors import InvalidInput
from engine.models import Organisation, Person
from engine.service import UnitOfWork
from engine.text import control_character_problem
from workflows.agreement.schemas import AgreementCreate, DecisionIn, PartyIn

# fields that are one line (a title becomes an email's Subject): no control character at all; other texts keep
# tabs and line breaks (engine/text.py, the same rule as the API's request schemas)
SINGLE_LINE_FIELDS = frozenset({"title", "name", "body", "group", "requester_name", "requester_contact",
                                "decision_ref", "subject", "substitute", "label", "contact_person", "addressee"})
SECTION = re.compile(r"^(§\s*)?\d{1,5}[a-z]?$")
URL = re.compile(r"^https?://[^\s/$.?#][^\s]*$", re.IGNORECASE)


@dataclass
class Form:
    """Submitted values and the errors found in them."""

    values: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)

    def get(self, name: str) -> str:
        """Return a submitted value, trimmed."""
        return self.values.get(name, "").strip()

    def fail(self, name: str, message: str) -> None:
        """Record the first problem of a field."""
        self.errors.setdefault(name, message)

    def ran(self, work: RequestWork, call: Callable[[UnitOfWork], object]) -> bool:
        """Run a service call in the request's unit of work; a refusal naming a field goes onto this form (its own
        message, else "invalid") and what the call wrote is undone. True when the call went through."""
        try:
            work.run(call)
        except InvalidInput as exc:
            self.fail(exc.field, exc.message_id or "form.error.invalid")
            return False
        return True

    def date(self, name: str, *, required: bool = True) -> date | None:
        """Return a field as a date (the browser's yyyy-mm-dd, or d.m.yyyy typed by hand)."""
        text = self.get(name)
        if not text:
            if required:
                self.fail(name, "form.error.required")
            return None
        try:
            if "." in text:
                d, m, y = (int(p) for p in text.split("."))
                return date(y, m, d)
            return date.fromisoformat(text)
        except ValueError:
            self.fail(name, "form.error.date")
            return None

    def text(self, name: str, *, max_length: int, min_length: int = 1, required: bool = True) -> str | None:
        """Return a text field of bounded length, without control characters (a line: none at all)."""
        text = self.get(name)
        if not text:
            if required:
                self.fail(name, "form.error.required")
            return None
        if control_character_problem(text, multiline=name not in SINGLE_LINE_FIELDS):
            self.fail(name, "security.error.control_characters")
            return None
        if len(text) < min_length or len(text) > max_length:
            self.fail(name, "form.error.length")
            return None
        return text

    def integer(self, name: str, *, low: int, high: int, default: int) -> int:
        """Return a whole number within bounds."""
        text = self.get(name)
        if not text:
            return default
        if not text.isdigit() or not low <= int(text) <= high:
            self.fail(name, "form.error.number")
            return default
        return int(text)


def read_minutes(form: Form, today: date, date_field: str) -> tuple[str | None, date | None, str, str]:
    """Check what cites a governing body's decision: the body, a date not in the future, § of the minutes and
    the minutes' address; return them (problems are recorded on the form, as each reader does)."""
    body = form.text("body", min_length=2, max_length=200)
    decided_on = form.date(date_field)
    if decided_on and decided_on > today:
        form.fail(date_field, "decision.error.future")
    section = form.get("section")
    if not SECTION.match(section):
        form.fail("section", "decision.error.section")
    minutes = form.get("minutes_url")
    if minutes and not URL.match(minutes):
        form.fail("minutes_url", "decision.error.url")
    return body, decided_on, section, minutes


def read_decision(form: Form, today: date) -> DecisionIn | None:
    """Check the decision form: outcome, body, date, § of the minutes, minutes address, reason when declined."""
    outcome = form.get("outcome")
    if outcome not in ("approved", "declined"):
        form.fail("outcome", "decision.error.outcome")
    body, decided_on, section, minutes = read_minutes(form, today, "decided_on")
    published_on = form.date("published_on", required=False)  # the minutes' publication: finality counts from it
    if published_on and decided_on and published_on < decided_on:
        form.fail("published_on", "decision.error.before_decision")
    note = form.text("note", max_length=4000, required=False)
    if outcome == "declined" and not note:
        form.fail("note", "decision.error.reason")
    if form.errors:
        return None
    try:
        return DecisionIn(outcome=outcome, body=body, decided_on=decided_on, section=section,  # type: ignore[arg-type]
                          minutes_url=minutes or None, note=note, published_on=published_on)  # type: ignore[arg-type]
    except ValidationError as exc:
        form.fail(str(exc.errors()[0]["loc"][0]), "form.error.invalid")
        return None


def _organisation(session: Session, text: str) -> list[Organisation]:
    name = text.strip().lower()
    return list(session.execute(select(Organisation).where(
        col(Organisation.active).is_(True),
        or_(col(Organisation.key) == text.strip(), func.lower(col(Organisation.name_fi)) == name,
            func.lower(Organisation.name_sv) == name))).scalars())


def read_parties(session: Session, form: Form, required: int) -> list[PartyIn]:
    """Turn the parties field (one organisation per line: kind:code or its name) into parties with signatories."""
    lines = [line.strip() for line in form.get("parties").splitlines() if line.strip()]
    if not lines:
        form.fail("parties", "form.error.required")
        return []
    parties: list[PartyIn] = []
    seen: set[str] = set()
    for number, line in enumerate(lines, start=1):
        found = _organisation(session, line)
        if len(found) != 1:
            form.fail("parties", f"agreement.error.party_unknown|{number}|{line}" if not found
                      else f"agreement.error.party_ambiguous|{number}|{line}")
            continue
        org = found[0]
        if org.key in seen:
            form.fail("parties", f"agreement.error.party_twice|{number}|{line}")
            continue
        seen.add(org.key)
        signers = session.execute(select(col(Person.id)).where(
            col(Person.organisation_id) == org.id, col(Person.active).is_(True),
            col(Person.roles).contains("signatory")).order_by(col(Person.id)).limit(10)).scalars().all()
        if len(signers) < required:
            form.fail("parties", f"agreement.error.party_signatories|{number}|{line}")
            continue
        parties.append(PartyIn(organisation=org.key, signatories=list(signers), required_signatures=required))
    return parties


def read_agreement_form(session: Session, form: Form, today: date, coordinator_id: int) -> AgreementCreate | None:
    """Check the new-agreement form and build the API's create request from it."""
    title = form.text("title", max_length=300)
    deadline = form.date("deadline")
    if deadline and deadline < today:
        form.fail("deadline", "agreement.error.deadline_past")
    document = form.text("document", max_length=500_000)
    required = form.integer("required_signatures", low=1, high=10, default=1)
    parties = read_parties(session, form, required)
    if form.errors:
        return None
    data: dict[str, Any] = dict(title=title, document=document, deadline=deadline, parties=parties,
                                coordinator_id=coordinator_id)
    try:
        return AgreementCreate(**data)
    except ValidationError as exc:
        form.fail(str(exc.errors()[0]["loc"][0]), "form.error.invalid")
        return None


def region_parties(session: Session, region_code: str) -> list[str]:
    """Return the usual parties of a region's framework agreement: its counties, municipalities and council."""
    munis = session.execute(select(Organisation).where(
        col(Organisation.kind) == "municipality", col(Organisation.region_code) == region_code,
        col(Organisation.active).is_(True)).order_by(col(Organisation.code))).scalars().all()
    county_codes = sorted({m.wellbeing_county_code for m in munis if m.wellbeing_county_code})
    counties = [f"wellbeing_county:{c}" for c in county_codes]
    council = session.execute(select(col(Organisation.key)).where(
        col(Organisation.kind) == "regional_council", col(Organisation.code) == region_code)).scalars().all()
    return [*counties, *(m.key for m in munis), *council]
