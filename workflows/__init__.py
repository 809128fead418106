"""The processes Vuosikello runs: one folder per workflow with its definition (data), guards and service."""
