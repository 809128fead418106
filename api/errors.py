"""One place that maps errors to HTTP: engine errors, validation errors, database trouble."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.logscrub import scrub
from api.observability import current_request_id
from api.refusals import refusal_text
from engine.errors import EngineError, NotPermitted
from engine.i18n import DEFAULT_LANGUAGE, normalise
from engine.models import AccessDenial

log = logging.getLogger("vuosikello.api")


def _body(error: str, detail: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"error": error, "detail": detail}
    body.update({k: v for k, v in extra.items()
                 if k in ("field", "allowed", "current_version", "current_sha256") and v is not None})
    if extra.get("lines"):
        body["problems"] = extra["lines"]
    request_id = current_request_id()
    if request_id:
        body["request_id"] = request_id
    return body


def _loc(loc: tuple[Any, ...]) -> str:
    # drop only the leading location: a body field may itself be called "body" (a decision's body)
    parts = list(loc[1:]) if len(loc) > 1 and loc[0] in ("body", "query", "path", "header", "cookie") else list(loc)
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _out_of_range_field(request: Request) -> str:
    """Name the path or query parameter the database could not take (a NUL, a number beyond INTEGER)."""
    for name, value in [*request.path_params.items(), *request.query_params.items()]:
        text = str(value)
        if "\x00" in text or (text.lstrip("-").isdigit() and not -(2**31) <= int(text) < 2**31):
            return name
    return "body"


def request_language(request: Request) -> str:
    """Return the caller's language: Accept-Language (fi, sv or en), else the web page's, else Finnish."""
    header = request.headers.get("accept-language", "")
    ranked = []
    for i, part in enumerate(header.split(",")):
        tag, _, q = part.strip().partition(";q=")
        try:
            weight = float(q) if q else 1.0
        except ValueError:
            weight = 0.0
        ranked.append((-weight, i, tag))
    for _w, _i, tag in sorted(ranked):
        found = normalise(tag)
        if found:
            return found
    return getattr(request.state, "web_lang", None) or DEFAULT_LANGUAGE


def _record_denial(request: Request, exc: NotPermitted) -> None:
    ctx = getattr(request.app.state, "ctx", None)
    if ctx is None:
        return
    actor = getattr(request.state, "actor", None)
    denial = AccessDenial(at=ctx.clock.now(), actor_id=getattr(actor, "person_id", None),
                          case_id=exc.extra.get("case_id"),  # type: ignore[arg-type]
                          action=scrub(f"{request.method} {request.url.path}")[:200], reason=exc.detail[:500])
    try:  # its own transaction: the request's unit of work was rolled back, the refusal must still be kept
        ctx.engine.run(lambda uow: uow.session.add(denial))
    except (OperationalError, EngineError):  # the refusal itself must still be answered
        log.warning("could not record access denial", exc_info=True)


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that turn every error into `{"error", "detail"}` JSON."""

    @app.exception_handler(EngineError)
    async def _engine_error(request: Request, exc: EngineError) -> JSONResponse:
        if isinstance(exc, NotPermitted):
            _record_denial(request, exc)
        body = _body(type(exc).__name__, exc.detail, **exc.extra)
        ctx = getattr(request.app.state, "ctx", None)
        body["message"] = refusal_text(exc, request_language(request), ctx.registry if ctx else None)
        if exc.message_id:
            body["message_id"] = exc.message_id
        return JSONResponse(body, status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
        field = _loc(tuple(first.get("loc", ())))
        detail = "; ".join(f"{_loc(tuple(e.get('loc', ())))}: {e.get('msg')}" for e in errors[:10])
        return JSONResponse(_body("ValidationError", detail, field=field or None), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        names = {400: "BadRequest", 401: "Unauthenticated", 403: "NotPermitted", 404: "NotFound",
                 405: "MethodNotAllowed"}
        return JSONResponse(_body(names.get(exc.status_code, "HTTPError"), str(exc.detail)),
                            status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(DataError)
    @app.exception_handler(OverflowError)
    async def _out_of_range(request: Request, exc: Exception) -> JSONResponse:
        # the database refused a value (PG: integer out of range, NUL in text; SQLite: int beyond 64 bits)
        field = _out_of_range_field(request)
        return JSONResponse(_body("InvalidInput", f"{field}: a value is out of range or contains a NUL character",
                                  field=field), status_code=422)

    @app.exception_handler(OperationalError)
    async def _db_busy(request: Request, exc: OperationalError) -> JSONResponse:
        log.warning("database error", exc_info=exc)
        return JSONResponse(_body("DatabaseBusy", "the database is busy; retry shortly"), status_code=503,
                            headers={"Retry-After": "1"})
