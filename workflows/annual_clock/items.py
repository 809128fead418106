"""What the annual clock shows: every deadline, meeting and window of the chosen scope's cases, as plain items."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime
from functools import cache
from typing import Any

from sqlalchemy import ColumnElement, or_, select
from sqlmodel import Session, col

from engine.actors import SYSTEM, Actor
from engine.calendar import deadline_instant, effective_deadline
from engine.definition import WorkflowDefinition
from engine.errors import NotFound
from engine.models import Case, Organisation
from engine.permissions import visible_cases
from engine.registry import Registry
from workflows.cycle.models import Measure
from workflows.cycle.read import may_see_cycles
from workflows.i18n import translate
from workflows.registers.models import Meeting

PROCESSES = ("agreement", "nomination", "cycle", "review", "meeting")
WORKFLOWS = ("agreement", "agreement_party", "nomination", "nomination_proposal", "cycle", "cycle_report", "review")


@dataclass(frozen=True)
class Item:
    """One thing on the wheel: a deadline (ends 23:59:59 Helsinki), a meeting (a day) or a window (days).

    `name` is what people named (a case's or meeting's title); `label`, when set, is the catalogue's message that
    presents it ("{title}: ehdotukset"), filled with the name as {title} and `values` (the cycle's {year}).
    """

    uid: str
    kind: str  # deadline | meeting | window
    process: str
    name: str
    start: date
    end: date
    case_id: int | None
    done: bool
    overdue: bool
    label: str = ""
    values: tuple[tuple[str, str], ...] = ()

    def title_in(self, lang: str) -> str:
        """Return the item's title in a language."""
        return translate(lang, self.label, title=self.name, **dict(self.values)) if self.label else self.name

    @property
    def title(self) -> str:
        """Return the title in Finnish (the JSON list's, which has no language)."""
        return self.title_in("fi")

    @property
    def due_at(self) -> datetime | None:
        """Return the instant a deadline ends, or None for meetings and windows."""
        return deadline_instant(self.start) if self.kind == "deadline" else None


@dataclass(frozen=True)
class Scope:
    """Whose items: one organisation, one person (their organisation and the cases they coordinate), or all."""

    organisation_id: int | None = None
    organisation_key: str | None = None
    person_id: int | None = None

    @property
    def network(self) -> bool:
        """Tell whether this is the whole network's view."""
        return self.organisation_id is None and self.person_id is None


@cache
def _shipped() -> Registry:
    from workflows.registry import build_registry  # late: the registry imports every workflow's plugin

    return build_registry()


def _definition(registry: Registry, c: Case) -> WorkflowDefinition:
    """Return a case's definition (the newest loaded one for a version this registry lacks)."""
    try:
        return registry.machine(c.workflow, c.workflow_version).definition
    except NotFound:
        return registry.machine(c.workflow).definition


def _deadline(uid: str, process: str, title: str, d: date, case_id: int | None, done: bool,
              now: datetime, label: str = "") -> Item:
    due = effective_deadline(d)
    return Item(uid, "deadline", process, title, due, due, case_id, done, not done and now > deadline_instant(due),
                label)


def _case_items(c: Case, now: datetime, registry: Registry) -> list[Item]:
    done = _definition(registry, c).has_tag(c.state, "deadline_met")  # its deadline asks nothing more
    data: dict[str, Any] = c.data
    if c.workflow in ("agreement", "agreement_party") and c.deadline:
        label = "clock.item.task_agreement" if data.get("framework_id") else ""  # hangs off a framework agreement
        return [_deadline(f"case-{c.id}-deadline", "agreement", c.title, c.deadline, c.id, done, now, label),
                *_finality_items(c, data, now)]
    if c.workflow == "nomination":
        definition = _definition(registry, c)
        closed = not definition.has_tag(c.state, "open_for_proposals")
        out = [_deadline(f"case-{c.id}-proposals", "nomination", c.title,
                         date.fromisoformat(data["proposal_deadline"]), c.id, closed, now, "clock.item.proposals")]
        if definition.has_tag(c.state, "has_term"):
            out.append(_deadline(f"case-{c.id}-term-end", "nomination", c.title, date.fromisoformat(data["term_end"]),
                                 c.id, definition.is_final(c.state), now, "clock.item.term_end"))
        return out
    if c.workflow == "nomination_proposal" and c.deadline:
        return [_deadline(f"case-{c.id}-deadline", "nomination", c.title, c.deadline, c.id, done, now)]
    if c.workflow == "cycle_report" and c.deadline:
        return [_deadline(f"case-{c.id}-deadline", "cycle", c.title, c.deadline, c.id, done, now)]
    if c.workflow == "review":
        return [_deadline(f"case-{c.id}-deadline", "review", c.title, date.fromisoformat(data["review_deadline"]),
                          c.id, done, now)]
    if c.workflow == "cycle":
        return _cycle_items(c, now, _definition(registry, c))
    return []


def _finality_items(c: Case, data: dict[str, Any], now: datetime) -> list[Item]:
    """A party's decision: the last day for a claim for rectification and the day it becomes final.

    The party case keeps both dates in its data (workflows/agreement/claims.py); a pending claim clears final_on.
    """
    out = []
    if data.get("claim_deadline"):
        last = date.fromisoformat(data["claim_deadline"])
        out.append(Item(f"case-{c.id}-claims", "deadline", "agreement", c.title, last, last, c.id,
                        now > deadline_instant(last), False, "clock.item.claim_deadline"))
    if data.get("final_on"):
        final = date.fromisoformat(data["final_on"])
        out.append(Item(f"case-{c.id}-final", "meeting", "agreement", c.title, final, final, c.id, True, False,
                        "clock.item.final"))
    return out


def _cycle_items(c: Case, now: datetime, definition: WorkflowDefinition) -> list[Item]:
    m = {k: date.fromisoformat(v) for k, v in c.data["milestones"].items()}
    year, closed = (("year", str(c.data["year"])),), definition.is_final(c.state)
    report = _deadline(f"case-{c.id}-annual-report", "cycle", c.title, m["annual_report_due"], c.id, closed, now,
                       "clock.item.annual_report")
    return [
        Item(f"case-{c.id}-planning", "meeting", "cycle", c.title, m["planning_meeting"], m["planning_meeting"],
             c.id, not definition.has_tag(c.state, "planning_ahead"), False, "clock.item.planning", year),
        Item(f"case-{c.id}-reporting", "window", "cycle", c.title, m["reporting_opens"],
             effective_deadline(m["reporting_closes"]), c.id, closed, False, "clock.item.reporting", year),
        Item(f"case-{c.id}-survey", "window", "cycle", c.title, m["survey_opens"],
             effective_deadline(m["survey_closes"]), c.id, closed, False, "clock.item.survey", year),
        Item(f"case-{c.id}-review", "meeting", "cycle", c.title, m["review_meeting"], m["review_meeting"], c.id,
             closed, False, "clock.item.review", year),
        replace(report, values=year),
    ]


def _readable(session: Session, viewer: Actor) -> ColumnElement[bool]:
    """Return the cases the viewer may open: the engine's read rule, and the cycles of the follow-up's participants."""
    if may_see_cycles(session, viewer):
        return or_(visible_cases(viewer), col(Case.workflow) == "cycle")
    return visible_cases(viewer)


def _cases(session: Session, scope: Scope, viewer: Actor) -> list[Case]:
    stmt = select(Case).where(col(Case.workflow).in_(WORKFLOWS), _readable(session, viewer))
    if scope.network:
        stmt = stmt.where(or_(col(Case.parent_id).is_(None), col(Case.workflow) == "cycle_report"))
    else:
        conds: list[ColumnElement[bool]] = [col(Case.workflow) == "cycle"]
        if scope.organisation_id is not None:
            conds.append(col(Case.organisation_id) == scope.organisation_id)
            parties = select(col(Case.parent_id)).where(col(Case.workflow) == "agreement_party",
                                                        col(Case.organisation_id) == scope.organisation_id)
            conds.append(col(Case.id).in_(parties) & (col(Case.workflow) == "agreement"))
        if scope.person_id is not None:
            conds.append(col(Case.coordinator_id) == scope.person_id)
        stmt = stmt.where(or_(*conds))
    return list(session.execute(stmt.order_by(col(Case.id))).scalars())


def _measure_items(session: Session, cycles: list[Case], scope: Scope, now: datetime) -> list[Item]:
    ids = [c.id for c in cycles if c.workflow == "cycle"]
    stmt = select(Measure).where(col(Measure.cycle_id).in_(ids))
    if not scope.network:
        stmt = stmt.where(col(Measure.responsible) == (scope.organisation_key or ""))
    return [_deadline(f"measure-{m.id}", "cycle", f"{m.number}. {m.title}", m.due_date, m.cycle_id,
                      m.status in ("done", "dropped"), now) for m in session.execute(stmt).scalars()]


def collect(session: Session, scope: Scope, start: date, end: date, now: datetime,
            registry: Registry | None = None, *, viewer: Actor = SYSTEM) -> list[Item]:
    """Return the scope's items that touch [start, end], sorted by date (states read through the definitions).

    Only cases the `viewer` may open are listed (`engine.permissions.visible_cases`): every page, route and feed
    passes the person (or the organisation) it shows them to; the default, the engine, sees all (benchmarks, CLI).
    """
    registry = registry or _shipped()
    cases = _cases(session, scope, viewer)
    review_ids = [c.id for c in cases if c.workflow == "agreement"]
    if not scope.network and review_ids:  # reviews of the agreements this organisation is party to
        cases += [c for c in session.execute(select(Case).where(col(Case.workflow) == "review")).scalars()
                  if int(c.data.get("agreement_id", 0)) in review_ids]
    items = [i for c in cases for i in _case_items(c, now, registry)]
    items += _measure_items(session, cases, scope, now)
    meetings = select(Meeting).where(col(Meeting.held_on) >= start, col(Meeting.held_on) <= end)
    if scope.organisation_id is not None:
        meetings = meetings.where(or_(col(Meeting.organisation_id).is_(None),
                                      col(Meeting.organisation_id) == scope.organisation_id))
    items += [Item(f"meeting-{m.id}", "meeting", "meeting", m.title, m.held_on, m.held_on, None, True, False)
              for m in session.execute(meetings).scalars()]
    return sorted((i for i in items if i.end >= start and i.start <= end), key=lambda i: (i.start, i.uid))


def scope_for(session: Session, organisation_key: str | None = None, person_id: int | None = None,
              organisation_id: int | None = None) -> Scope:
    """Build a scope from an organisation key or id and/or a person."""
    key = organisation_key
    if organisation_id is not None and key is None:
        key = session.execute(select(col(Organisation.key)).where(col(Organisation.id) == organisation_id)).scalar()
    if key is not None and organisation_id is None:
        organisation_id = session.execute(select(col(Organisation.id)).where(col(Organisation.key) == key)).scalar()
    return Scope(organisation_id=organisation_id, organisation_key=key, person_id=person_id)
