"""Tests of the web interface: sign-in, sessions, CSRF, pages, and (marked browser) Chromium journeys."""
