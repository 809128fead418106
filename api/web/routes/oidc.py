"""Signing in with an organisation's OpenID Connect provider: the button's POST, the provider's callback.

The start is a POST (CSRF-checked like every form): it records the attempt and sends the browser to the provider
with the state also in a short-lived cookie. The callback is a GET (the provider redirects the browser there);
a GET's unit of work only reads, so the callback writes in an `Engine.run` of its own: the attempt is used up
and the session started in one transaction, and an attempt refused after it was used up stays used up.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Annotated

from fastapi import Form, Request
from starlette.responses import RedirectResponse, Response

from api.deps import SessionDep
from api.web.config import WebConfig
from api.web.csrf import forget_csrf_cookie
from api.web.oidc import OidcProvider, OidcRefused, finish_sign_in
from api.web.oidc_flow import STATE_COOKIE, redirect_to_provider, refused_page
from api.web.render import secure
from api.web.routes.signin import safe_next
from api.web.routing import web_router
from api.web.sessions import set_session_cookie, start_session
from engine.service import UnitOfWork

router = web_router()
log = logging.getLogger("vuosikello.web.oidc")


def _config(request: Request) -> WebConfig:
    config: WebConfig = request.app.state.web_config
    return config


@router.post("/signin/oidc/{provider_id}")
def oidc_start(request: Request, session: SessionDep, provider_id: int,
               next: Annotated[str, Form()] = "") -> Response:
    """The "Sign in with <provider>" button: off to the provider."""
    provider = session.get(OidcProvider, provider_id)
    if provider is None or not provider.active:
        return refused_page(request, "provider")
    return redirect_to_provider(request, provider, safe_next(next))


@dataclass
class _Outcome:
    cookie: str | None = None
    target: str = "/tasks"
    lang: str | None = None
    reason: str | None = None


@router.get("/signin/oidc/callback")
def oidc_callback(request: Request, state: str = "", code: str = "", error: str = "") -> Response:
    """The provider sends the browser back here with a code; check everything, then start the session."""
    ctx, config = request.app.state.ctx, _config(request)
    if error:  # the person cancelled, or the provider refused: nothing to use up
        log.info("oidc sign-in refused by the provider: %s", error[:100])
        return refused_page(request, "denied")

    def work(uow: UnitOfWork) -> _Outcome:
        try:
            found = finish_sign_in(uow.session, state=state[:200], cookie_state=request.cookies.get(STATE_COOKIE),
                                   code=code[:2000], base_url=ctx.settings.base_url,
                                   service_key=ctx.settings.secret_key, now=uow.now)
        except OidcRefused as exc:  # returned, not raised: what was used up stays used up
            log.info("oidc sign-in refused: %s (%s)", exc.reason, exc)
            return _Outcome(reason=exc.reason, lang=None)
        cookie = start_session(uow.session, config, found.person.id or 0, "oidc", uow.now,
                               request.cookies.get(config.session_cookie))
        return _Outcome(cookie=cookie, target=safe_next(found.next), lang=found.person.language)

    outcome = ctx.engine.run(work)
    if outcome.cookie is None:
        return refused_page(request, outcome.reason or "state")
    response = RedirectResponse(outcome.target, status_code=303)
    set_session_cookie(response, config, outcome.cookie)
    forget_csrf_cookie(request, response)  # the new session's token replaces the pre-sign-in one
    response.delete_cookie(STATE_COOKIE, path="/signin/oidc", httponly=True, samesite="lax",
                           secure=config.cookie_secure)
    return secure(response)
