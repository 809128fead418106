"""One transitions.Machine per definition version, shared by every case; a small handle carries a row's state."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from transitions import Machine, MachineError

from engine.definition import PayloadField, TransitionSpec, WorkflowDefinition

Guard = Callable[[Any], bool]


@dataclass(frozen=True)
class Route:
    """What one trigger can do from one state: its transitions, who may fire it, the payload it takes."""

    specs: tuple[TransitionSpec, ...]
    roles: frozenset[str]
    payload: dict[str, PayloadField]


class _Handle:
    """Stands in for a case row while one trigger runs: `state` plus the context guards read."""

    def __init__(self, guards: dict[str, Guard]) -> None:
        self.state = ""
        self.ctx: Any = None
        self._guards = guards

    def __getattr__(self, name: str) -> Any:
        guards = self.__dict__.get("_guards", {})
        if name in guards:
            guard = guards[name]
            return lambda event_data=None: guard(self.ctx)
        raise AttributeError(name)


class WorkflowMachine:
    """The compiled machine of one definition version."""

    def __init__(self, definition: WorkflowDefinition, guards: dict[str, Guard]) -> None:
        missing = {c for t in definition.transitions for c in t.conditions} - set(guards)
        if missing:
            raise ValueError(f"workflow {definition.name!r}: no guard registered for {sorted(missing)}")
        self.definition = definition
        self.guards = guards
        self.machine = Machine(
            model=None,
            states=list(definition.states),
            transitions=[self._spec(t) for t in definition.transitions],
            initial=definition.initial,
            auto_transitions=False,
            send_event=True,
        )
        self._local = threading.local()
        # Definitions do not change once loaded: answer "what may happen here" from tables, not list scans.
        self._allowed = {state: tuple(definition.triggers_from(state)) for state in definition.states}
        self._routes = {(state, trigger): self._route(state, trigger)
                        for state, triggers in self._allowed.items() for trigger in triggers}

    @staticmethod
    def _spec(t: Any) -> dict[str, Any]:
        return {
            "trigger": t.trigger,
            "source": "*" if "*" in t.source else t.source,
            "dest": t.dest,
            "conditions": list(t.conditions),
        }

    def _handle(self) -> _Handle:
        # One handle per thread stays attached; no case is ever attached, so add_model is paid once per thread.
        handle: _Handle | None = getattr(self._local, "handle", None)
        if handle is None:
            handle = _Handle(self.guards)
            self.machine.add_model(handle, initial=self.definition.initial)
            self._local.handle = handle
        return handle

    def fire(self, state: str, trigger: str, ctx: Any) -> str | None:
        """Run a trigger from a state; return the new state, or None when the guards refused."""
        event = self.machine.events.get(trigger)
        if event is None:
            return None
        handle = self._handle()
        handle.state = state
        handle.ctx = ctx
        try:
            ok = event.trigger(handle)  # what handle.trigger(name) does, minus a lookup and a partial
        except MachineError:
            return None
        finally:
            handle.ctx = None
        return handle.state if ok else None

    def would_pass(self, state: str, trigger: str, ctx: Any) -> bool:
        """Tell whether some transition of a trigger from a state has every guard passing (nothing is changed)."""
        route = self.route(state, trigger)
        if route is None:
            return False
        for spec in route.specs:
            try:
                if all(self.guards[c](ctx) for c in spec.conditions):
                    return True
            except (KeyError, LookupError):  # a guard that needs the payload decides only when fired
                return True
        return False

    def allowed_triggers(self, state: str) -> list[str]:
        """Return the triggers the definition allows in a state."""
        allowed = self._allowed.get(state)
        return list(allowed) if allowed is not None else self.definition.triggers_from(state)

    def _route(self, state: str, trigger: str) -> Route:
        specs = tuple(t for t in self.definition.transitions_for(trigger) if state in t.source or "*" in t.source)
        return Route(specs, frozenset(r for t in specs for r in t.roles), specs[0].payload)

    def route(self, state: str, trigger: str) -> Route | None:
        """Return what a trigger can do from a state, or None when the definition does not allow it there."""
        found = self._routes.get((state, trigger))
        if found is None and state not in self._allowed and trigger in self.definition.triggers_from(state):
            found = self._route(state, trigger)  # a state this version does not declare: only "*" sources
        return found
