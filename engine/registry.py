"""The set of loaded workflow definitions (every version), their machines, guards and hooks; installs plugins."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.audit import AuditCheck
from engine.definition import WorkflowDefinition, load_definition
from engine.errors import DefinitionError, NotFound
from engine.machine import Guard, WorkflowMachine
from engine.plugin import Listener, Resolver, TriggerHandler, WorkflowPlugin
from engine.records import CaseRow


@dataclass
class Registry:
    """Definitions by (name, version); listeners called after transitions inside their transaction.

    A transition's listeners run in this order: those scoped to the case's workflow, then those of every case,
    then the parent workflow's child listener. Workflow reactions come first because they may move the deadline
    that the timer listener (one of every case's) reads.
    """

    machines: dict[tuple[str, int], WorkflowMachine] = field(default_factory=dict)
    listeners: list[Listener] = field(default_factory=list)
    scoped_listeners: dict[str, list[Listener]] = field(default_factory=dict)
    child_listeners: dict[str, Listener] = field(default_factory=dict)
    triggers: dict[tuple[str, str], TriggerHandler] = field(default_factory=dict)
    plugins: list[WorkflowPlugin] = field(default_factory=list)
    sources: dict[tuple[str, int], Path] = field(default_factory=dict)
    resolvers: dict[str, Resolver] = field(default_factory=dict)
    services: dict[str, Any] = field(default_factory=dict)  # shared helpers, e.g. the mail configuration
    guards: dict[str, dict[str, Guard]] = field(default_factory=dict)  # per workflow, for later versions
    audit_checks: list[AuditCheck] = field(default_factory=list)  # records checked against their events
    # prebuilt SELECTs without parameters that listeners read in nearly every transaction (`read_first`)
    prefetch: dict[str, Any] = field(default_factory=dict)

    def register(self, definition: WorkflowDefinition, guards: dict[str, Guard] | None = None,
                 source: Path | None = None) -> WorkflowMachine:
        """Compile and add a definition version."""
        key = (definition.name, definition.version)
        if key in self.machines:
            raise DefinitionError(f"{source or definition.name}: version {definition.version} is loaded twice")
        try:
            machine = WorkflowMachine(definition, guards or {})
        except ValueError as exc:
            raise DefinitionError(f"{source or definition.name}: {exc}") from exc
        self.machines[key] = machine
        self.guards.setdefault(definition.name, {}).update(guards or {})
        if source is not None:
            self.sources[key] = source
        return machine

    def load_dir(self, folder: Path, guards: dict[str, Guard] | None = None) -> list[WorkflowMachine]:
        """Load every `*.yaml` definition in a folder."""
        return [self.register(load_definition(p), guards, p) for p in sorted(folder.glob("*.yaml"))]

    def machine(self, name: str, version: int | None = None) -> WorkflowMachine:
        """Return the machine of a version, or of the newest version."""
        if version is None:
            version = self.latest_version(name)
        try:
            return self.machines[(name, version)]
        except KeyError:
            raise NotFound(f"no workflow {name!r} version {version}") from None

    def latest_version(self, name: str) -> int:
        """Return the newest version number of a workflow."""
        versions = [v for (n, v) in self.machines if n == name]
        if not versions:
            raise NotFound(f"no workflow named {name!r}; known: {', '.join(self.names())}")
        return max(versions)

    def names(self) -> list[str]:
        """Return the workflow names, sorted."""
        return sorted({n for (n, _v) in self.machines})

    def tagged(self, name: str, tag: str) -> list[str]:
        """Return the states carrying a tag in any loaded version of a workflow (queries over running cases)."""
        out: list[str] = []
        for (n, _v), machine in sorted(self.machines.items()):
            if n == name:
                out += [s for s in machine.definition.tagged(tag) if s not in out]
        return out

    def final(self, name: str) -> list[str]:
        """Return the final states of any loaded version of a workflow."""
        out: list[str] = []
        for (n, _v), machine in sorted(self.machines.items()):
            if n == name:
                out += [s for s in machine.definition.final_states if s not in out]
        return out

    def definitions(self) -> list[WorkflowDefinition]:
        """Return the newest definition of every workflow."""
        return [self.machine(n).definition for n in self.names()]

    def install(self, plugins: Iterable[WorkflowPlugin]) -> None:
        """Load each plugin's definitions with their guards and wire its hooks and trigger handlers."""
        for plugin in plugins:
            for folder, guards in plugin.definitions.items():
                self.load_dir(folder, dict(guards))
            for workflow, listeners in plugin.listeners.items():
                for listener in listeners:
                    self.on_transition(listener, workflow=workflow)
            for parent, listener in plugin.child_listeners.items():
                self.on_child_transition(parent, listener)
            for workflow, resolver in plugin.recipients.items():
                self.on_recipients(workflow, resolver)
            for key, handler in plugin.triggers.items():
                if key in self.triggers:
                    raise DefinitionError(f"plugin {plugin.name}: trigger {key[1]!r} of {key[0]!r} has two handlers")
                self.triggers[key] = handler
            self.audit_checks += [c for c in plugin.audit_checks if c not in self.audit_checks]
            self.plugins.append(plugin)

    def read_first(self, key: str, select: Any) -> None:
        """Declare a read (a prebuilt Core SELECT without parameters) that listeners make in nearly every
        transaction, read with `UnitOfWork.prefetched(key)`: on PostgreSQL it is sent with the transaction's first
        statement, in the same round trip; elsewhere it runs when first asked for."""
        self.prefetch[key] = select

    def on_transition(self, listener: Listener, *, workflow: str | None = None) -> None:
        """Call a listener after every transition (or only those of one workflow's cases), in the same transaction."""
        if workflow is None:
            self.listeners.append(listener)
        else:
            self.scoped_listeners.setdefault(workflow, []).append(listener)

    def on_child_transition(self, parent_workflow: str, listener: Listener) -> None:
        """Let a parent workflow react to its children's transitions in the same transaction."""
        self.child_listeners[parent_workflow] = listener

    def on_recipients(self, workflow: str, resolver: Resolver) -> None:
        """Tell who a role (party, coordinator, ...) means on a workflow's cases, as person ids."""
        self.resolvers[workflow] = resolver

    def trigger_handler(self, workflow: str, trigger: str) -> TriggerHandler | None:
        """Return the service function that owns a trigger of a workflow, if one does."""
        return self.triggers.get((workflow, trigger))

    def recipients(self, uow: Any, case: CaseRow, role: str) -> list[int]:
        """Return the person ids a role means on a case (the coordinator role works everywhere)."""
        resolver = self.resolvers.get(case.workflow)
        if resolver is not None:
            return resolver(uow, case, role)
        if role == "coordinator" and case.coordinator_id is not None:
            return [case.coordinator_id]
        return []
