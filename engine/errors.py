"""The engine's error hierarchy; the API maps each class to one HTTP status.

Every error carries an English `detail` for logs and API clients, and may carry a `message_id` with its
`params`: the id of a message in the engine's catalogue (`engine/locale`), which the API and the pages show in
the person's language. Params are plain values (strings, numbers, lists of strings).
"""

from __future__ import annotations

from typing import Any


class EngineError(Exception):
    """Base of every error the engine raises on purpose."""

    status_code = 400

    def __init__(self, detail: str, *, message_id: str | None = None, params: dict[str, Any] | None = None,
                 **extra: object) -> None:
        super().__init__(detail)
        self.detail = detail
        self.message_id = message_id
        self.params: dict[str, Any] = dict(params or {})
        self.extra = extra


class NotFound(EngineError):
    """A case, person, organisation or workflow that does not exist."""

    status_code = 404


class CaseNotFound(NotFound):
    """No case with that id."""


class InvalidTransition(EngineError):
    """The trigger is not allowed in the case's current state."""

    status_code = 409


class GuardRejected(EngineError):
    """A guard condition refused the transition."""

    status_code = 409


class Conflict(EngineError):
    """A stale version or a duplicate that contradicts what is stored."""

    status_code = 409


class NotPermitted(EngineError):
    """The actor may not do this."""

    status_code = 403


class Unauthenticated(EngineError):
    """No valid credentials."""

    status_code = 401


class InvalidInput(EngineError):
    """A value the caller sent is not acceptable; `field` names it."""

    status_code = 422

    def __init__(self, field: str, detail: str, *, message_id: str | None = None,
                 params: dict[str, Any] | None = None) -> None:
        super().__init__(f"{field}: {detail}", field=field, message_id=message_id,
                         params={"field": field, **(params or {})})
        self.field = field


class DefinitionError(EngineError):
    """A workflow definition is invalid; the message names file, path and problem."""

    status_code = 422
