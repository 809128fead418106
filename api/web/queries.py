"""Read models of the pages: a person's tasks across agreements, a coordinator's overview, a case's history.

Each function runs a fixed, small number of queries however many cases there are (the "my tasks" page of a
signatory with 50 open cases is one of the benchmarked pages).
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import aliased
from sqlmodel import Session, col

from api.deps import actor_for
from api.web.states import state_sets
from engine.audit import ON_BEHALF_OF
from engine.calendar import effective_deadline
from engine.models import Case, Event, Organisation, Person
from engine.permissions import permitted_now
from engine.registry import Registry
from workflows.agreement.cases import AGREEMENT, PARTY
from workflows.agreement.models import PartySignatory, Signature


@dataclass(frozen=True)
class PartyFacts:
    """A party case row as far as deciding its roles goes (permissions.CaseFacts)."""

    state: str
    organisation_id: int | None
    workflow: str = PARTY
    workflow_version: int = 0
    coordinator_id: int | None = None


@dataclass(frozen=True)
class Task:
    """One party case a person can act on, and what it asks of them."""

    party_case_id: int
    agreement_id: int
    agreement_title: str
    organisation_key: str
    organisation_name: str
    state: str
    action: str  # decide | sign | await_signatures | await_coordinator
    deadline: date | None
    overdue: bool
    principal_id: int | None  # acting as substitute for this person
    principal_name: str | None


@dataclass(frozen=True)
class AgreementSummary:
    """One agreement a coordinator runs, with its parties counted."""

    id: int
    title: str
    state: str
    deadline: date | None
    total: int
    approved: int
    signed: int
    overdue: int


@dataclass(frozen=True)
class HistoryEntry:
    """One event as the history on a page shows it."""

    at: datetime
    name: str
    case_id: int
    organisation_key: str | None
    actor_name: str | None
    principal_name: str | None
    payload: dict[str, Any]


class Named(Protocol):
    """What naming an organisation reads: an `Organisation`, or a row of its two name columns."""

    @property
    def name_fi(self) -> str: ...
    @property
    def name_sv(self) -> str | None: ...


def org_name(org: Named, lang: str) -> str:
    """Return an organisation's name in Swedish for Swedish pages when it has one, else in Finnish."""
    return (org.name_sv or org.name_fi) if lang == "sv" else org.name_fi


def is_overdue(deadline: date | None, state: str, today: date, pending: tuple[str, ...]) -> bool:
    """Tell whether a party case still pending (its state among `pending`) has passed its effective deadline."""
    return bool(deadline and state in pending and effective_deadline(deadline) < today)


# Built once (statement construction was a third of my_tasks' time): columns, not Organisation rows (ORM objects
# for 50 tasks cost as much again); the lists are expanding parameters.
_PARENT = aliased(Case)
_OPEN_PARTY_CASES = (
    select(col(Case.id), col(Case.state), col(Case.deadline), col(Case.organisation_id), col(_PARENT.id),
           col(_PARENT.title), col(Organisation.key), col(Organisation.name_fi), col(Organisation.name_sv))
    .join(_PARENT, col(_PARENT.id) == col(Case.parent_id))
    .join(Organisation, col(Organisation.id) == col(Case.organisation_id))
    .where(col(Case.workflow) == PARTY, col(Case.organisation_id).in_(bindparam("org_ids", expanding=True)),
           col(Case.state).in_(bindparam("open", expanding=True)),
           col(_PARENT.state).in_(bindparam("awaiting", expanding=True)))
    .order_by(col(Case.deadline), col(Case.id)))
# Where the people are listed as signatories on open party cases, and whether each has signed there (a valid
# signature): one query, its lists as short as the people and the open states (not the 50 case ids).
_LISTED = (select(col(PartySignatory.party_case_id), col(PartySignatory.person_id), col(Signature.id))
           .join(Case, col(Case.id) == col(PartySignatory.party_case_id))
           .outerjoin(Signature, (col(Signature.party_case_id) == col(PartySignatory.party_case_id))
                      & (col(Signature.person_id) == col(PartySignatory.person_id))
                      & col(Signature.voided_at).is_(None))
           .where(col(PartySignatory.person_id).in_(bindparam("people", expanding=True)),
                  col(Case.workflow) == PARTY, col(Case.state).in_(bindparam("open", expanding=True))))


def my_tasks(session: Session, registry: Registry, person: Person, principals: list[Person], today: date,
             lang: str) -> list[Task]:
    """Return the open party cases of the person's organisation and of those they substitute, by deadline."""
    states = state_sets(registry)
    machine = registry.machine(PARTY)
    actors: list[tuple[Person, Person | None]] = [(person, None)] if "signatory" in person.role_set else []
    actors += [(p, p) for p in principals if "signatory" in p.role_set and p.organisation_id is not None]
    org_ids = {p.organisation_id for p, _ in actors if p.organisation_id is not None}
    if not org_ids:
        return []
    rows = session.execute(_OPEN_PARTY_CASES, {"org_ids": list(org_ids), "open": list(states.party_open),
                                               "awaiting": list(states.agreement_awaiting)}).all()
    people = {p.id for p, _ in actors}
    listed: set[tuple[int, int]] = set()
    signed: set[tuple[int, int]] = set()
    for case_id, person_id, signature_id in session.execute(_LISTED, {"people": list(people),
                                                                      "open": list(states.party_open)}):
        listed.add((case_id, person_id))
        if signature_id is not None:
            signed.add((case_id, person_id))
    tasks = []
    permitted_in: dict[tuple[int | None, str, int | None], list[str]] = {}
    effective: dict[date, date] = {}  # the cases share a few deadlines
    for case_id, state, deadline, org_id, agreement_id, title, org_key, name_fi, name_sv in rows:
        for who, principal in actors:
            if who.organisation_id != org_id:
                continue
            # what the definition lets this person's organisation do here (states and roles; rows, not locks)
            key = (who.id, state, org_id)
            permitted = permitted_in.get(key)
            if permitted is None:
                permitted = permitted_in[key] = permitted_now(machine, actor_for(who), PartyFacts(state, org_id))
            if "approve" in permitted:
                action = "decide"
            elif "sign" in permitted and (case_id, who.id) in listed and (case_id, who.id) not in signed:
                action = "sign"
            elif state in states.party_acted and state not in states.party_approved:
                action = "await_coordinator"
            else:
                action = "await_signatures"
            if principal is not None and action not in ("decide", "sign"):
                continue  # a substitute sees only what they can do for someone
            shown = None
            if deadline:
                shown = effective.get(deadline) or effective.setdefault(deadline, effective_deadline(deadline))
            tasks.append(Task(case_id, agreement_id, title, org_key, (name_sv or name_fi) if lang == "sv" else name_fi,
                              state, action, shown,
                              bool(shown and state in states.party_pending and shown < today),  # is_overdue
                              principal.id if principal else None,
                              principal.name if principal else None))
    return tasks


def coordinated(session: Session, registry: Registry, person: Person, today: date) -> list[AgreementSummary]:
    """Return the agreements a coordinator runs (every agreement for an administrator), newest first."""
    states = state_sets(registry)
    stmt = select(Case).where(col(Case.workflow) == AGREEMENT)
    if "admin" not in person.role_set:
        stmt = stmt.where(col(Case.coordinator_id) == person.id)
    agreements = session.execute(stmt.order_by(col(Case.id).desc()).limit(200)).scalars().all()
    counts: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    overdue: dict[int, int] = defaultdict(int)
    for parent_id, state, deadline, n in session.execute(
            select(col(Case.parent_id), col(Case.state), col(Case.deadline), func.count())
            .where(col(Case.parent_id).in_([a.id for a in agreements]))
            .group_by(col(Case.parent_id), col(Case.state), col(Case.deadline))):
        counts[parent_id or 0][state] += n
        if is_overdue(deadline, state, today, states.party_pending):
            overdue[parent_id or 0] += n
    out = []
    for a in agreements:
        c = counts[a.id or 0]
        out.append(AgreementSummary(a.id or 0, a.title, a.state, a.deadline, sum(c.values()),
                                    sum(c[s] for s in states.party_approved), sum(c[s] for s in states.party_signed),
                                    overdue[a.id or 0] if a.state in states.agreement_awaiting else 0))
    return out


def history(session: Session, case_ids: list[int]) -> list[HistoryEntry]:
    """Return the events of some cases, oldest first, naming actors and whom a substitute acted for.

    Whom a substitute acted for is read from the event's own hashed payload, so the history shows what the audit
    verifies, not a side table.
    """
    rows = session.execute(_HISTORY, {"ids": case_ids}).all()
    entries = [(at, name, case_id, actor, key, json.loads(payload)) for at, name, case_id, payload, actor, key in rows]
    principals = {p[ON_BEHALF_OF].get("person_id") for *_e, p in entries if isinstance(p.get(ON_BEHALF_OF), dict)}
    names = dict(session.execute(_NAMES, {"ids": list(principals)}).all()) if principals else {}
    return [HistoryEntry(at, name, case_id, key, actor,
                         names.get(p[ON_BEHALF_OF].get("person_id")) if isinstance(p.get(ON_BEHALF_OF), dict)
                         else None, p)
            for at, name, case_id, actor, key, p in entries]


# built once, columns only (an Event row per entry cost more than the query)
_HISTORY = (select(col(Event.at), col(Event.name), col(Event.case_id), col(Event.payload), col(Person.name),
                   col(Organisation.key))
            .outerjoin(Person, col(Person.id) == col(Event.actor_id))
            .join(Case, col(Case.id) == col(Event.case_id))
            .outerjoin(Organisation, col(Organisation.id) == col(Case.organisation_id))
            .where(col(Event.case_id).in_(bindparam("ids", expanding=True))).order_by(col(Event.at), col(Event.id)))
_NAMES = select(col(Person.id), col(Person.name)).where(col(Person.id).in_(bindparam("ids", expanding=True)))
