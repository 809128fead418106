"""The registers plugin: no workflow of its own, only the meeting and statement tables the annual report reads."""

from __future__ import annotations

from engine.plugin import WorkflowPlugin
from workflows.registers.models import Meeting, Statement

PLUGIN = WorkflowPlugin(name="registers", tables=(Meeting, Statement))
