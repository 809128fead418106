"""Every workflow's tables, as the plugins list them; importing this module registers them in SQLModel's metadata."""

from workflows.registry import PLUGINS

TABLES = tuple(table for plugin in PLUGINS for table in plugin.tables)
