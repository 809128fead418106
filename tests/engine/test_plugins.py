"""Registry.install: a plugin's definitions, scoped listeners, child listeners, recipients and trigger handlers."""

from __future__ import annotations

from typing import Any

import pytest

from engine.actors import SYSTEM
from engine.clock import ManualClock
from engine.db import Database
from engine.errors import DefinitionError
from engine.plugin import WorkflowPlugin
from engine.records import TransitionRecord
from engine.registry import Registry
from engine.service import Engine, UnitOfWork
from workflows.cycle import service as cycle_service
from workflows.registry import PLUGINS, WORKFLOWS_DIR


def test_install_wires_every_part_of_a_plugin() -> None:
    def listener(uow: Any, record: TransitionRecord) -> None: ...
    def resolver(uow: Any, case: Any, role: str) -> list[int]: return [7]
    def handler(uow: Any, case_id: int, actor: Any, payload: dict[str, Any], v: int | None) -> Any: ...

    registry = Registry()
    registry.install([WorkflowPlugin(name="review", definitions={WORKFLOWS_DIR / "review": {}},
                                     listeners={"review": (listener,)}, child_listeners={"review": listener},
                                     recipients={"review": resolver}, triggers={("review", "revise"): handler})])
    assert registry.names() == ["review"]
    assert registry.scoped_listeners == {"review": [listener]} and registry.listeners == []
    assert registry.child_listeners == {"review": listener}
    assert registry.trigger_handler("review", "revise") is handler
    assert registry.trigger_handler("review", "open") is None
    assert [p.name for p in registry.plugins] == ["review"]


def test_two_handlers_for_one_trigger_are_refused() -> None:
    def handler(uow: Any, case_id: int, actor: Any, payload: dict[str, Any], v: int | None) -> Any: ...

    plugin = WorkflowPlugin(name="a", triggers={("review", "revise"): handler})
    with pytest.raises(DefinitionError, match="two handlers"):
        Registry().install([plugin, WorkflowPlugin(name="b", triggers={("review", "revise"): handler})])


def test_a_scoped_listener_hears_only_its_workflow_and_before_every_case_listener(
        database: Database, clock: ManualClock) -> None:
    heard: list[tuple[str, str]] = []

    def scoped(uow: UnitOfWork, record: TransitionRecord) -> None:
        heard.append(("scoped", record.case.workflow))

    def every(uow: UnitOfWork, record: TransitionRecord) -> None:
        heard.append(("every", record.case.workflow))

    registry = Registry()
    registry.on_transition(every)
    registry.install([WorkflowPlugin(name="cycle", definitions={WORKFLOWS_DIR / "cycle": cycle_service.GUARDS},
                                     listeners={"cycle_report": (scoped,)})])
    engine = Engine(database, registry, clock)
    engine.run(lambda uow: uow.create_case("cycle_planner", actor=SYSTEM, data={}))
    engine.run(lambda uow: uow.create_case("cycle_report", actor=SYSTEM, data={}))
    assert heard == [("every", "cycle_planner"), ("scoped", "cycle_report"), ("every", "cycle_report")]


def test_every_shipped_plugin_is_installed_and_owns_its_tables() -> None:
    names = [p.name for p in PLUGINS]
    assert len(names) == len(set(names))
    tables = [t for p in PLUGINS for t in p.tables]
    assert len(tables) == len(set(tables)) and all(hasattr(t, "__table__") for t in tables)
