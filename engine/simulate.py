"""Simulate a definition from a start date: the states it passes, its deadlines, reminders and emails, and which
dates moved because of weekends and Finnish holidays. Nothing is written."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from engine.calendar import effective_deadline, holiday_name, local_date, local_time_utc, parse_offset
from engine.definition import TimerSpec, WorkflowDefinition
from engine.timers import plan

MAX_STEPS = 50


@dataclass(frozen=True)
class SimEntry:
    """One thing that would happen."""

    at: datetime
    state: str
    kind: str  # enter | deadline | reminder | escalation | transition | cancelled
    name: str
    offset: str | None = None
    trigger: str | None = None
    template: str | None = None
    to: list[str] = field(default_factory=list)
    nominal: date | None = None  # the date before moving to a business day
    moved: bool = False
    reason: str | None = None  # why it moved: a holiday's name or "weekend"

    @property
    def local_date(self) -> date:
        """Return the Helsinki date of the entry."""
        return local_date(self.at)


def _why(d: date, lang: str) -> str:
    return holiday_name(d, lang) or ("weekend" if d.weekday() >= 5 else "non-business day")


def _nominal(spec: TimerSpec, offset: str | None, deadline: date | None, start: datetime) -> date | None:
    if spec.kind == "deadline":
        if spec.at == "relative":
            off = parse_offset(offset or "P0D")
            return local_date(start) + timedelta(days=off.days) if off.is_day_based else None
        return deadline
    if deadline is None or offset is None:
        return None
    off = parse_offset(offset)
    if not off.is_day_based or spec.business_days:
        return None
    return effective_deadline(deadline) + timedelta(days=off.days)


def _entries(state: str, spec: TimerSpec, deadline: date | None, offsets: list[str], start: datetime,
             lang: str) -> list[SimEntry]:
    out = []
    for due, offset, _deadline in plan(spec, deadline, offsets, start):
        nominal = _nominal(spec, offset, deadline, start)
        moved = nominal is not None and local_date(due) != nominal
        out.append(SimEntry(at=due, state=state, kind=spec.kind, name=spec.name, offset=offset, trigger=spec.trigger,
                            template=spec.template, to=list(spec.to), nominal=nominal, moved=moved,
                            reason=_why(nominal, lang) if moved and nominal else None))
    return out


def simulate(defn: WorkflowDefinition, *, start: date, deadline: date | None = None,
             reminder_offsets: list[str] | None = None, path: list[str] | None = None,
             lang: str = "en") -> list[SimEntry]:
    """Walk a definition from its initial state: user triggers from `path` happen at once, deadline timers at
    their due time; return every entry in time order (reminders after leaving a state are shown cancelled)."""
    now = local_time_utc(start)
    state = defn.initial
    pending_path = list(path or [])
    timeline = [SimEntry(at=now, state=state, kind="enter", name=state)]
    for _ in range(MAX_STEPS):
        spec_state = defn.states[state]
        armed: list[SimEntry] = []
        for spec in spec_state.timers:
            offsets = list(reminder_offsets or spec.offsets) if spec.kind == "reminder" else list(spec.offsets)
            armed += [e for e in _entries(state, spec, deadline, offsets, now, lang)
                      if e.kind == "deadline" or e.at >= now]
        leave_at, trigger = _next_exit(defn, state, armed, pending_path, now)
        for e in armed:
            if leave_at is None or e.at <= leave_at:
                timeline.append(e)
            elif e.kind != "deadline":
                timeline.append(SimEntry(at=e.at, state=state, kind="cancelled", name=e.name, offset=e.offset))
        if leave_at is None or trigger is None or spec_state.final:
            break
        dest = next((t.dest for t in defn.transitions_for(trigger)
                     if (state in t.source or "*" in t.source) and t.dest), None)
        if dest is None or dest == state:
            break
        timeline.append(SimEntry(at=leave_at, state=state, kind="transition", name=f"{state} -> {dest}",
                                 trigger=trigger))
        state, now = dest, leave_at
        timeline.append(SimEntry(at=now, state=state, kind="enter", name=state))
    order = {"transition": 1, "enter": 2}
    return sorted(timeline, key=lambda e: (e.at, order.get(e.kind, 0)))


def _next_exit(defn: WorkflowDefinition, state: str, armed: list[SimEntry], path: list[str],
               now: datetime) -> tuple[datetime | None, str | None]:
    if path:
        trigger = path.pop(0)
        if trigger not in defn.triggers_from(state):
            raise ValueError(f"path: {trigger!r} is not allowed in state {state!r}; "
                             f"allowed: {', '.join(defn.triggers_from(state)) or 'none'}")
        return now, trigger
    deadlines = sorted((e for e in armed if e.kind == "deadline" and e.trigger), key=lambda e: e.at)
    for e in deadlines:
        if any(t.dest and t.dest != state for t in defn.transitions_for(e.trigger or "")
               if state in t.source or "*" in t.source):
            return e.at, e.trigger
    return None, None
