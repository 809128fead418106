"""Tests for the notifications package (MIME building, SMTP delivery)."""
