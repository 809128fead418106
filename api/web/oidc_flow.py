"""The request-level pieces of the OpenID Connect sign-in that the sign-in page and the button share."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from api.unit import get_work
from api.web.config import WebConfig
from api.web.i18n import choose_language
from api.web.oidc import ATTEMPT_LIFETIME, OidcProvider, ProviderProblem, start_sign_in
from api.web.render import render, secure

log = logging.getLogger("vuosikello.web.oidc")
STATE_COOKIE = "vk_oidc_state"
REFUSAL_STATUS = {"unknown": 403, "unverified": 403, "organisation": 403, "email": 403, "provider": 502}


def _config(request: Request) -> WebConfig:
    config: WebConfig = request.app.state.web_config
    return config


def refused_page(request: Request, reason: str, lang: str | None = None) -> Response:
    """The page that says, in the person's language, why the provider's sign-in did not sign them in."""
    response = render(request, "oidc_refused.html", lang or choose_language(request),
                      status=REFUSAL_STATUS.get(reason, 400), reason=reason)
    response.delete_cookie(STATE_COOKIE, path="/signin/oidc", httponly=True, samesite="lax",
                           secure=_config(request).cookie_secure)
    return secure(response)


def redirect_to_provider(request: Request, provider: OidcProvider, next_path: str,
                         login_hint: str | None = None) -> Response:
    """Record an attempt in the request's unit of work and send the browser to the provider."""
    ctx = request.app.state.ctx
    try:
        started = start_sign_in(get_work(request).session, provider, ctx.settings.base_url, next_path,
                                ctx.clock.now(), login_hint)
    except ProviderProblem as exc:
        log.warning("oidc provider %s cannot be used: %s (%s)", provider.id, exc.reason, exc)
        return refused_page(request, "provider")
    response = RedirectResponse(started.url, status_code=303)
    config = _config(request)
    response.set_cookie(STATE_COOKIE, started.state, max_age=int(ATTEMPT_LIFETIME.total_seconds()),
                        path="/signin/oidc", httponly=True, samesite="lax", secure=config.cookie_secure)
    return secure(response)
