"""After the proposals: the decision (member and deputy per seat), the letter, and mid-term replacements."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy import select
from sqlmodel import col

from engine.actors import Actor
from engine.errors import Conflict, InvalidInput, InvalidTransition
from engine.models import Person
from engine.records import CaseRow
from engine.service import UnitOfWork
from workflows.agreement.service import normalise_section
from workflows.common.dates import today
from workflows.common.mail import queue_mail
from workflows.common.people import org_by_key
from workflows.nomination.equality import Shares, check_shares
from workflows.nomination.letter import organisation_names, render_letter
from workflows.nomination.models import Appointment, Candidate, NominationDecision, NominationLetter
from workflows.nomination.schemas import DecisionIn, ReplacementIn
from workflows.nomination.service import current_candidates, nomination_case


def citation(decision: NominationDecision) -> str:
    """Cite a decision as 'Maakuntajohtajakokous 12.3.2026 § 5'."""
    d = decision.meeting_date
    return f"{decision.body} {d.day}.{d.month}.{d.year} {decision.section}"


def _refusal(uow: UnitOfWork, case: CaseRow, trigger: str, detail: str,
             message_id: str = "error.invalid_transition", **extra: Any) -> InvalidTransition:
    """Return the refusal of a trigger the definition does not allow in the case's state, before any work is done."""
    allowed = uow.machine_of(case).allowed_triggers(case.state)
    return InvalidTransition(detail, allowed=allowed, state=case.state, message_id=message_id,
                             params={"workflow": case.workflow, "trigger": trigger, "state": case.state,
                                     "allowed": allowed, **extra})


def _shown(day: date | None) -> str:
    return f"{day.day}.{day.month}.{day.year}" if day else "?"


def _choices(uow: UnitOfWork, nomination_id: int, seats: dict[int, bool],
             data: DecisionIn) -> list[tuple[int, str, Candidate]]:
    candidates = current_candidates(uow, nomination_id)
    given = {c.seat for c in data.seats}
    missing = sorted(set(seats) - given)
    if missing:
        listed = ", ".join(f"seat {n}" for n in missing)
        raise InvalidInput("seats", f"choose a member for every seat; missing: {listed}",
                           message_id="nomination.error.seats_missing",
                           params={"seats": ", ".join(map(str, missing))})
    out: list[tuple[int, str, Candidate]] = []
    used: dict[str, str] = {}  # a candidate's identity -> where they are already chosen
    for i, choice in enumerate(data.seats):
        if choice.seat not in seats:
            raise InvalidInput(f"seats[{i}].seat", f"there is no seat {choice.seat} (seats 1-{len(seats)})",
                               message_id="nomination.error.no_seat", params={"seat": choice.seat, "seats": len(seats)})
        if [c.seat for c in data.seats].count(choice.seat) > 1:
            raise InvalidInput(f"seats[{i}].seat", f"seat {choice.seat} is chosen twice",
                               message_id="nomination.error.seat_twice", params={"seat": choice.seat})
        for position, cand_id in (("member", choice.member), ("deputy", choice.deputy)):
            field = f"seats[{i}].{position}"
            if cand_id is None:
                if position == "deputy" and seats[choice.seat]:
                    raise InvalidInput(field, f"seat {choice.seat} has a deputy: choose one",
                                       message_id="nomination.error.deputy_required", params={"seat": choice.seat})
                continue
            if position == "deputy" and not seats[choice.seat]:
                raise InvalidInput(field, f"seat {choice.seat} has no deputy",
                                   message_id="nomination.error.no_deputy", params={"seat": choice.seat})
            cand = candidates.get(cand_id)
            if cand is None:
                raise InvalidInput(field, f"candidate {cand_id} was not proposed for this request "
                                   f"(proposed: {', '.join(map(str, sorted(candidates))) or 'nobody'})",
                                   message_id="nomination.error.not_proposed", params={"candidate": cand_id})
            key = (cand.person_id and f"person:{cand.person_id}") or f"{cand.name.lower()}|{cand.email or ''}"
            if key in used:
                raise InvalidInput(field, f"{cand.name} is already chosen as {used[key]}",
                                   message_id="nomination.error.chosen_twice",
                                   params={"name": cand.name, "seat": used[key].split()[1]})
            used[key] = f"seat {choice.seat} {position}"
            out.append((choice.seat, position, cand))
    return out


def decide(uow: UnitOfWork, nomination_id: int, data: DecisionIn, actor: Actor) -> NominationDecision:
    """Record the meeting's decision; check the chosen candidates and the 40 % shares (or a justification)."""
    case = nomination_case(uow, nomination_id)
    if not uow.may(case, "decide"):
        if uow.machine_of(case).definition.has_tag(case.state, "open_for_proposals"):
            raise _refusal(uow, case, "decide", f"proposals are not closed yet: they are due by {case.deadline}; "
                           "close them first (trigger close_proposals) or wait for the deadline",
                           "nomination.error.proposals_open", deadline=_shown(case.deadline))
        raise _refusal(uow, case, "decide", f"the request is {case.state}, not waiting for a decision")
    if data.meeting_date > today(uow):
        raise InvalidInput("meeting_date", f"{data.meeting_date.isoformat()} is in the future",
                           message_id="nomination.error.meeting_future", params={"date": _shown(data.meeting_date)})
    seats = {int(s["number"]): bool(s["has_deputy"]) for s in case.data["seats"]}
    chosen = _choices(uow, nomination_id, seats, data)
    shares = Shares.of((position, cand.gender) for _s, position, cand in chosen)
    check_shares(shares, data.justification)
    decision = NominationDecision(
        case_id=case.id, body=data.body, meeting_date=data.meeting_date, section=normalise_section(data.section),
        minutes_url=str(data.minutes_url) if data.minutes_url else None, justification=data.justification,
        women_members=shares.women_members, men_members=shares.men_members, members=shares.members,
        women_deputies=shares.women_deputies, men_deputies=shares.men_deputies, deputies=shares.deputies,
        recorded_by=actor.person_id, recorded_at=uow.now)
    uow.session.add(decision)
    starts = date.fromisoformat(case.data["term_start"])
    for seat, position, cand in chosen:
        uow.session.add(Appointment(
            case_id=case.id, seat=seat, position=position, candidate_id=cand.id, person_id=cand.person_id,
            name=cand.name, gender=cand.gender, organisation_key=cand.organisation_key, email=cand.email,
            starts_on=starts, decision_ref=citation(decision), created_at=uow.now))
    uow.session.flush()
    payload: dict[str, Any] = {"decision_id": decision.id, "body": decision.body,
                               "meeting_date": data.meeting_date.isoformat(), "section": decision.section}
    for key, part, whole in (("women_members_pct", shares.women_members, shares.members),
                             ("women_deputies_pct", shares.women_deputies, shares.deputies)):
        if whole:
            payload[key] = round(100 * part / whole)
    if data.justification:
        payload["justification"] = data.justification
    uow.fire(case.id, "decide", actor=actor, payload=payload)
    uow.set_data(case, decision_id=decision.id)
    return decision


def current_appointments(uow: UnitOfWork, nomination_id: int) -> list[Appointment]:
    """Return who holds each seat's positions now, by seat and position."""
    rows = uow.session.execute(select(Appointment).where(
        col(Appointment.case_id) == nomination_id, col(Appointment.ends_on).is_(None))
        .order_by(col(Appointment.seat), col(Appointment.position).desc())).scalars()
    return list(rows)


def communicate(uow: UnitOfWork, nomination_id: int, actor: Actor) -> NominationLetter:
    """Render the letter in the requester's language; email it to the requester with copies to the nominees."""
    case = nomination_case(uow, nomination_id)
    if not uow.may(case, "communicate"):
        raise _refusal(uow, case, "communicate", f"only a decided nomination can be communicated; it is {case.state}")
    decision = uow.session.get(NominationDecision, case.data["decision_id"])
    assert decision is not None
    appointments = current_appointments(uow, nomination_id)
    requester = case.data["requester"]
    lang = requester.get("language", "fi")
    names = organisation_names(uow.session, [a.organisation_key for a in appointments], lang)
    subject, text, html = render_letter(case.data, citation(decision), decision, appointments, lang, names)
    cc = sorted({a.email for a in appointments if a.email})
    letter = NominationLetter(case_id=case.id, language=lang, to_address=requester["email"], cc=",".join(cc),
                              subject=subject, text=text, html=html, created_at=uow.now)
    uow.session.add(letter)
    uow.session.flush()
    queue_mail(uow, template="nomination_letter", key=f"nomination-letter:{case.id}:{letter.id}",
               case_id=case.id, address=requester["email"], language=lang, cc=cc,
               context={"subject": subject, "text": text, "html": html, "group": case.data["group"]})
    term_start = date.fromisoformat(case.data["term_start"])
    uow.fire(case.id, "communicate", actor=actor, payload={"letter_id": letter.id, "language": lang})
    uow.set_data(case, letter_id=letter.id)
    if term_start <= today(uow):
        start_term(uow, nomination_id, actor)
    return letter


def start_term(uow: UnitOfWork, nomination_id: int, actor: Actor) -> None:
    """Begin the term: from now on the case's deadline is the term's end (reminded 60 days before)."""
    case = nomination_case(uow, nomination_id)
    uow.fire(case.id, "start_term", actor=actor)


def _replacement_person(uow: UnitOfWork, nomination_id: int, data: ReplacementIn) -> dict[str, Any]:
    if data.candidate_id is not None:
        cand = current_candidates(uow, nomination_id).get(data.candidate_id)
        if cand is None:
            raise InvalidInput("candidate_id", f"candidate {data.candidate_id} was not proposed for this request",
                               message_id="nomination.error.not_proposed", params={"candidate": data.candidate_id})
        return {"candidate_id": cand.id, "person_id": cand.person_id, "name": cand.name, "gender": cand.gender,
                "organisation_key": cand.organisation_key, "email": cand.email}
    person = uow.session.get(Person, data.person_id) if data.person_id is not None else None
    if data.person_id is not None and person is None:
        raise InvalidInput("person_id", f"no person with id {data.person_id}",
                           message_id="nomination.error.no_person", params={"person_id": data.person_id})
    name = data.name or (person.name if person else None)
    if not name:
        raise InvalidInput("name", "give candidate_id, person_id or the new person's name",
                           message_id="nomination.error.replacement_person")
    if data.gender is None:
        raise InvalidInput("gender", "is required for a new person (Equality Act 609/1986 §4 a)",
                           message_id="nomination.error.gender")
    if not data.organisation:
        raise InvalidInput("organisation", "is required for a new person",
                           message_id="nomination.error.organisation")
    org = org_by_key(uow, data.organisation, "organisation")
    return {"candidate_id": None, "person_id": data.person_id, "name": name, "gender": data.gender,
            "organisation_key": org.key, "email": str(data.email) if data.email else (person.email if person else None)}


def replace(uow: UnitOfWork, nomination_id: int, data: ReplacementIn, actor: Actor) -> Appointment:
    """Replace a seat's member or deputy from a date (jäsenmuutos); the previous appointment is kept, ended."""
    case = nomination_case(uow, nomination_id)
    if not uow.may(case, "replace_member"):
        raise _refusal(uow, case, "replace_member",
                       f"members can be replaced once the nomination is decided; it is {case.state}")
    current = {(a.seat, a.position): a for a in current_appointments(uow, nomination_id)}
    old = current.get((data.seat, data.position))
    if old is None:
        raise InvalidInput("seat", f"seat {data.seat} has no current {data.position}",
                           message_id="nomination.error.no_current", params={"seat": data.seat})
    term_end = date.fromisoformat(case.data["term_end"])
    if not old.starts_on <= data.effective_date <= term_end:
        raise InvalidInput("effective_date", f"must lie between {old.starts_on} (when the current "
                           f"{data.position} started) and the term's end {term_end}",
                           message_id="nomination.error.effective_date",
                           params={"start": _shown(old.starts_on), "end": _shown(term_end)})
    new = _replacement_person(uow, nomination_id, data)
    others = [(a.position, a.gender) for k, a in current.items() if k != (data.seat, data.position)]
    shares = Shares.of([*others, (data.position, new["gender"])])
    check_shares(shares, data.justification)
    if old.starts_on == data.effective_date:
        old.ends_on = data.effective_date  # replaced before starting: a zero-length appointment, still kept
    else:
        old.ends_on = data.effective_date - timedelta(days=1)
    row = Appointment(case_id=case.id, seat=data.seat, position=data.position, starts_on=data.effective_date,
                      replaces_id=old.id, reason=data.reason, decision_ref=data.decision_ref, created_at=uow.now,
                      **new)
    uow.session.add(row)
    uow.session.flush()
    if row.id is None:
        raise Conflict("the replacement could not be stored")
    payload: dict[str, Any] = {"seat": data.seat, "position": data.position, "appointment_id": row.id,
                               "replaced_appointment_id": old.id, "effective_date": data.effective_date.isoformat()}
    if data.reason:
        payload["reason"] = data.reason
    uow.fire(case.id, "replace_member", actor=actor, payload=payload)
    return row
