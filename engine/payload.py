"""Validate a trigger's payload against the fields its definition declares."""

from __future__ import annotations

from datetime import date
from typing import Any
from urllib.parse import urlparse

from engine.definition import PayloadField
from engine.errors import InvalidInput


def _check(name: str, spec: PayloadField, value: Any) -> Any:
    kind = spec.type
    if kind in ("string", "text", "email", "url"):
        if not isinstance(value, str):
            raise InvalidInput(name, f"must be a string, got {type(value).__name__}")
        if spec.max_length and len(value) > spec.max_length:
            raise InvalidInput(name, f"is longer than {spec.max_length} characters")
        if kind == "url":
            parsed = urlparse(value)
            if parsed.scheme not in ("http", "https") or not parsed.netloc:
                raise InvalidInput(name, "must be an http(s) URL")
        if kind == "email" and "@" not in value:
            raise InvalidInput(name, "must be an email address")
    elif kind == "date":
        if not isinstance(value, str):
            raise InvalidInput(name, "must be a date as YYYY-MM-DD")
        try:
            date.fromisoformat(value)
        except ValueError:
            raise InvalidInput(name, f"{value!r} is not a valid date (YYYY-MM-DD)") from None
    elif kind == "integer":
        if not isinstance(value, int) or isinstance(value, bool):
            raise InvalidInput(name, "must be an integer")
    elif kind == "boolean":
        if not isinstance(value, bool):
            raise InvalidInput(name, "must be true or false")
    elif kind == "list" and not isinstance(value, list):
        raise InvalidInput(name, "must be a list")
    elif kind == "object" and not isinstance(value, dict):
        raise InvalidInput(name, "must be an object")
    if spec.choices is not None and value not in spec.choices:
        raise InvalidInput(name, f"must be one of {', '.join(spec.choices)}")
    return value


def validate_payload(fields: dict[str, PayloadField], payload: dict[str, Any], *, strict: bool) -> dict[str, Any]:
    """Return the payload if it fits the declared fields; raise InvalidInput naming the field otherwise."""
    if not isinstance(payload, dict):
        raise InvalidInput("payload", "must be a JSON object")
    if strict:
        unknown = sorted(set(payload) - set(fields))
        if unknown:
            allowed = ", ".join(sorted(fields)) or "none"
            raise InvalidInput(unknown[0], f"is not a field of this trigger (allowed: {allowed})")
    for name, spec in fields.items():
        value = payload.get(name)
        if value is None or value == "":
            if spec.required:
                raise InvalidInput(name, "is required")
            continue
        _check(name, spec, value)
    return payload
