"""The annual clock plugin: no workflow of its own, only the calendar feeds' table."""

from __future__ import annotations

from engine.plugin import WorkflowPlugin
from workflows.annual_clock.models import CalendarFeed

PLUGIN = WorkflowPlugin(name="annual_clock", tables=(CalendarFeed,))
