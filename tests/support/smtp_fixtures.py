"""Pytest fixture providing a started SmtpTestServer per test (registered via pytest_plugins)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.smtp_server import SmtpTestServer


@pytest.fixture
def smtp_server() -> Iterator[SmtpTestServer]:
    """A real SMTP server on 127.0.0.1 and a free port; stopped at teardown."""
    server = SmtpTestServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()
