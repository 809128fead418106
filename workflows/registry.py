"""The shipped workflows as plugins, and the registry that installs them."""

from __future__ import annotations

from pathlib import Path

from engine.plugin import WorkflowPlugin
from engine.registry import Registry
from workflows.agreement.plugin import PLUGIN as AGREEMENT
from workflows.annual_clock.plugin import PLUGIN as ANNUAL_CLOCK
from workflows.cycle.plugin import PLUGIN as CYCLE
from workflows.nomination.plugin import PLUGIN as NOMINATION
from workflows.registers.plugin import PLUGIN as REGISTERS
from workflows.review.plugin import PLUGIN as REVIEW
from workflows.task_agreement.plugin import PLUGIN as TASK_AGREEMENT

WORKFLOWS_DIR = Path(__file__).resolve().parent
PLUGINS: tuple[WorkflowPlugin, ...] = (AGREEMENT, NOMINATION, CYCLE, REVIEW, REGISTERS, ANNUAL_CLOCK,
                                       TASK_AGREEMENT)


def build_registry(extra_dir: Path | None = None) -> Registry:
    """Return a registry with every shipped plugin installed (each definition version loaded and validated)."""
    registry = Registry()
    registry.install(PLUGINS)
    if extra_dir is not None:
        registry.load_dir(extra_dir)
    return registry
