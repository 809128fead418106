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
from sqlalchemy import select, update
from sqlmodel import Session, col
from starlette.requests import cookie_parser
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from api.web.config import WebConfig
from api.web.models import WebSession
from engine.directory import hash_token, person_for_token
from engine.models import Person

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


def load_session(ctx: AppContext, config: WebConfig, cookie: str) -> SessionInfo | None:
    """Return the live session a cookie names, or None when unknown, ended, idle too long or past its end."""
    now = ctx.clock.now()
    with Session(ctx.db.engine) as session:
        row = session.execute(
            select(WebSession).join(Person, col(Person.id) == col(WebSession.person_id))
            .where(col(WebSession.sid_hash) == hash_token(cookie), col(WebSession.ended_at).is_(None),
                   col(Person.active).is_(True))
        ).scalars().first()
    if row is None or row.id is None:
        return None
    if row.expires_at <= now or row.last_seen_at + config.idle_timeout <= now:
        return None
    if now - row.last_seen_at >= config.touch_interval:  # a write per minute, not per request
        # The one write outside the request's unit of work (ARCHITECTURE.md): it runs before the route, in the
        # middleware, and must stick even when the request itself then fails.
        touch = update(WebSession).where(col(WebSession.id) == row.id).values(last_seen_at=now)
        ctx.engine.run(lambda uow: uow.session.execute(touch))
    return SessionInfo(id=row.id, person_id=row.person_id, csrf_token=row.csrf_token, method=row.method)


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
