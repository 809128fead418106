"""Load every workflow definition shipped under workflows/ and wire its guards and parent reactions."""

from __future__ import annotations

from pathlib import Path

from engine.registry import Registry
from workflows import recurring
from workflows.agreement import service as agreement

WORKFLOWS_DIR = Path(__file__).resolve().parent


def build_registry(extra_dir: Path | None = None) -> Registry:
    """Return a registry with every shipped definition version loaded and validated."""
    registry = Registry()
    registry.load_dir(WORKFLOWS_DIR / "agreement", agreement.AGREEMENT_GUARDS)
    registry.load_dir(WORKFLOWS_DIR / "agreement_party", agreement.PARTY_GUARDS)
    registry.on_child_transition("agreement", agreement.react_to_party)
    registry.on_recipients("agreement", agreement.recipients)
    registry.on_recipients("agreement_party", agreement.recipients)
    recurring.wire(registry)
    if extra_dir is not None:
        registry.load_dir(extra_dir)
    return registry
