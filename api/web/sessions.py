"""Server-side web sessions: start (rotating the id), look up with idle and absolute timeouts, end; the middleware.

The cookie carries 256 random bits; the table stores only their SHA-256, so a leaked table signs nobody in.
The middleware puts the signed-in person on `request.state.web_person_id` (read by `api.deps.current_actor`).
A cookie-authenticated call to the JSON API that changes something must also send the session's CSRF token in
`X-CSRF-Token`; API clients with a valid bearer token are not affected (an invalid one, or any other
`Authorization` scheme, does not lift the check: the cookie would still be what authenticates).
"""

from __future__ import annotations

import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import anyio
from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, col
from starlette.requests import cookie_parser
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from api.web.config import WebConfig
from api.web.models import WebSession
from engine.directory import hash_token, person_for_token
from engine.models import Person, table_of
from engine.statements import Statement

if TYPE_CHECKING:
    from api.context import AppContext

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class SessionInfo:
    """The live session of one request."""

    id: int
    person_id: int
    csrf_token: str
    method: str


def start_session(session: Session, config: WebConfig, person_id: int, method: str, now: datetime,
                  previous_cookie: str | None = None) -> str:
    """Start a session for a person, ending the one the browser had (the id always rotates); return the cookie."""
    cookie = secrets.token_urlsafe(32)
    if previous_cookie:
        session.execute(update(WebSession).where(col(WebSession.sid_hash) == hash_token(previous_cookie),
                                                 col(WebSession.ended_at).is_(None)).values(ended_at=now))
    session.add(WebSession(sid_hash=hash_token(cookie), person_id=person_id, method=method,
                           csrf_token=secrets.token_urlsafe(32), created_at=now, last_seen_at=now,
                           expires_at=now + config.absolute_timeout))
    session.flush()
    return cookie


def end_session(session: Session, cookie: str, now: datetime) -> None:
    """End the session a cookie names (signing out)."""
    session.execute(update(WebSession).where(col(WebSession.sid_hash) == hash_token(cookie),
                                             col(WebSession.ended_at).is_(None)).values(ended_at=now))


_SESSIONS = table_of(WebSession)
_PEOPLE = table_of(Person)
_LOOKUP_COLUMNS = [_SESSIONS.c[n] for n in ("id", "person_id", "csrf_token", "method", "expires_at", "last_seen_at")]
_LOOKUP = (select(*_LOOKUP_COLUMNS).select_from(_SESSIONS.join(_PEOPLE, _PEOPLE.c.id == _SESSIONS.c.person_id))
           .where(_SESSIONS.c.sid_hash == bindparam("sid_hash", type_=_SESSIONS.c.sid_hash.type),
                  _SESSIONS.c.ended_at.is_(None), _PEOPLE.c.active.is_(True)))
_COMPILED: dict[int, Statement] = {}  # per dialect: every page request looks its session up


def _lookup(ctx: AppContext, sid_hash: str) -> list[Any] | None:
    """Return the live session row of a cookie's hash: one statement compiled once, on a pooled DBAPI connection.

    It ran through an ORM Session before (a Session, a WebSession object, the ORM's statement cache): about a
    tenth of a "my tasks" page's CPU, on every page."""
    dialect = ctx.db.engine.dialect
    stmt = _COMPILED.get(id(dialect))
    if stmt is None:
        stmt = _COMPILED[id(dialect)] = Statement(_LOOKUP, dialect, _LOOKUP_COLUMNS)
    params = stmt.params({"sid_hash": sid_hash})
    connection = ctx.db.engine.raw_connection()
    try:
        cursor = connection.cursor()
        try:
            cursor.execute(stmt.sql, params)
            row = cursor.fetchone()
        except dialect.loaded_dbapi.Error as exc:
            raise DBAPIError.instance(stmt.sql, params, exc, dialect.loaded_dbapi.Error) from exc
        finally:
            cursor.close()
    finally:
        connection.close()
    return stmt.row(row) if row is not None else None


def load_session(ctx: AppContext, config: WebConfig, cookie: str) -> SessionInfo | None:
    """Return the live session a cookie names, or None when unknown, ended, idle too long or past its end."""
    now = ctx.clock.now()
    row = _lookup(ctx, hash_token(cookie))
    if row is None:
        return None
    session_id, person_id, csrf_token, method, expires_at, last_seen_at = row
    if expires_at <= now or last_seen_at + config.idle_timeout <= now:
        return None
    if now - last_seen_at >= config.touch_interval:  # a write per minute, not per request
        # The one write outside the request's unit of work (ARCHITECTURE.md): it runs before the route, in the
        # middleware, and must stick even when the request itself then fails.
        touch = update(WebSession).where(col(WebSession.id) == session_id).values(last_seen_at=now)
        ctx.engine.run(lambda uow: uow.session.execute(touch))
    return SessionInfo(id=session_id, person_id=person_id, csrf_token=csrf_token, method=method)


def set_session_cookie(response: Response, config: WebConfig, cookie: str) -> None:
    """Attach the session cookie: HttpOnly, SameSite=Lax, Secure when configured, host-only."""
    response.set_cookie(config.session_cookie, cookie, max_age=int(config.absolute_timeout.total_seconds()),
                        path="/", secure=config.cookie_secure, httponly=True, samesite="lax")


def clear_session_cookie(response: Response, config: WebConfig) -> None:
    """Tell the browser to forget the session cookie."""
    response.delete_cookie(config.session_cookie, path="/", secure=config.cookie_secure, httponly=True,
                           samesite="lax")


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


class WebSessionMiddleware:
    """Resolve the session cookie of every request into `request.state` (pure ASGI, no response buffering)."""

    def __init__(self, app: ASGIApp, *, ctx: AppContext, config: WebConfig) -> None:
        self.app = app
        self.ctx = ctx
        self.config = config

    def _valid_bearer(self, authorization: str | None) -> bool:
        """Tell whether a header carries a valid API token (then the token, not the cookie, authenticates)."""
        if not authorization or not authorization.lower().startswith("bearer "):
            return False
        with Session(self.ctx.db.engine) as session:
            return person_for_token(session, authorization[7:].strip()) is not None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/static/"):
            await self.app(scope, receive, send)
            return
        state: dict[str, Any] = scope.setdefault("state", {})
        cookie = cookie_parser(_header(scope, b"cookie") or "").get(self.config.session_cookie)
        info = await anyio.to_thread.run_sync(load_session, self.ctx, self.config, cookie) if cookie else None
        state["web_session"] = info
        state["web_cookie"] = cookie if info else None
        if info is not None:
            if (scope["path"].startswith("/api/") and scope["method"] not in SAFE_METHODS
                    and not hmac.compare_digest(_header(scope, b"x-csrf-token") or "", info.csrf_token)
                    and not await anyio.to_thread.run_sync(self._valid_bearer, _header(scope, b"authorization"))):
                await _refuse(send)
                return
            state["web_person_id"] = info.person_id
        await self.app(scope, receive, send)


async def _refuse(send: Send) -> None:
    body = json.dumps({"error": "NotPermitted", "detail": "X-CSRF-Token: a request authenticated by the web "
                       "session cookie must carry the session's CSRF token"}).encode()
    await send({"type": "http.response.start", "status": 403,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
