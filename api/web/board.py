"""What the dashboards read: agreements in circulation, nominations under way, measures, failed email.

Each read runs a fixed number of queries, however many cases there are.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import func, select
from sqlmodel import Session, col

from api.access import visible_cases
from api.web.queries import is_overdue, org_name
from api.web.states import state_sets
from engine.actors import Actor
from engine.calendar import effective_deadline
from engine.models import Case, Organisation, OutboxMessage
from engine.registry import Registry
from workflows.agreement.cases import AGREEMENT, PARTY
from workflows.cycle.models import STATUSES, Measure
from workflows.cycle.service import CYCLE
from workflows.nomination.service import NOMINATION, PROPOSAL
from workflows.review.service import REVIEW

FAILED = ("failed", "dead")
LIMIT = 200


@dataclass
class CirculatingAgreement:
    """An agreement out for approval: its parties counted, and the overdue ones named."""

    id: int
    title: str
    state: str
    deadline: date | None
    open: bool = False  # parties can decide and sign now (else: being renegotiated)
    total: int = 0
    approved: int = 0
    signed: int = 0
    overdue: list[str] = field(default_factory=list)


@dataclass
class NominationUnderWay:
    """A nomination request not yet ended: its proposals counted by state."""

    id: int
    group: str
    state: str
    deadline: date
    term_start: date
    term_end: date
    accepting: bool = False  # the request still takes proposals
    proposals: Counter[str] = field(default_factory=Counter)

    @property
    def asked(self) -> int:
        """Return how many organisations were asked."""
        return sum(self.proposals.values())

    @property
    def answered(self) -> int:
        """Return how many proposed someone or said they propose nobody."""
        return self.proposals["proposed"] + self.proposals["waived"]


def circulating(session: Session, registry: Registry, actor: Actor, today: date,
                lang: str) -> list[CirculatingAgreement]:
    """Return the agreements in circulation the actor may see, soonest deadline first."""
    states = state_sets(registry)
    rows = session.execute(select(Case).where(col(Case.workflow) == AGREEMENT,
                                              col(Case.state).in_(states.agreement_awaiting),
                                              visible_cases(actor))
                           .order_by(col(Case.deadline), col(Case.id)).limit(LIMIT)).scalars().all()
    out = {a.id or 0: CirculatingAgreement(a.id or 0, a.title, a.state, a.deadline, a.state in states.agreement_open)
           for a in rows}
    for parent_id, state, deadline, org in session.execute(
            select(col(Case.parent_id), col(Case.state), col(Case.deadline), Organisation)
            .join(Organisation, col(Organisation.id) == col(Case.organisation_id))
            .where(col(Case.workflow) == PARTY, col(Case.parent_id).in_(list(out)))
            .order_by(col(Organisation.kind), col(Organisation.code))):
        agreement = out[parent_id or 0]
        agreement.total += 1
        agreement.approved += state in states.party_approved
        agreement.signed += state in states.party_signed
        if agreement.state in states.agreement_open and is_overdue(deadline, state, today, states.party_pending):
            agreement.overdue.append(org_name(org, lang))
    return list(out.values())


@dataclass
class AgreementInForce:
    """An agreement that entered into force and has not ended: since when, and its council-term review."""

    id: int
    title: str
    state: str
    in_force_at: datetime | None
    review_state: str | None = None  # the newest review's state
    review_deadline: date | None = None


def in_force(session: Session, registry: Registry, actor: Actor) -> list[AgreementInForce]:
    """Return the agreements in force (reviewed or not) the actor may see, newest first.

    In force means: its deadline is met (every party signed) and it has not ended, as the definition's tags and
    final states say; a draft carries no tag, a withdrawn or terminated agreement is final.
    """
    finals = set(registry.final(AGREEMENT))
    states = [s for s in registry.tagged(AGREEMENT, "deadline_met") if s not in finals]
    rows = session.execute(select(Case).where(col(Case.workflow) == AGREEMENT, col(Case.state).in_(states),
                                              visible_cases(actor))
                           .order_by(col(Case.id).desc()).limit(LIMIT)).scalars().all()
    out = {a.id or 0: AgreementInForce(a.id or 0, a.title, a.state, datetime.fromisoformat(a.data["in_force_at"])
                                       if a.data.get("in_force_at") else None) for a in rows}
    for review in session.execute(select(Case).where(col(Case.workflow) == REVIEW).order_by(col(Case.id))).scalars():
        agreement = out.get(int(review.data.get("agreement_id", 0)))
        if agreement is not None:  # the newest review wins
            agreement.review_state, agreement.review_deadline = review.state, review.deadline
    return list(out.values())


def nominations(session: Session, registry: Registry, actor: Actor) -> list[NominationUnderWay]:
    """Return the nomination requests not yet ended that the actor may see, soonest deadline first."""
    done = state_sets(registry).nomination_done
    accepting = registry.tagged(NOMINATION, "open_for_proposals")
    rows = session.execute(select(Case).where(col(Case.workflow) == NOMINATION, col(Case.state).not_in(done),
                                              visible_cases(actor))
                           .order_by(col(Case.deadline), col(Case.id)).limit(LIMIT)).scalars().all()
    out = {c.id or 0: NominationUnderWay(
        c.id or 0, c.data.get("group", c.title), c.state, date.fromisoformat(c.data["proposal_deadline"]),
        date.fromisoformat(c.data["term_start"]), date.fromisoformat(c.data["term_end"]),
        c.state in accepting) for c in rows}
    for parent_id, state, n in session.execute(
            select(col(Case.parent_id), col(Case.state), func.count()).where(
                col(Case.workflow) == PROPOSAL, col(Case.parent_id).in_(list(out)))
            .group_by(col(Case.parent_id), col(Case.state))):
        out[parent_id or 0].proposals[state] += n
    return list(out.values())


def cycles(session: Session) -> list[tuple[int, int, str]]:
    """Return every cycle as (id, year, state), newest year first."""
    rows = session.execute(select(col(Case.id), col(Case.data), col(Case.state))
                           .where(col(Case.workflow) == CYCLE)).all()
    return sorted(((i, int(data["year"]), state) for i, data, state in rows), key=lambda r: -r[1])


def current_cycle(all_cycles: list[tuple[int, int, str]], chosen: int | None) -> tuple[int, int, str] | None:
    """Return the chosen cycle, else the newest one still open, else the newest."""
    if chosen is not None:
        return next((c for c in all_cycles if c[0] == chosen), None)
    return next((c for c in all_cycles if c[2] != "closed"), all_cycles[0] if all_cycles else None)


def measures_by_status(session: Session, cycle_id: int) -> dict[str, list[Measure]]:
    """Return a cycle's measures grouped by status, in number order."""
    grouped: dict[str, list[Measure]] = {s: [] for s in STATUSES}
    for m in session.execute(select(Measure).where(col(Measure.cycle_id) == cycle_id).order_by(col(Measure.number))
                             ).scalars():
        grouped.setdefault(m.status, []).append(m)
    return grouped


def measure_overdue(m: Measure, today: date) -> bool:
    """Tell whether an unfinished measure is past its due date."""
    return m.status in ("not_started", "ongoing") and effective_deadline(m.due_date) < today


def outbox_problems(session: Session) -> tuple[list[OutboxMessage], dict[str, int]]:
    """Return the failed and dead messages, newest first, and how many messages there are per status."""
    failed = list(session.execute(select(OutboxMessage).where(col(OutboxMessage.status).in_(FAILED))
                                  .order_by(col(OutboxMessage.id).desc()).limit(LIMIT)).scalars())
    counts: dict[str, int] = defaultdict(int)
    for status, n in session.execute(select(col(OutboxMessage.status), func.count())
                                     .group_by(col(OutboxMessage.status))):
        counts[status] = n
    return failed, dict(counts)


def responsible_names(session: Session, keys: set[str], lang: str) -> dict[str, str]:
    """Return the names of the organisations among measures' responsibles (networks are named by the page)."""
    orgs = session.execute(select(Organisation).where(col(Organisation.key).in_(keys))).scalars()
    return {o.key: org_name(o, lang) for o in orgs}
