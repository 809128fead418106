"""CSRF protection of every web form: the session's token, or before sign-in a signed double-submit cookie.

Signed in, a form carries the session's own random token (stored server-side), made new at each sign-in; the
pre-sign-in token is no longer accepted once a session exists (a token an attacker learnt or planted before the
person signed in is worth nothing after). Before sign-in (the link page, the
password form) the browser gets a random cookie and the form carries HMAC(secret, cookie): another site can make
a browser post, but can neither read nor set that cookie, so it cannot produce the matching field.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from starlette.requests import Request
from starlette.responses import Response

from api.web.config import WebConfig
from api.web.sessions import SAFE_METHODS, SessionInfo

FIELD = "csrf_token"


class CsrfRejected(Exception):
    """A state-changing request without the right CSRF token."""


def _config(request: Request) -> WebConfig:
    config: WebConfig = request.app.state.web_config
    return config


def _sign(request: Request, value: str) -> str:
    key = request.app.state.ctx.settings.secret_key.encode("utf-8")
    return hmac.new(key, b"csrf:" + value.encode("utf-8"), hashlib.sha256).hexdigest()


def csrf_token(request: Request) -> str:
    """Return the token forms on this page must carry (creating the pre-session cookie when needed)."""
    info: SessionInfo | None = getattr(request.state, "web_session", None)
    if info is not None:
        return info.csrf_token
    pre = request.cookies.get(_config(request).csrf_cookie) or getattr(request.state, "new_csrf_cookie", None)
    if not pre:
        pre = secrets.token_urlsafe(32)
        request.state.new_csrf_cookie = pre
    return _sign(request, pre)


def forget_csrf_cookie(request: Request, response: Response) -> None:
    """Drop the pre-session cookie at sign-in: from then on forms carry the new session's token only."""
    config = _config(request)
    if request.cookies.get(config.csrf_cookie):
        response.delete_cookie(config.csrf_cookie, path="/", secure=config.cookie_secure, httponly=True,
                               samesite="lax")


def attach_csrf_cookie(request: Request, response: Response) -> None:
    """Send the pre-session cookie if this request created one."""
    pre = getattr(request.state, "new_csrf_cookie", None)
    if pre:
        config = _config(request)
        response.set_cookie(config.csrf_cookie, pre, path="/", secure=config.cookie_secure, httponly=True,
                            samesite="lax")


def _expected(request: Request) -> list[str]:
    info: SessionInfo | None = getattr(request.state, "web_session", None)
    if info is not None:  # signed in: only the session's own token, made at sign-in; the pre-sign-in one is over
        return [info.csrf_token]
    tokens = []
    pre = request.cookies.get(_config(request).csrf_cookie)
    if pre:
        tokens.append(_sign(request, pre))
    return tokens


async def verify_csrf(request: Request) -> None:
    """Refuse a state-changing request whose form lacks a matching token (a dependency of every web route)."""
    if request.method in SAFE_METHODS:
        return
    try:
        form = await request.form()
    except Exception as exc:  # noqa: BLE001 - a body that is not a form cannot carry the token
        raise CsrfRejected("the request is not a form") from exc
    sent = form.get(FIELD)
    if not isinstance(sent, str) or not sent:
        raise CsrfRejected("the form has no CSRF token")
    if not any(hmac.compare_digest(sent, token) for token in _expected(request)):
        raise CsrfRejected("the form's CSRF token does not match this browser")
