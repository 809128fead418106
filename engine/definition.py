"""Workflow definitions as validated data: states, transitions, roles, guards, payload fields and timers."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from engine.calendar import parse_offset
from engine.errors import DefinitionError

KNOWN_ROLES = ("admin", "coordinator", "party", "system", "requester")
# A definition nests about 6 deep (states > state > timers > timer > offsets); PyYAML builds nodes recursively, so
# a text nested 10,000 deep would end in a RecursionError. Aliases are counted expanded (a "billion laughs" text
# of a few hundred bytes would otherwise make pydantic validate millions of nodes).
MAX_YAML_DEPTH = 40
MAX_YAML_NODES = 100_000
FieldType = Literal["string", "text", "date", "url", "integer", "boolean", "email", "list", "object"]


class Localised(BaseModel):
    """A text in the three interface languages."""

    model_config = ConfigDict(extra="forbid")
    fi: str
    sv: str
    en: str


class PayloadField(BaseModel):
    """One field a trigger's payload may or must carry."""

    model_config = ConfigDict(extra="forbid")
    type: FieldType = "string"
    required: bool = False
    max_length: int | None = Field(default=None, gt=0)
    choices: list[str] | None = None


NAME = r"^[a-z][a-z0-9_]*$"


class TimerSpec(BaseModel):
    """A deadline, reminder policy or escalation armed on entering a state (see engine.timers)."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["deadline", "reminder", "escalation"]
    name: str = Field(pattern=NAME)
    # where the deadline comes from: `case.deadline` (the case's own date), a duration from entering the state, or
    # a Helsinki date (ISO yyyy-mm-dd) the workflow keeps in the case's data under `field` (`case_data`)
    at: Literal["case_deadline", "parent_deadline", "relative", "case_data"] = "case_deadline"
    after: str | None = None  # ISO 8601 duration for `relative`
    field: str | None = Field(default=None, pattern=NAME)  # the data key for `case_data`
    business_days: bool = False
    trigger: str | None = None  # fired when a deadline passes
    offsets: list[str] = Field(default_factory=list)  # reminders: -P14D, -P7D, -P1D, +P1D
    repeat_every: str | None = None  # after the deadline, e.g. P7D
    repeat_max: int = Field(default=0, ge=0, le=100)
    to: list[str] = Field(default_factory=list)  # roles: party, coordinator, regional_director, requester
    template: str | None = Field(default=None, pattern=NAME)

    @model_validator(mode="after")
    def _fits_its_kind(self) -> TimerSpec:
        # offsets are read with the calendar's own parser, the one the timers use, so a saved one cannot fail
        # later; every problem is one line "<field>: ...", which parse_definition places at the field's line
        problems = []
        for where, text in [*((f"offsets[{i}]", o) for i, o in enumerate(self.offsets)),
                            ("after", self.after), ("repeat_every", self.repeat_every)]:
            if text is None:
                continue
            try:
                parse_offset(text)
            except ValueError as exc:
                problems.append(f"{where}: {exc}")
        if self.kind == "deadline":
            if self.offsets or self.repeat_every or self.repeat_max:
                problems.append("offsets and repeat_* are read only by reminders and escalations")
            if self.at == "relative" and self.after is None:
                problems.append("after: a deadline at: relative needs `after`, a duration such as P14D")
        else:
            if not self.offsets:
                problems.append(f"offsets: a {self.kind} needs at least one offset, such as -P7D")
            if not self.template:
                problems.append(f"template: a {self.kind} needs the email template it sends")
            if not self.to:
                problems.append(f"to: a {self.kind} needs the roles it is sent to")
            if self.trigger:
                problems.append(f"trigger: a {self.kind} sends email and fires no trigger; use a deadline")
        if (self.at == "case_data") != (self.field is not None):
            problems.append("field: at: case_data needs `field`, the case data key holding the date; "
                            "`field` is read only with at: case_data")
        if self.after is not None and not (self.kind == "deadline" and self.at == "relative"):
            problems.append("after: read only by a deadline with at: relative")
        if self.repeat_every is not None:
            try:
                every = parse_offset(self.repeat_every)
            except ValueError:
                every = None
            if every is not None and (every.days <= 0 or not every.is_day_based):
                problems.append(f"repeat_every: {self.repeat_every!r} must be a positive number of days, such as P7D")
            if not self.repeat_max:
                problems.append("repeat_max: repeat_every needs repeat_max, how many times (1-100)")
        elif self.repeat_max:
            problems.append("repeat_every: repeat_max needs repeat_every, such as P7D")
        if problems:
            raise ValueError("\n".join(problems))
        return self


class NotifySpec(BaseModel):
    """An email sent when a transition happens: to whom (roles) and with which template."""

    model_config = ConfigDict(extra="forbid")
    to: list[str] = Field(min_length=1)
    template: str = Field(pattern=NAME)


class StateSpec(BaseModel):
    """One state: what it means, whether it ends the case, the timers it arms."""

    model_config = ConfigDict(extra="forbid")
    description: str
    final: bool = False
    # What the state counts as, for code that must ask rather than name states: e.g. `signed` (a party's
    # signature is complete), `open` (the case takes proposals or reports). Code asks `in_tagged`.
    tags: list[str] = Field(default_factory=list)
    timers: list[TimerSpec] = Field(default_factory=list)

    @field_validator("tags")
    @classmethod
    def _tag_names(cls, value: list[str]) -> list[str]:
        for tag in value:
            if not tag.replace("_", "").isalnum() or not tag[:1].isalpha() or tag != tag.lower():
                raise ValueError(f"tag {tag!r}: use lower-case letters, digits and _")
        return value


class TransitionSpec(BaseModel):
    """One transition: trigger, sources, destination, who may fire it, guards and payload."""

    model_config = ConfigDict(extra="forbid")
    trigger: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    source: list[str]
    dest: str | None = None  # None: an internal transition that stays in the state
    roles: list[str] = Field(default_factory=lambda: ["system"])
    conditions: list[str] = Field(default_factory=list)
    event: str | None = None
    payload: dict[str, PayloadField] = Field(default_factory=dict)
    notify: list[NotifySpec] = Field(default_factory=list)
    # What people are told when this trigger is refused in a state it cannot fire from (fi, sv, en)
    refusal: Localised | None = None

    @field_validator("source", mode="before")
    @classmethod
    def _source_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("roles")
    @classmethod
    def _known_roles(cls, value: list[str]) -> list[str]:
        for role in value:
            if role not in KNOWN_ROLES:
                raise ValueError(f"unknown role {role!r}; known roles: {', '.join(KNOWN_ROLES)}")
        return value

    @property
    def event_name(self) -> str:
        """Return the past-tense event name recorded for this transition."""
        return self.event or "".join(p.capitalize() for p in self.trigger.split("_"))


class WorkflowDefinition(BaseModel):
    """A complete, validated workflow definition of one version."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    version: int = Field(ge=1)
    title: Localised
    description: str = ""
    initial: str
    parent: str | None = None
    # settings of this definition version that code reads by name (e.g. the agreement's
    # enter_into_force_when_final); plain values only
    settings: dict[str, bool | int | str] = Field(default_factory=dict)
    states: dict[str, StateSpec]
    transitions: list[TransitionSpec]

    @model_validator(mode="after")
    def _consistent(self) -> WorkflowDefinition:
        # every problem, one per line (parse_definition lists each at its own line), not just the first
        problems = []
        if self.initial not in self.states:
            problems.append(f"initial: state {self.initial!r} is not among the states")
        for i, t in enumerate(self.transitions):
            for s in t.source:
                if s != "*" and s not in self.states:
                    problems.append(f"transitions[{i}].source: unknown state {s!r}")
                if s in self.states and self.states[s].final:
                    problems.append(f"transitions[{i}].source: {s!r} is final and cannot be left")
            if t.dest is not None and t.dest not in self.states:
                problems.append(f"transitions[{i}].dest: unknown state {t.dest!r}")
        for name, state in self.states.items():
            seen: set[str] = set()
            for j, timer in enumerate(state.timers):
                if timer.trigger and timer.trigger not in self.triggers_from(name):
                    problems.append(f"states.{name}.timers[{j}].trigger: {timer.trigger!r} cannot fire in state "
                                    f"{name!r}")
                if timer.name in seen:
                    problems.append(f"states.{name}.timers[{j}].name: {timer.name!r} is used twice in this state")
                seen.add(timer.name)
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def templates(self) -> list[tuple[tuple[Any, ...], str]]:
        """Return every email template the definition names, with where (a validation location) it is named."""
        out: list[tuple[tuple[Any, ...], str]] = []
        for name, state in self.states.items():
            out += [(("states", name, "timers", j, "template"), t.template)
                    for j, t in enumerate(state.timers) if t.template]
        for i, t in enumerate(self.transitions):
            out += [(("transitions", i, "notify", k, "template"), n.template) for k, n in enumerate(t.notify)]
        return out

    def has_tag(self, state: str, tag: str) -> bool:
        """Tell whether a state carries a tag (an unknown state carries none)."""
        spec = self.states.get(state)
        return spec is not None and tag in spec.tags

    def tagged(self, tag: str) -> list[str]:
        """Return the states that carry a tag, in definition order."""
        return [name for name, spec in self.states.items() if tag in spec.tags]

    def setting(self, name: str, default: bool | int | str = False) -> bool | int | str:
        """Return a definition setting, or the default when this version does not set it."""
        return self.settings.get(name, default)

    def is_final(self, state: str) -> bool:
        """Tell whether a state ends the case."""
        spec = self.states.get(state)
        return spec is not None and spec.final

    def triggers_from(self, state: str) -> list[str]:
        """Return the triggers allowed in a state, in definition order, without repeats."""
        seen: list[str] = []
        for t in self.transitions:
            if (state in t.source or "*" in t.source) and t.trigger not in seen:
                seen.append(t.trigger)
        return seen

    def transitions_for(self, trigger: str) -> list[TransitionSpec]:
        """Return every transition declared for a trigger."""
        return [t for t in self.transitions if t.trigger == trigger]

    @property
    def final_states(self) -> list[str]:
        """Return the names of final states."""
        return [n for n, s in self.states.items() if s.final]


_NAMES_PATH = re.compile(r"^[a-z_][\w.\[\]]*: ")


def _path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(root)"


def _loc_of(path: str) -> tuple[Any, ...]:
    """Turn 'transitions[4].dest' into ('transitions', 4, 'dest')."""
    out: list[Any] = []
    for part in re.split(r"\.", path):
        name, *indexes = re.split(r"\[", part)
        if name:
            out.append(name)
        out += [int(i.rstrip("]")) for i in indexes if i.rstrip("]").isdigit()]
    return tuple(out)


def _line_of(node: Any, loc: tuple[Any, ...]) -> int | None:
    """Return the 1-based YAML line of a validation error's location (the deepest node found)."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == str(part)), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            break
        if node is None:
            break
        line = node.start_mark.line + 1
    return line


def _refuse_shape(source: str, line: int, message: str) -> DefinitionError:
    problem = f"{source}: line {line}: (root): {message}"
    return DefinitionError(problem, problems=[problem], lines=[{"line": line, "path": "(root)", "message": message}])


def check_yaml_shape(text: str, source: str = "<string>") -> None:
    """Refuse YAML nested deeper than MAX_YAML_DEPTH or expanding to more than MAX_YAML_NODES nodes.

    Reads PyYAML's event stream, which its parser produces without recursion, before anything builds nodes.
    """
    depth = 0
    counts: list[int] = [0]  # nodes inside each open collection (the outermost entry: the whole document)
    anchors: list[str | None] = []
    sizes: dict[str, int] = {}
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        line = event.start_mark.line + 1 if event.start_mark is not None else 0
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_YAML_DEPTH:
                raise _refuse_shape(source, line, f"nested more than {MAX_YAML_DEPTH} levels deep")
            counts.append(0)
            anchors.append(event.anchor)
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
            size = counts.pop() + 1
            anchor = anchors.pop()
            if anchor:
                sizes[anchor] = size
            counts[-1] += size
        elif isinstance(event, yaml.ScalarEvent):
            counts[-1] += 1
            if event.anchor:
                sizes[event.anchor] = 1
        elif isinstance(event, yaml.AliasEvent):
            counts[-1] += sizes.get(event.anchor or "", 1)
        if counts[-1] > MAX_YAML_NODES or sum(counts) > MAX_YAML_NODES:
            raise _refuse_shape(source, line, f"more than {MAX_YAML_NODES} values once aliases are expanded")


def parse_definition(text: str, source: str = "<string>") -> WorkflowDefinition:
    """Parse and validate YAML text; raise DefinitionError naming source, line, path and problem."""
    try:
        check_yaml_shape(text, source)
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = f"{source}:{where} not valid YAML: {getattr(exc, 'problem', exc)}"
        raise DefinitionError(problem, problems=[problem],
                              lines=[{"line": mark.line + 1 if mark else None, "path": "(root)",
                                      "message": str(getattr(exc, "problem", exc))}]) from exc
    if not isinstance(raw, dict):
        raise DefinitionError(f"{source}: (root): a definition must be a mapping")
    try:
        return WorkflowDefinition.model_validate(raw)
    except ValidationError as exc:
        found = []
        for err in exc.errors():
            where, loc = _path(err["loc"]), tuple(err["loc"])
            for msg in err["msg"].removeprefix("Value error, ").split("\n"):
                # whole-definition checks name their own path ("transitions[0].dest: ..."); don't prefix "(root)"
                if _NAMES_PATH.match(msg):  # "transitions[0].dest: ..." from the root, "offsets[1]: ..." inside
                    own, rest = msg.split(": ", 1)
                    found.append(((*(() if where == "(root)" else loc), *_loc_of(own)), rest))
                else:
                    found.append((loc, msg))
        raise problems_at(text, source, found) from exc


def problems_at(text: str, source: str, found: list[tuple[tuple[Any, ...], str]]) -> DefinitionError:
    """Return a DefinitionError listing each (location, message) at its YAML line, in the order of the lines."""
    try:
        root = yaml.compose(text)
    except yaml.YAMLError:
        root = None
    rows = []
    for loc, msg in found:
        line = _line_of(root, loc)
        rows.append((line or 0, _path(loc), msg))
    rows.sort(key=lambda r: r[0])
    problems = [f"{source}: line {line or None}: {where}: {msg}" for line, where, msg in rows]
    lines = [{"line": line or None, "path": where, "message": msg} for line, where, msg in rows]
    return DefinitionError("; ".join(problems), problems=problems, lines=lines)


def load_definition(path: Path) -> WorkflowDefinition:
    """Load one definition file."""
    return parse_definition(path.read_text(encoding="utf-8"), str(path))


def to_mermaid(defn: WorkflowDefinition) -> str:
    """Render a Mermaid stateDiagram-v2 of the definition."""
    lines = ["stateDiagram-v2", f"    [*] --> {defn.initial}"]
    for t in defn.transitions:
        sources = list(defn.states) if "*" in t.source else t.source
        for s in sources:
            dest = t.dest or s
            lines.append(f"    {s} --> {dest}: {t.trigger}")
    for name in defn.final_states:
        lines.append(f"    {name} --> [*]")
    return "\n".join(lines) + "\n"
