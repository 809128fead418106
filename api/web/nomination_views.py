"""What the nomination pages show, and to whom: the request, each organisation's answer, the decision, the members.

Who sees what: the request's coordinator (and administrators) everything; an asked organisation's people the
request and their own proposal, never another organisation's candidates; the requester (by email address or
organisation) the decision and the members. A person of one organisation on another's proposal gets a 403 page.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import select
from sqlmodel import Session, col

from api.access import readable_case
from api.web.queries import HistoryEntry, history, org_name
from api.web.routing import WebUser
from engine.calendar import HELSINKI, effective_deadline
from engine.errors import CaseNotFound, NotPermitted
from engine.models import Case, Event, Organisation
from engine.permissions import CaseReader
from engine.registry import Registry
from workflows.nomination.models import Candidate
from workflows.nomination.read import read_nomination
from workflows.nomination.schemas import AppointmentRead, CandidateRead, NominationRead, ProposalRead
from workflows.nomination.service import NOMINATION, PROPOSAL


@dataclass
class Answer:
    """One asked organisation's proposal as the request page shows it."""

    proposal: ProposalRead
    name: str
    answer_state: str  # the state its own answer left it in, kept after the request closed it
    answered: bool
    closed: bool  # the request has closed it (decided or cancelled)


@dataclass
class Held:
    """One appointment with its organisation's name, for the members and their history."""

    appointment: AppointmentRead
    organisation: str


@dataclass
class NominationView:
    """Everything the request page needs for one viewer."""

    n: NominationRead
    names: dict[str, str]
    answers: list[Answer]
    coordinates: bool
    requester: bool
    own: list[Answer]
    permitted: list[str]
    tags: frozenset[str]
    deadline: date
    history: list[HistoryEntry] = field(default_factory=list)
    held: list[Held] = field(default_factory=list)

    @property
    def answered(self) -> int:
        """Count the organisations that proposed or said they propose nobody."""
        return sum(1 for a in self.answers if a.answered)

    @property
    def current(self) -> list[Held]:
        """Return who holds each seat's positions now."""
        return [h for h in self.held if h.appointment.ends_on is None]

    @property
    def replaced(self) -> bool:
        """Tell whether any member or deputy was replaced."""
        return any(h.appointment.replaces_id for h in self.held)


def today_of(now: datetime) -> date:
    """Return the Helsinki date of an instant."""
    return now.astimezone(HELSINKI).date()


def _org_key(session: Session, user: WebUser) -> str | None:
    if user.person.organisation_id is None:
        return None
    org = session.get(Organisation, user.person.organisation_id)
    return org.key if org else None


def is_requester(session: Session, user: WebUser, case: Case) -> bool:
    """Tell whether the person is the request's requester: its email address, or a person of its organisation."""
    requester = (case.data or {}).get("requester") or {}
    email = str(requester.get("email") or "").lower()
    if email and user.person.email and user.person.email.lower() == email:
        return True
    key = requester.get("organisation")
    return bool(key) and _org_key(session, user) == key


def coordinates(user: WebUser, case: Case) -> bool:
    """Tell whether the person runs this request (its coordinator, or an administrator)."""
    return user.actor.is_admin or (case.coordinator_id == user.id and "coordinator" in user.actor.roles)


def nomination_of(session: Session, user: WebUser, nomination_id: int) -> Case:
    """Return a request the person may see; an unknown one and one they may not see are both a 404 page."""
    case = session.get(Case, nomination_id)
    if case is None or case.workflow != NOMINATION:
        raise CaseNotFound(f"no nomination with id {nomination_id}", message_id="nomination.error.not_found",
                           params={"id": nomination_id})
    try:
        readable_case(session, user.actor, nomination_id)
    except CaseNotFound:
        if not is_requester(session, user, case):  # hidden is answered as unknown: no existence leaks
            raise CaseNotFound(f"person {user.id} may not see nomination {nomination_id}",
                               message_id="nomination.error.not_found", params={"id": nomination_id}) from None
    return case


def proposal_of(session: Session, user: WebUser, nomination_id: int, proposal_id: int) -> tuple[Case, Case, str]:
    """Return (request, proposal, organisation name) when the person may open this organisation's proposal.

    Only the organisation's own people, the request's coordinator and administrators may; anyone else (another
    asked organisation included) gets a 403 page naming whose proposal it is.
    """
    child = session.get(Case, proposal_id)
    if child is None or child.workflow != PROPOSAL or child.parent_id != nomination_id:
        raise CaseNotFound(f"no proposal {proposal_id} in nomination {nomination_id}",
                           message_id="nomination.error.not_found", params={"id": proposal_id})
    parent = session.get(Case, nomination_id)
    assert parent is not None  # the child names it
    org = session.get(Organisation, child.organisation_id) if child.organisation_id else None
    name = org_name(org, user.lang) if org else str((child.data or {}).get("organisation_key"))
    own = child.organisation_id is not None and user.person.organisation_id == child.organisation_id
    if not (own or coordinates(user, parent)):
        raise NotPermitted(f"person {user.id} is not of {name}", message_id="nomination.error.other_organisation",
                           params={"organisation": name})
    return parent, child, name


def names_of(session: Session, keys: set[str], lang: str) -> dict[str, str]:
    """Return organisations' names by key in the page's language."""
    return {o.key: org_name(o, lang) for o in session.execute(
        select(Organisation).where(col(Organisation.key).in_(keys))).scalars()}


def _answer_states(session: Session, registry: Registry, proposals: list[ProposalRead]) -> dict[int, str]:
    """Return each proposal's own answer: its state, or the state it was in when the request closed it."""
    definition = registry.machine(PROPOSAL).definition
    closed = [p.case_id for p in proposals
              if definition.is_final(p.state) and definition.has_tag(p.state, "deadline_met")]
    before: dict[int, str] = {}
    if closed:
        for case_id, from_state in session.execute(
                select(col(Event.case_id), col(Event.from_state)).where(col(Event.case_id).in_(closed))
                .order_by(col(Event.case_id), col(Event.seq))).all():
            if from_state:
                before[case_id] = from_state  # the last event is the closing one: its source is the answer
    return {p.case_id: before.get(p.case_id, p.state) for p in proposals}


def nomination_view(session: Session, registry: Registry, user: WebUser, case: Case,
                    now: datetime) -> NominationView:
    """Assemble the request page for a viewer who may see it."""
    data = read_nomination(session, registry, case.id or 0, user.actor)
    keys = {p.organisation for p in data.proposals} | {a.organisation for a in data.appointments}
    names = names_of(session, keys, user.lang)
    definition = registry.machine(PROPOSAL).definition
    states = _answer_states(session, registry, data.proposals)
    answers = [Answer(p, names.get(p.organisation, p.organisation_name), states[p.case_id],
                      definition.has_tag(states[p.case_id], "deadline_met"),
                      states[p.case_id] != p.state)
               for p in data.proposals]
    runs = coordinates(user, case)
    own_key = _org_key(session, user)
    own = [a for a in answers if a.proposal.organisation == own_key]
    reader = CaseReader(registry, session, now)
    request_definition = registry.machine(NOMINATION).definition
    tags = frozenset(request_definition.states[data.state].tags) if data.state in request_definition.states \
        else frozenset()
    ids = [case.id or 0] + ([a.proposal.case_id for a in answers] if runs else [])
    held = [Held(a, names.get(a.organisation, a.organisation)) for a in data.appointments]
    return NominationView(data, names, answers, runs, is_requester(session, user, case), own,
                          reader.permitted(case.id or 0, user.actor), tags, effective_deadline(data.deadline),
                          history(session, ids) if runs else [], held)


def candidates_of(session: Session, nomination_id: int) -> list[Candidate]:
    """Return the request's valid candidates in seat and position order."""
    return list(session.execute(select(Candidate).where(
        col(Candidate.nomination_id) == nomination_id, col(Candidate.superseded_at).is_(None))
        .order_by(col(Candidate.seat), col(Candidate.position).desc(), col(Candidate.id))).scalars())


def candidate_reads(data: NominationRead) -> dict[int, CandidateRead]:
    """Return every valid candidate of a request by id."""
    return {c.id: c for p in data.proposals for c in p.candidates}
