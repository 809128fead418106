"""Fixtures of the web tests: Debian's Chromium for Playwright, a signed-in test client."""

from __future__ import annotations

from typing import Any

import pytest

from tests.web.live import CHROMIUM, CHROMIUM_ARGS


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    """Launch the system Chromium (never a downloaded one) with the CI flags."""
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS, "headless": True}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict[str, Any]) -> dict[str, Any]:
    """Use a desktop-sized window and a Finnish locale."""
    return {**browser_context_args, "viewport": {"width": 1280, "height": 900}, "locale": "fi-FI"}
