"""Wire the recurring processes (nominations, annual cycles, council-term reviews) into a registry."""

from __future__ import annotations

from pathlib import Path

from engine.registry import Registry

WORKFLOWS_DIR = Path(__file__).resolve().parent


def wire(registry: Registry) -> None:
    """Load the nomination, cycle and review definitions with their guards, reactions and recipients."""
    from workflows.nomination import service as nomination

    registry.load_dir(WORKFLOWS_DIR / "nomination", nomination.GUARDS)
    registry.on_transition(nomination.react_to_request)
    for name in (nomination.NOMINATION, nomination.PROPOSAL):
        registry.on_recipients(name, nomination.recipients)

    from workflows.cycle import reports as cycle_reports
    from workflows.cycle import service as cycle

    registry.load_dir(WORKFLOWS_DIR / "cycle")
    registry.on_transition(cycle.react)
    for name in (cycle.CYCLE, cycle.REPORT, "cycle_planner"):
        registry.on_recipients(name, cycle_reports.report_recipients)

    from workflows.review import service as review

    registry.load_dir(WORKFLOWS_DIR / "review")
    registry.on_transition(review.react)
