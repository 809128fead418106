"""The HTTP face of Vuosikello: the FastAPI app factory, dependencies, routes under /api/v1, the CLI."""
