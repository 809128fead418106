"""Reading the nomination forms (proposal, decision, replacement) field by field, as `api.web.forms` does.

Each problem is recorded on its field; a message that needs more than one value is translated here and carried
as `nomination.form.message|0|<text>`. A refusal of the service (its InvalidInput names a field of the API's
body, e.g. `candidates[2].gender`) is put back on the form field it came from, in the page's language.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from pydantic import ValidationError

from api.web.forms import Form, read_minutes
from api.web.i18n import translate
from workflows.nomination.equality import lacking
from workflows.nomination.models import GENDERS, Candidate
from workflows.nomination.schemas import DecisionIn, ProposalIn, ReplacementIn

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
SLOTS = 2  # a woman and a man per seat position, as Equality Act §4 a asks
PARTS = ("name", "gender", "email", "title")


def message(lang: str, key: str, **params: object) -> str:
    """Return a form error that carries a sentence translated here (for messages with several values)."""
    return f"nomination.form.message|0|{translate(lang, key, **params)}"


@dataclass(frozen=True)
class Slot:
    """One row of the proposal form: the i-th candidate for a seat's member or deputy."""

    seat: int
    position: str
    index: int

    @property
    def prefix(self) -> str:
        """Return the row's field prefix, e.g. s1-member-2."""
        return f"s{self.seat}-{self.position}-{self.index}"


def positions(seats: list[dict[str, Any]]) -> list[tuple[int, str]]:
    """Return each seat's positions: (1, member), (1, deputy), (2, member)..."""
    return [(int(s["number"]), p) for s in seats for p in (("member", "deputy") if s["has_deputy"] else ("member",))]


def reason_key(seat: int, position: str) -> str:
    """Return the field name of a seat position's exception reason."""
    return f"s{seat}-{position}-reason"


def slots(seats: list[dict[str, Any]], values: dict[str, str]) -> dict[tuple[int, str], list[Slot]]:
    """Return the rows of each seat position: two, or as many as the values fill."""
    out: dict[tuple[int, str], list[Slot]] = {}
    for seat, position in positions(seats):
        count = SLOTS
        while f"s{seat}-{position}-{count + 1}-name" in values:
            count += 1
        out[(seat, position)] = [Slot(seat, position, i) for i in range(1, count + 1)]
    return out


def proposal_values(candidates: list[Candidate], exceptions: list[dict[str, object]]) -> dict[str, str]:
    """Return the form values of a stored proposal (so the organisation changes it rather than retyping)."""
    values: dict[str, str] = {}
    counts: dict[tuple[int, str], int] = {}
    for c in candidates:
        n = counts[(c.seat, c.position)] = counts.get((c.seat, c.position), 0) + 1
        prefix = f"s{c.seat}-{c.position}-{n}"
        values.update({f"{prefix}-name": c.name, f"{prefix}-gender": c.gender, f"{prefix}-email": c.email or "",
                       f"{prefix}-title": c.title or ""})
    for e in exceptions:
        values[reason_key(int(str(e["seat"])), str(e["position"]))] = str(e["reason"])
    return values


def proposal_labels(lang: str, seats: list[dict[str, Any]], values: dict[str, str]) -> dict[str, str]:
    """Return each field's label for the error summary, e.g. "Paikka 1, jäsen, ehdokas 2: nimi"."""
    labels: dict[str, str] = {}
    for (seat, position), rows in slots(seats, values).items():
        where = translate(lang, "nomination.proposal.where", seat=seat,
                          position=translate(lang, f"position.{position}"))
        labels[f"s{seat}-{position}"] = where
        labels[reason_key(seat, position)] = f"{where}: {translate(lang, 'nomination.proposal.reason')}"
        for slot in rows:
            for part in PARTS:
                labels[f"{slot.prefix}-{part}"] = translate(
                    lang, "nomination.proposal.field", where=where, n=slot.index,
                    field=translate(lang, f"nomination.proposal.{'title_field' if part == 'title' else part}"))
    return labels


def read_proposal(form: Form, seats: list[dict[str, Any]], lang: str) -> tuple[ProposalIn | None, list[str]]:
    """Check the proposal form; return the proposal and the row prefix of each candidate in it."""
    candidates: list[dict[str, Any]] = []
    prefixes: list[str] = []
    exceptions: list[dict[str, Any]] = []
    for (seat, position), rows in slots(seats, form.values).items():
        for slot in rows:
            p = slot.prefix
            if not any(form.get(f"{p}-{part}") for part in PARTS):
                continue
            name = form.text(f"{p}-name", min_length=2, max_length=200)
            gender = form.get(f"{p}-gender")
            if gender not in GENDERS:
                form.fail(f"{p}-gender", "nomination.form.gender")
            email = form.get(f"{p}-email")
            if email and (len(email) > 320 or not EMAIL.match(email)):
                form.fail(f"{p}-email", "form.error.email")
            title = form.text(f"{p}-title", max_length=200, required=False)
            candidates.append({"seat": seat, "position": position, "name": name, "gender": gender,
                               "email": email or None, "title": title})
            prefixes.append(p)
        reason = form.text(reason_key(seat, position), min_length=5, max_length=2000, required=False)
        if reason:
            exceptions.append({"seat": seat, "position": position, "reason": reason})
    if not candidates:
        first = next(iter(slots(seats, form.values).values()))[0]
        form.fail(f"{first.prefix}-name", "nomination.form.nobody")
    if not form.errors:
        seat_map = {int(s["number"]): bool(s["has_deputy"]) for s in seats}
        excepted = {(e["seat"], e["position"]) for e in exceptions}
        for seat, position, missing in lacking(seat_map, [(c["seat"], c["position"], c["gender"])
                                                          for c in candidates], excepted):
            where = translate(lang, "nomination.proposal.where", seat=seat,
                              position=translate(lang, f"position.{position}"))
            key = "nomination.form.pair_nobody" if len(missing) == 2 else "nomination.form.pair_missing"
            form.fail(f"s{seat}-{position}", message(lang, key, where=where,
                                                      gender=translate(lang, f"gender.{missing[0]}")))
    if form.errors:
        return None, prefixes
    try:
        return ProposalIn.model_validate({"candidates": candidates, "exceptions": exceptions}), prefixes
    except ValidationError as exc:
        loc = [str(x) for x in exc.errors()[0]["loc"]]
        form.fail(proposal_field(loc_text(loc), prefixes, seats), "form.error.invalid")
        return None, prefixes


def loc_text(loc: list[str]) -> str:
    """Turn a pydantic location into the service's field names, e.g. candidates[0].email."""
    out = ""
    for part in loc:
        out += f"[{part}]" if part.isdigit() else (f".{part}" if out else part)
    return out


def proposal_field(field: str, prefixes: list[str], seats: list[dict[str, Any]]) -> str:
    """Return the form field a service field of the proposal names."""
    found = re.match(r"^candidates\[(\d+)\]\.(\w+)", field)
    if found and int(found.group(1)) < len(prefixes):
        part = found.group(2) if found.group(2) in PARTS else "name"
        return f"{prefixes[int(found.group(1))]}-{part}"
    seat, position = positions(seats)[0]
    return f"s{seat}-{position}"


def decision_labels(lang: str, seats: list[dict[str, Any]]) -> dict[str, str]:
    """Return the decision form's labels for the error summary."""
    labels = {"body": translate(lang, "decision.body"), "meeting_date": translate(lang, "nomination.decide.date"),
              "section": translate(lang, "decision.section"), "minutes_url": translate(lang, "decision.minutes"),
              "justification": translate(lang, "nomination.decide.justification")}
    for seat, position in positions(seats):
        labels[f"seat-{seat}-{position}"] = translate(lang, "nomination.proposal.where", seat=seat,
                                                      position=translate(lang, f"position.{position}"))
    return labels


def read_decision_form(form: Form, seats: list[dict[str, Any]], today: date) -> DecisionIn | None:
    """Check the decision form: the meeting (body, date, §, minutes) and a member and deputy per seat."""
    body, meeting_date, section, minutes = read_minutes(form, today, "meeting_date")
    justification = form.text("justification", max_length=4000, required=False)
    choices = []
    for s in seats:
        seat = int(s["number"])
        chosen: dict[str, int | None] = {"member": None, "deputy": None}
        for position in ("member", "deputy") if s["has_deputy"] else ("member",):
            value = form.get(f"seat-{seat}-{position}")
            if not value.isdigit():
                form.fail(f"seat-{seat}-{position}", "nomination.form.choose")
            else:
                chosen[position] = int(value)
        choices.append({"seat": seat, **chosen})
    if form.errors:
        return None
    try:
        return DecisionIn.model_validate({"body": body, "meeting_date": meeting_date, "section": section,
                                          "minutes_url": minutes or None, "justification": justification,
                                          "seats": choices})
    except ValidationError as exc:
        form.fail(str(exc.errors()[0]["loc"][0]), "form.error.invalid")
        return None


def decision_field(field: str, data: DecisionIn) -> str:
    """Return the form field a service field of the decision names."""
    found = re.match(r"^seats\[(\d+)\]\.(member|deputy)", field)
    if found and int(found.group(1)) < len(data.seats):
        return f"seat-{data.seats[int(found.group(1))].seat}-{found.group(2)}"
    if field.startswith("seats"):
        return f"seat-{data.seats[0].seat}-member"
    return field if field in ("meeting_date", "justification", "body", "section", "minutes_url") else "body"


REPLACEMENT_FIELDS = {"seat": "slot", "candidate_id": "candidate", "person_id": "name", "name": "name",
                      "gender": "gender", "organisation": "organisation", "email": "email",
                      "effective_date": "effective_date", "justification": "justification", "reason": "reason",
                      "decision_ref": "decision_ref"}


def replacement_labels(lang: str) -> dict[str, str]:
    """Return the replacement form's labels for the error summary."""
    return {name: translate(lang, f"nomination.replace.{name}") for name in set(REPLACEMENT_FIELDS.values())}


def read_replacement(form: Form, current: set[tuple[int, str]],
                     organisation: Callable[[str], str | None]) -> ReplacementIn | None:
    """Check the replacement form: which position, who comes in (a candidate or a new person), from when, why."""
    slot = form.get("slot")
    seat_text, _, position = slot.partition("-")
    if not seat_text.isdigit() or (int(seat_text), position) not in current:
        form.fail("slot", "nomination.form.choose")
    candidate = form.get("candidate")
    if candidate and not candidate.isdigit():
        form.fail("candidate", "nomination.form.choose")
    name = gender = org_key = email = None
    if not candidate:
        name = form.text("name", min_length=2, max_length=200)
        gender = form.get("gender")
        if gender not in GENDERS:
            form.fail("gender", "nomination.form.gender")
        if form.get("organisation"):
            org_key = organisation(form.get("organisation"))
        else:
            form.fail("organisation", "form.error.required")
        email = form.get("email") or None
        if email and (len(email) > 320 or not EMAIL.match(email)):
            form.fail("email", "form.error.email")
    effective = form.date("effective_date")
    reason = form.text("reason", max_length=2000)
    decision_ref = form.text("decision_ref", max_length=300, required=False)
    justification = form.text("justification", max_length=4000, required=False)
    if form.errors:
        return None
    try:
        return ReplacementIn.model_validate({
            "seat": int(seat_text), "position": position, "candidate_id": int(candidate) if candidate else None,
            "name": name, "gender": gender, "organisation": org_key, "email": email, "effective_date": effective,
            "reason": reason, "decision_ref": decision_ref, "justification": justification})
    except ValidationError as exc:
        field = str(exc.errors()[0]["loc"][0])
        form.fail(REPLACEMENT_FIELDS.get(field, "slot"), "form.error.email" if field == "email"
                  else "form.error.invalid")
        return None
