"""Registers the annual report draws on: meetings held and statements issued (kannanotot)."""
