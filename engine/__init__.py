"""Vuosikello's generic workflow engine: definitions, machines, cases, events, timers and the unit of work.

Map: definition (YAML -> validated data), machine (one transitions.Machine per definition version),
models (tables), db (engines and sessions), uow (the transaction boundary), service (fire a trigger),
audit (hash chain), calendar (Finnish business days), clock (injectable time), errors.
"""
