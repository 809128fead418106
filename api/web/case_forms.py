"""Reading the nomination request and annual survey forms into the workflows' requests, field by field.

Each problem is recorded on its field with a message id, as `api.web.forms` does for agreements.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import func, or_, select
from sqlmodel import Session, col

from api.web.forms import Form
from engine.models import Organisation
from workflows.cycle.schemas import QUESTIONS, SurveyIn
from workflows.nomination.schemas import NominationCreate

REGION_KINDS = ("municipality", "regional_council", "wellbeing_county")
# where the nomination service's InvalidInput fields are shown on the form
NOMINATION_FIELDS = {"deadline": "deadline", "requester.organisation": "requester_organisation",
                     "asked.region": "region", "asked": "organisations", "requester.email": "requester_email",
                     "requester.name": "requester_name", "group": "group", "term_end": "term_end",
                     "term_start": "term_start", "description": "description"}


class NominationFormIn(BaseModel):
    """The new-nomination form as posted: every field text (checked by `read_nomination_form`)."""

    group: str = ""
    description: str = ""
    requester_name: str = ""
    requester_email: str = ""
    requester_contact: str = ""
    requester_organisation: str = ""
    requester_language: str = "fi"
    seats: str = "1"
    deputies: str = ""
    term_start: str = ""
    term_end: str = ""
    deadline: str = ""
    all_councils: str = ""
    region: str = ""
    region_kinds: list[str] = []
    organisations: str = ""

    def form(self) -> Form:
        """Return the values as a web form (the region kinds joined by commas)."""
        values = self.model_dump()
        values["region_kinds"] = ",".join(self.region_kinds)
        return Form(values)


def organisation_key(session: Session, text: str) -> tuple[str | None, int]:
    """Return the key of the one active organisation a line names (kind:code or name) and how many matched."""
    name = text.strip().lower()
    keys = session.execute(select(col(Organisation.key)).where(
        col(Organisation.active).is_(True),
        or_(col(Organisation.key) == text.strip(), func.lower(col(Organisation.name_fi)) == name,
            func.lower(Organisation.name_sv) == name))).scalars().all()
    return (keys[0] if len(keys) == 1 else None), len(keys)


def regions(session: Session, lang: str) -> list[tuple[str, str]]:
    """Return the regions (code, name in the page's language) for a select."""
    rows = session.execute(select(Organisation)
                           .where(col(Organisation.kind) == "region", col(Organisation.active).is_(True))
                           .order_by(col(Organisation.code))).scalars().all()
    return [(r.code, (r.name_sv or r.name_fi) if lang == "sv" else r.name_fi) for r in rows]


def _organisations(session: Session, form: Form) -> list[str]:
    keys: list[str] = []
    for n, line in enumerate((x.strip() for x in form.get("organisations").splitlines() if x.strip()), start=1):
        key, found = organisation_key(session, line)
        if key is None:
            form.fail("organisations", f"agreement.error.party_{'unknown' if not found else 'ambiguous'}|{n}|{line}")
        elif key not in keys:
            keys.append(key)
    return keys


def _requester_org(session: Session, form: Form) -> str | None:
    text = form.get("requester_organisation")
    if not text:
        return None
    key, found = organisation_key(session, text)
    if key is None:
        form.fail("requester_organisation", f"agreement.error.party_{'unknown' if not found else 'ambiguous'}|1|{text}")
    return key


def _asked(session: Session, form: Form) -> dict[str, Any]:
    region = form.get("region") or None
    kinds = [k for k in form.values.get("region_kinds", "").split(",") if k in REGION_KINDS] or ["municipality"]
    asked = {"organisations": _organisations(session, form), "all_regional_councils": form.get("all_councils") == "1",
             "region": region, "region_kinds": kinds}
    if not (asked["organisations"] or asked["all_regional_councils"] or region) and not form.errors.get(
            "organisations"):
        form.fail("organisations", "nomination.error.asked")
    return asked


def read_nomination_form(session: Session, form: Form, today: date, coordinator_id: int) -> NominationCreate | None:
    """Check the new-nomination form and build the workflow's create request from it."""
    group = form.text("group", min_length=2, max_length=300)
    form.text("description", max_length=4000, required=False)
    name = form.text("requester_name", min_length=2, max_length=300)
    email = form.text("requester_email", max_length=320)
    contact = form.text("requester_contact", max_length=200, required=False)
    requester_org = _requester_org(session, form)
    language = form.get("requester_language") or "fi"
    seats = form.integer("seats", low=1, high=10, default=1)
    term_start, term_end, deadline = form.date("term_start"), form.date("term_end"), form.date("deadline")
    if deadline and deadline < today:
        form.fail("deadline", "agreement.error.deadline_past")
    if term_start and term_end and term_end <= term_start:
        form.fail("term_end", "nomination.error.term")
    if deadline and term_start and deadline >= term_start:
        form.fail("deadline", "nomination.error.deadline")
    asked = _asked(session, form)
    if form.errors:
        return None
    try:
        # model_validate: the form's values are plain data for pydantic to check (a bad e-mail is caught below)
        return NominationCreate.model_validate({
            "requester": {"organisation": requester_org, "name": name, "email": email, "contact_person": contact,
                          "language": language},
            "group": group, "description": form.get("description") or None, "term_start": term_start,
            "term_end": term_end, "deadline": deadline, "asked": asked, "coordinator_id": coordinator_id,
            "seats": [{"has_deputy": form.get("deputies") == "1"} for _ in range(seats)]})
    except ValidationError as exc:
        loc = ".".join(str(p) for p in exc.errors()[0]["loc"])
        field = NOMINATION_FIELDS.get(loc, "requester_email" if "email" in loc else "group")
        form.fail(field, "form.error.email" if "email" in loc else "form.error.invalid")
        return None


class SurveyFormIn(BaseModel):
    """The survey answer as posted: a rating per question, comments, and for coordinators the council."""

    rating_cooperation: str = ""
    rating_advocacy: str = ""
    rating_information: str = ""
    rating_meetings: str = ""
    rating_kuntaliitto_support: str = ""
    comments: str = ""
    organisation: str = ""

    def form(self) -> Form:
        """Return the values as a web form."""
        return Form(self.model_dump())


def read_survey_form(form: Form) -> SurveyIn | None:
    """Check the survey answer: a rating 1-5 for every question, optional comments."""
    ratings = {}
    for question in QUESTIONS:
        value = form.get(f"rating_{question}")
        if value not in ("1", "2", "3", "4", "5"):
            form.fail(f"rating_{question}", "survey.error.rating")
        else:
            ratings[question] = int(value)
    comments = form.text("comments", max_length=10_000, required=False)
    if form.errors:
        return None
    return SurveyIn(ratings=ratings, comments=comments)
