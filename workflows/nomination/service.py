"""Nomination requests and proposals: create, propose, waive, close, cancel; guards, reactions, recipients."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import func, select, update
from sqlmodel import col

from engine.actors import SYSTEM, Actor
from engine.calendar import effective_deadline, format_date
from engine.errors import Conflict, InvalidInput, NotFound, NotPermitted
from engine.models import Organisation, Person
from engine.records import CaseRow, TransitionRecord
from engine.service import FireContext, UnitOfWork
from notifications.reminders import link_for
from workflows.common.dates import deadline_passed, set_deadline, today
from workflows.common.mail import queue_mail
from workflows.common.people import contacts_of, org_by_key
from workflows.nomination.equality import check_proposal
from workflows.nomination.models import Candidate, NominationSeat, ProposalException
from workflows.nomination.schemas import AskedIn, CancelIn, NominationCreate, ProposalIn, WaiveIn

NOMINATION = "nomination"
PROPOSAL = "nomination_proposal"


# -- guards and reactions -------------------------------------------------------------------------------


def _has(uow: UnitOfWork, case: CaseRow, tag: str) -> bool:
    """Tell whether a case's state carries a tag in its definition (the YAML says what is open for proposals)."""
    return uow.machine_of(case).definition.has_tag(case.state, tag)


def _request_open(ctx: FireContext) -> bool:
    parent = ctx.uow.case(ctx.case.parent_id or 0)
    if not _has(ctx.uow, parent, "open_for_proposals"):
        return ctx.refuse(f"the request is no longer open for proposals (it is {parent.state})",
                          "nomination.error.request_closed", workflow=parent.workflow, state=parent.state)
    return True


GUARDS = {"request_open": _request_open}


def react_to_request(uow: UnitOfWork, record: TransitionRecord) -> None:
    """Point the deadline at the term's start or end; close the proposal cases when the request moves on.

    Registered for nomination cases only, and so run before the timer listener: the new state's timers read the
    new deadline.
    """
    case = record.case
    if not record.changed_state:
        return
    for tag, key in (("term_ahead", "term_start"), ("term_running", "term_end")):
        if _has(uow, case, tag):  # the state's timers count to the term's start or end
            set_deadline(uow, case, date.fromisoformat(case.data[key]))
    if _has(uow, case, "proposals_settled"):  # decided or cancelled: nothing more is asked of anyone
        for child in uow.children(case.id):
            if uow.may(child, "close"):
                uow.fire(child.id, "close", actor=SYSTEM)
    elif not _has(uow, case, "open_for_proposals"):  # proposals closed: who did not answer has lapsed
        for child in uow.children(case.id):
            if uow.may(child, "lapse"):
                uow.fire(child.id, "lapse", actor=SYSTEM)


def recipients(uow: UnitOfWork, case: CaseRow, role: str) -> list[int]:
    """Resolve reminder roles: party = the asked organisation's contacts; coordinator = the request's."""
    if role == "party":
        return contacts_of(uow, case.organisation_id, ("signatory", "coordinator"))
    if role == "coordinator":
        owner = uow.case(case.parent_id) if case.parent_id else case
        return [owner.coordinator_id] if owner.coordinator_id else []
    return []


# -- creation -----------------------------------------------------------------------------------------------


def resolve_asked(uow: UnitOfWork, asked: AskedIn) -> list[Organisation]:
    """Return the asked organisations, each once, in a stable order; raise InvalidInput naming the field."""
    found: dict[str, Organisation] = {}
    for i, key in enumerate(asked.organisations):
        org = org_by_key(uow, key, f"asked.organisations[{i}]")
        found[org.key] = org
    if asked.all_regional_councils:
        for org in uow.session.execute(select(Organisation).where(
                col(Organisation.kind) == "regional_council", col(Organisation.active).is_(True))).scalars():
            found[org.key] = org
    if asked.region:
        rows = list(uow.session.execute(select(Organisation).where(
            col(Organisation.region_code) == asked.region, col(Organisation.kind).in_(asked.region_kinds),
            col(Organisation.active).is_(True))).scalars())
        if not rows:
            raise InvalidInput("asked.region", f"no active {', '.join(asked.region_kinds)} in region "
                               f"{asked.region!r}")
        found.update({o.key: o for o in rows})
    if not found:
        raise InvalidInput("asked", "name at least one organisation, all_regional_councils or a region")
    return sorted(found.values(), key=lambda o: (o.kind, o.code))


def create_nomination(uow: UnitOfWork, data: NominationCreate, actor: Actor) -> CaseRow:
    """Create a request with its seats and one proposal case per asked organisation; email the asked ones."""
    if not (actor.is_admin or "coordinator" in actor.roles):
        raise NotPermitted("creating a nomination request needs the coordinator or admin role")
    if data.deadline < today(uow):
        raise InvalidInput("deadline", f"{data.deadline.isoformat()} is in the past")
    if data.deadline >= data.term_start:
        raise InvalidInput("deadline", "proposals must be due before the term starts "
                           f"({data.term_start.isoformat()})")
    requester = data.requester.model_dump(mode="json")
    if data.requester.organisation:
        requester["organisation"] = org_by_key(uow, data.requester.organisation, "requester.organisation").key
    coordinator_id = data.coordinator_id if data.coordinator_id is not None else actor.person_id
    if coordinator_id is not None and uow.session.get(Person, coordinator_id) is None:
        raise InvalidInput("coordinator_id", f"no person with id {coordinator_id}")
    asked = resolve_asked(uow, data.asked)
    seats = [{"number": i, "label": s.label, "has_deputy": s.has_deputy} for i, s in enumerate(data.seats, 1)]
    case = uow.create_case(
        NOMINATION, actor=actor, title=data.group, coordinator_id=coordinator_id, deadline=data.deadline,
        data={"group": data.group, "description": data.description, "requester": requester, "seats": seats,
              "term_start": data.term_start.isoformat(), "term_end": data.term_end.isoformat(),
              "proposal_deadline": data.deadline.isoformat()},
        payload={"group": data.group, "requester": requester["name"], "seats": len(seats),
                 "asked": len(asked), "deadline": data.deadline.isoformat()})
    uow.session.add_all([NominationSeat(case_id=case.id, number=i, label=s.label, has_deputy=s.has_deputy)
                         for i, s in enumerate(data.seats, 1)])
    for org in asked:
        child = uow.create_case(PROPOSAL, actor=actor, title=f"{data.group}: {org.name_fi}", parent_id=case.id,
                                organisation_id=org.id, deadline=data.deadline,
                                data={"organisation_key": org.key, "proposal_version": 0},
                                payload={"organisation": org.key})
        _email_request(uow, case, child, org)
    uow.session.flush()
    return case


def _email_request(uow: UnitOfWork, case: CaseRow, child: CaseRow, org: Organisation) -> None:
    due = effective_deadline(case.deadline) if case.deadline else None
    # the organisation's signatories are the ones who may propose (engine.permissions: its "party"); each gets a
    # single-use sign-in link that opens the proposal form, as every reminder does
    for person_id in contacts_of(uow, org.id, ("signatory",)):
        queue_mail(uow, template="nomination_requested", key=f"nomination-request:{child.id}:{person_id}",
                   case_id=child.id, person_id=person_id,
                   context={"group": case.data["group"], "requester": case.data["requester"]["name"],
                            "organisation": org.name_fi, "seats": len(case.data["seats"]),
                            "deadline": due, "term_start": case.data["term_start"],
                            "term_end": case.data["term_end"], "case_id": child.id,
                            "link": link_for(uow, person_id, child)})


# -- proposals ----------------------------------------------------------------------------------------------


def nomination_case(uow: UnitOfWork, nomination_id: int) -> CaseRow:
    """Return a locked nomination case or raise NotFound."""
    case = uow.case(nomination_id)
    if case.workflow != NOMINATION:
        raise NotFound(f"case {nomination_id} is not a nomination request")
    return case


def proposal_case(uow: UnitOfWork, nomination_id: int, organisation_key: str) -> CaseRow:
    """Return the locked proposal case of one asked organisation, or raise NotFound."""
    nomination_case(uow, nomination_id)
    for child in uow.children(nomination_id):
        if child.data.get("organisation_key") == organisation_key:
            return child
    raise NotFound(f"{organisation_key!r} was not asked to propose for nomination {nomination_id}")


def _check_open(uow: UnitOfWork, parent: CaseRow) -> None:
    deadline = parent.deadline
    is_open = _has(uow, parent, "open_for_proposals")
    if is_open and deadline is not None and not deadline_passed(uow, deadline):
        return
    due = effective_deadline(deadline) if deadline else None
    shown = format_date(due, "en") if due else "?"
    params: dict[str, Any] = {"workflow": parent.workflow, "state": parent.state,
                              "deadline": f"{due.day}.{due.month}.{due.year}" if due else "?"}
    raise Conflict(f"proposals were due by {shown} 23:59 Helsinki time (deadline {deadline}); "
                   f"the request is {'past its deadline' if is_open else parent.state}",
                   message_id="nomination.error.past_deadline" if is_open else "nomination.error.request_closed",
                   params=params)


def _candidate_rows(uow: UnitOfWork, parent: CaseRow, child: CaseRow, data: ProposalIn,
                    version: int) -> list[Candidate]:
    seats = {int(s["number"]): bool(s["has_deputy"]) for s in parent.data["seats"]}
    people = {p.id: p for p in uow.session.execute(select(Person).where(col(Person.id).in_(
        {c.person_id for c in data.candidates if c.person_id is not None}))).scalars()}
    orgs = dict(uow.session.execute(select(col(Organisation.id), col(Organisation.key))).all())
    rows = []
    for i, c in enumerate(data.candidates):
        where = f"candidates[{i}]"
        if c.seat not in seats:
            raise InvalidInput(f"{where}.seat", f"there is no seat {c.seat} (seats 1-{len(seats)})",
                               message_id="nomination.error.no_seat", params={"seat": c.seat, "seats": len(seats)})
        if c.position == "deputy" and not seats[c.seat]:
            raise InvalidInput(f"{where}.position", f"seat {c.seat} has no deputy",
                               message_id="nomination.error.no_deputy", params={"seat": c.seat})
        person = people.get(c.person_id) if c.person_id is not None else None
        if c.person_id is not None and person is None:
            raise InvalidInput(f"{where}.person_id", f"no person with id {c.person_id}",
                               message_id="nomination.error.no_person", params={"person_id": c.person_id})
        name = c.name or (person.name if person else None)
        if not name:
            raise InvalidInput(f"{where}.name", "give a name or a person_id", message_id="nomination.error.name")
        org_key = c.organisation or (orgs.get(person.organisation_id) if person else None) \
            or child.data["organisation_key"]
        if c.organisation:
            org_by_key(uow, c.organisation, f"{where}.organisation")
        email = str(c.email) if c.email else (person.email if person else None)
        rows.append(Candidate(nomination_id=parent.id, proposal_case_id=child.id, proposal_version=version,
                              seat=c.seat, position=c.position, person_id=c.person_id, name=name,
                              gender=c.gender, organisation_key=org_key, email=email, title=c.title))
    return rows


def _same(rows: list[Candidate], current: list[Candidate]) -> bool:
    def shape(c: Candidate) -> tuple[object, ...]:
        return (c.seat, c.position, c.person_id, c.name, c.gender, c.organisation_key, c.email, c.title)
    return sorted(map(shape, rows), key=repr) == sorted(map(shape, current), key=repr)


def propose(uow: UnitOfWork, nomination_id: int, organisation_key: str, data: ProposalIn,
            actor: Actor, seen_version: int | None = None) -> list[Candidate]:
    """Record an organisation's candidates (a new proposal replaces its previous one); check §4 a per seat.

    With `seen_version` (the proposal version the form was shown with) a proposal changed meanwhile is refused,
    and the same proposal sent twice (a double submit) is kept once.
    """
    child = proposal_case(uow, nomination_id, organisation_key)
    parent = uow.case(nomination_id)
    _check_open(uow, parent)
    seats = {int(s["number"]): bool(s["has_deputy"]) for s in parent.data["seats"]}
    stored = int(child.data.get("proposal_version", 0))
    version = stored + 1
    rows = _candidate_rows(uow, parent, child, data, version)
    if seen_version is not None and seen_version != stored:
        current = [c for c in current_candidates(uow, nomination_id).values() if c.proposal_case_id == child.id]
        if current and _same(rows, current):
            return current
        raise Conflict(f"the proposal was changed meanwhile: it is at version {stored}, not {seen_version}",
                       message_id="nomination.error.proposal_changed", params={"version": stored})
    exceptions: set[tuple[int, str]] = {(e.seat, e.position) for e in data.exceptions}
    for i, e in enumerate(data.exceptions):
        if e.seat not in seats:
            raise InvalidInput(f"exceptions[{i}].seat", f"there is no seat {e.seat} (seats 1-{len(seats)})",
                               message_id="nomination.error.no_seat", params={"seat": e.seat, "seats": len(seats)})
    check_proposal(seats, [(r.seat, r.position, r.gender) for r in rows], exceptions)
    uow.session.execute(update(Candidate).where(col(Candidate.proposal_case_id) == child.id,
                                                col(Candidate.superseded_at).is_(None)).values(superseded_at=uow.now))
    uow.session.add_all(rows)
    uow.session.add_all([ProposalException(proposal_case_id=child.id, proposal_version=version, seat=e.seat,
                                           position=e.position, reason=e.reason) for e in data.exceptions])
    uow.session.flush()
    payload: dict[str, Any] = {"proposal_version": version, "candidates": len(rows)}
    if data.exceptions:
        payload["exceptions"] = [f"seat {e.seat} {e.position}: {e.reason}" for e in data.exceptions]
    uow.fire(child.id, "propose", actor=actor, payload=payload)
    uow.set_data(child, proposal_version=version, draft=None)
    return rows


def save_draft(uow: UnitOfWork, nomination_id: int, organisation_key: str, values: dict[str, str],
               actor: Actor) -> None:
    """Keep an unfinished proposal on the organisation's case: not a proposal yet, nothing is checked or sent."""
    child = proposal_case(uow, nomination_id, organisation_key)
    _check_open(uow, uow.case(nomination_id))  # closed or past its deadline: a 409 saying so
    if "propose" not in uow.permitted_triggers(child.id, actor):
        raise NotPermitted(f"proposing for {organisation_key} needs one of the roles party, coordinator, admin",
                           message_id="error.not_permitted", params={"workflow": PROPOSAL, "trigger": "propose"})
    uow.set_data(child, draft={k: v[:2000] for k, v in sorted(values.items())[:400] if v},
                 draft_saved_at=uow.now.isoformat(), draft_by=actor.person_id)


def waive(uow: UnitOfWork, nomination_id: int, organisation_key: str, data: WaiveIn, actor: Actor) -> None:
    """Say an organisation proposes nobody; its earlier candidates are withdrawn."""
    child = proposal_case(uow, nomination_id, organisation_key)
    _check_open(uow, uow.case(nomination_id))
    uow.fire(child.id, "waive", actor=actor, payload={"reason": data.reason} if data.reason else {})
    uow.set_data(child, draft=None)
    uow.session.execute(update(Candidate).where(col(Candidate.proposal_case_id) == child.id,
                                                col(Candidate.superseded_at).is_(None)).values(superseded_at=uow.now))


def close_proposals(uow: UnitOfWork, nomination_id: int, actor: Actor) -> None:
    """Close the request for proposals ahead of its deadline (the deadline timer does it otherwise)."""
    nomination_case(uow, nomination_id)
    uow.fire(nomination_id, "close_proposals", actor=actor)


def cancel(uow: UnitOfWork, nomination_id: int, data: CancelIn, actor: Actor) -> None:
    """Cancel a request in any state that is not final; open proposals are closed."""
    nomination_case(uow, nomination_id)
    uow.fire(nomination_id, "cancel", actor=actor, payload={"reason": data.reason})


def current_candidates(uow: UnitOfWork, nomination_id: int) -> dict[int, Candidate]:
    """Return the valid (not superseded) candidates of a request by id."""
    rows = uow.session.execute(select(Candidate).where(col(Candidate.nomination_id) == nomination_id,
                                                       col(Candidate.superseded_at).is_(None))).scalars()
    return {c.id: c for c in rows if c.id is not None}


def count_candidates(uow: UnitOfWork, nomination_id: int) -> int:
    """Count the valid candidates of a request."""
    return int(uow.session.execute(select(func.count()).select_from(Candidate).where(
        col(Candidate.nomination_id) == nomination_id, col(Candidate.superseded_at).is_(None))).scalar_one())
