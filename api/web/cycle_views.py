"""What the annual cycle's pages read: the cycle with what the viewer may do, a report request, names of responsibles.

Every button and form is offered only when the engine says its trigger may fire for the viewer now
(`CaseReader.permitted`): the cycle's own triggers for who runs the cycle, and for a council's or network's own
staff the triggers the engine fires for them (the service fires those as the engine, naming who acted).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import cast

from sqlalchemy import bindparam, or_, select
from sqlmodel import Session, col

from api.web.i18n import has_message, translate
from api.web.queries import org_name
from api.web.routing import WebUser
from engine.actors import SYSTEM, Actor
from engine.calendar import effective_deadline
from engine.errors import CaseNotFound, NotPermitted
from engine.models import Case, Organisation
from engine.permissions import CaseReader, roles_held
from engine.registry import Registry
from workflows.cycle.models import NETWORKS, CycleReport, Measure
from workflows.cycle.read import cycle_row, read_cycle
from workflows.cycle.schemas import CycleRead
from workflows.cycle.service import CYCLE, REPORT
from workflows.cycle.who import is_staff_of, runs_cycle, staff_keys

# triggers the cycle page offers as forms of their own; every other permitted trigger is a plain step button
FORM_TRIGGERS = frozenset({"add_measures", "edit_measure", "remove_measure", "note_measure", "request_report",
                           "set_survey_window", "close"})
RESPONSIBLE_KINDS = ("regional_council", "association")


def responsible_label(key: str, names: dict[str, str], lang: str) -> str:
    """Name a responsible organisation or network in the page's language (never its key when a name exists)."""
    if key.startswith("network:"):
        msgid = f"network.{key.removeprefix('network:')}"
        return translate(lang, msgid) if has_message(msgid) else key.removeprefix("network:")
    return names.get(key, key)


def names_of(session: Session, keys: set[str], lang: str) -> dict[str, str]:
    """Return organisation names by key."""
    orgs = session.execute(select(Organisation).where(col(Organisation.key).in_(sorted(keys)))).scalars()
    return {o.key: org_name(o, lang) for o in orgs}


def responsible_options(session: Session, lang: str, keep: str = "") -> list[tuple[str, str]]:
    """Return who may be responsible for a measure or asked for a report: the networks, councils, Kuntaliitto."""
    orgs = session.execute(select(Organisation).where(col(Organisation.kind).in_(RESPONSIBLE_KINDS),
                                                      col(Organisation.active).is_(True))
                           .order_by(col(Organisation.kind).desc(), col(Organisation.code))).scalars().all()
    out = [(f"network:{n}", translate(lang, f"network.{n}")) for n in NETWORKS]
    out += [(o.key, org_name(o, lang)) for o in orgs]
    if keep and keep not in {k for k, _ in out}:
        out.append((keep, responsible_label(keep, names_of(session, {keep}, lang), lang)))
    return out


def acting_for(session: Session, case: Case, actor: Actor, responsible: str | None, parent: Case | None) -> Actor:
    """Return whom the engine is asked about: the actor when they hold a role, the engine for a responsible's staff."""
    if roles_held(actor, case, parent.coordinator_id if parent else None):
        return actor
    if responsible is not None and is_staff_of(session, actor, responsible):
        return SYSTEM
    return actor


@dataclass
class CycleView:
    """A cycle as its page shows it, with the triggers the viewer may fire."""

    case: Case
    data: CycleRead
    permitted: list[str]
    runs: bool
    names: dict[str, str]
    measures: list[Measure]
    carried_from: dict[int, tuple[int, int, int]] = field(default_factory=dict)  # id -> (cycle, year, number)
    carried_to: dict[int, tuple[int, int, int]] = field(default_factory=dict)
    mine: set[str] = field(default_factory=set)  # the responsibles the viewer works for

    @property
    def steps(self) -> list[str]:
        """Return the permitted triggers shown as step buttons."""
        return [t for t in self.permitted if t not in FORM_TRIGGERS]

    def may(self, trigger: str) -> bool:
        """Tell whether the viewer may fire a trigger now."""
        return trigger in self.permitted

    @property
    def unreachable(self) -> list[str]:
        """Return the responsibles whose report request nobody received."""
        return [r.responsible for r in self.data.report_requests if r.unreachable]


def _links(session: Session, ids: set[int]) -> dict[int, tuple[int, int, int]]:
    if not ids:
        return {}
    rows = session.execute(select(Measure, Case).join(Case, col(Case.id) == col(Measure.cycle_id))
                           .where(col(Measure.id).in_(sorted(ids)))).all()
    return {m.id or 0: (c.id or 0, int(c.data["year"]), m.number) for m, c in rows}


def cycle_view(session: Session, registry: Registry, user: WebUser, cycle_id: int, now: datetime) -> CycleView:
    """Read a cycle for its page."""
    data = read_cycle(session, registry, cycle_id, user.actor)
    case = cycle_row(session, cycle_id)
    permitted = CaseReader(registry, session, now).permitted(cycle_id, user.actor)
    measures = list(session.execute(select(Measure).where(col(Measure.cycle_id) == cycle_id)
                                    .order_by(col(Measure.number))).scalars())
    keys = {m.responsible for m in measures} | {r.responsible for r in data.report_requests}
    sources = _links(session, {m.carried_from_id for m in measures if m.carried_from_id})
    copies = {m.id: m.carried_to_id for m in data.measures if m.carried_to_id}
    targets = _links(session, set(copies.values()))
    return CycleView(case, data, permitted, runs_cycle(case, user.actor), names_of(session, keys, user.lang),
                     measures, {m.id or 0: sources[m.carried_from_id] for m in measures
                                if m.carried_from_id in sources},
                     {mid: targets[copy] for mid, copy in copies.items() if copy in targets},
                     keys & staff_keys(session, user.actor))


@dataclass
class RequestView:
    """A report request as its page shows it: versions, the viewer's measures, whether they may report now."""

    cycle: Case
    request: Case
    responsible: str
    name: str
    versions: list[CycleReport]
    measures: list[Measure]
    may_report: bool

    @property
    def current(self) -> int:
        """Return the latest version's number (0: not reported yet)."""
        return self.versions[-1].version if self.versions else 0


def may_read_request(session: Session, actor: Actor, cycle: Case, request: Case) -> bool:
    """Tell whether the actor may read a report request: who runs the cycle, or the responsible's own staff."""
    return runs_cycle(cycle, actor) or is_staff_of(session, actor, str(request.data.get("responsible", "")))


def request_view(session: Session, registry: Registry, user: WebUser, cycle_id: int, request_id: int,
                 now: datetime) -> RequestView:
    """Read a report request for its page; a person who may not read it is refused (403, in their language)."""
    cycle = cycle_row(session, cycle_id)
    request = session.get(Case, request_id)
    if request is None or request.workflow != REPORT or request.parent_id != cycle_id:
        raise CaseNotFound(f"no report request {request_id} in cycle {cycle_id}", message_id="error.case_not_found",
                           params={"id": request_id})
    responsible = str(request.data.get("responsible", ""))
    if not may_read_request(session, user.actor, cycle, request):
        raise NotPermitted(f"the report of {responsible} is written by its own people", case_id=request_id,
                           action="read", message_id="cycle.error.report_not_yours")
    versions = list(session.execute(select(CycleReport).where(col(CycleReport.request_case_id) == request_id)
                                    .order_by(col(CycleReport.version))).scalars())
    measures = list(session.execute(select(Measure).where(col(Measure.cycle_id) == cycle_id,
                                                          col(Measure.responsible) == responsible)
                                    .order_by(col(Measure.number))).scalars())
    who = acting_for(session, request, user.actor, responsible, cycle)
    may_report = "report" in CaseReader(registry, session, now).permitted(request_id, who)
    name = responsible_label(responsible, names_of(session, {responsible}, user.lang), user.lang)
    return RequestView(cycle, request, responsible, name, versions, measures, may_report)


# built once (the tasks page asks them on every view, and most people have no follow-up work at all)
_ORG = col(Case.organisation_id)
_OPEN_REPORTS = select(Case).where(col(Case.workflow) == REPORT, col(Case.state).not_in(
    bindparam("final", expanding=True))).order_by(col(Case.deadline), col(Case.id)).limit(200)
_REPORTS_OWN = _OPEN_REPORTS.where(or_(_ORG.is_(None), _ORG == bindparam("org")))
_REPORTS_NO_ORG = _OPEN_REPORTS.where(_ORG.is_(None))
_CASES = select(Case).where(col(Case.id).in_(bindparam("ids", expanding=True)))
_CYCLES = select(col(Case.id), col(Case.workflow), col(Case.workflow_version), col(Case.state),
                 col(Case.coordinator_id), col(Case.data)).where(col(Case.workflow) == CYCLE)
_ORG_KIND = select(col(Organisation.kind)).where(col(Organisation.id) == bindparam("org"))


def my_requests(session: Session, registry: Registry, user: WebUser, now: datetime) -> list[tuple[Case, Case, str]]:
    """Return the report requests the person may report on now, as its council's or network's own staff."""
    final = list(registry.final(REPORT))
    org_id = user.actor.organisation_id
    rows = session.execute(_REPORTS_NO_ORG if org_id is None else _REPORTS_OWN,
                           {"final": final, "org": org_id}).scalars().all()
    if not rows:
        return []
    mine = staff_keys(session, user.actor)
    rows = [r for r in rows if r.parent_id is not None and str(r.data.get("responsible", "")) in mine]
    if not rows:
        return []
    reader = CaseReader(registry, session, now)
    names = names_of(session, mine, user.lang)
    parents = {c.id: c for c in session.execute(_CASES, {"ids": sorted({r.parent_id for r in rows})}).scalars()}
    out = []
    for request in rows:
        if "report" not in reader.permitted(request.id or 0, SYSTEM):  # closed with its cycle
            continue
        parent = parents.get(request.parent_id)
        if parent is not None:
            out.append((parent, request, responsible_label(str(request.data["responsible"]), names, user.lang)))
    return out


@dataclass
class CycleTasks:
    """What the annual follow-up asks of a person now: reports to write, surveys to answer."""

    requests: list[tuple[Case, Case, str]]
    surveys: list[tuple[int, int, date]]  # (cycle id, year, last day)

    def __bool__(self) -> bool:
        return bool(self.requests or self.surveys)


def cycle_tasks(session: Session, registry: Registry, user: WebUser, now: datetime, today: date) -> CycleTasks:
    """Return the person's annual follow-up tasks for the tasks page."""
    surveys = []
    director: bool | None = None  # asked only when a survey is open
    for case in session.execute(_CYCLES).all():
        if registry.machine(case.workflow, case.workflow_version).definition.is_final(case.state):
            continue
        m = case.data.get("milestones", {})
        opens = date.fromisoformat(m["survey_opens"])
        closes = effective_deadline(date.fromisoformat(m["survey_closes"]))
        if not opens <= today <= closes:
            continue
        if director is None:
            org_id = user.actor.organisation_id
            kind = session.execute(_ORG_KIND, {"org": org_id}).scalar() if org_id else None
            director = kind == "regional_council" and "signatory" in user.actor.roles
        if director or runs_cycle(cast(Case, case), user.actor):
            surveys.append((case.id or 0, int(case.data["year"]), closes))
    return CycleTasks(my_requests(session, registry, user, now), sorted(surveys, key=lambda s: s[2]))
