"""The HTTP face of Vuosikello: the FastAPI app factory, dependencies, routes under /api/v1, the CLI."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("vuosikello")
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0.0.0+unknown"
