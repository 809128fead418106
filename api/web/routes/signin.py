"""Signing in and out: the emailed link (GET shows, POST uses it up), passwords, fresh links, the language.

GET and HEAD on a link never change anything but the bad-attempt counter: mail scanners follow links, so only
the button's POST uses the link up and starts a session.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Form, Request
from sqlmodel import Session
from starlette.responses import RedirectResponse, Response

from api.deps import SessionDep, WorkDep
from api.unit import get_work
from api.web.auth import check_password, client_address, is_throttled, person_by_email, record_failure
from api.web.config import WebConfig
from api.web.csrf import forget_csrf_cookie
from api.web.i18n import LANGUAGE_COOKIE, LANGUAGES, choose_language
from api.web.mail import send_sign_in_link
from api.web.oidc import active_providers, provider_for_email
from api.web.oidc_flow import redirect_to_provider
from api.web.render import render, secure
from api.web.routing import OptionalUser, RateLimited, web_router
from api.web.sessions import clear_session_cookie, end_session, set_session_cookie, start_session
from engine.links import LinkStatus, check_link, consume_link
from engine.models import Case, Person

router = web_router()


def client_ip(request: Request) -> str:
    """Return the client's address: the peer's, or X-Forwarded-For's when the peer is a trusted proxy."""
    peer = request.client.host if request.client else "unknown"
    return client_address(peer, request.headers.get("x-forwarded-for"),
                          request.app.state.ctx.settings.trusted_proxies)


def safe_next(target: str | None, default: str = "/tasks") -> str:
    """Return a local path to go to after signing in; anything else (another site) becomes the default."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")) or len(target) > 500:
        return default
    return target


def _config(request: Request) -> WebConfig:
    config: WebConfig = request.app.state.web_config
    return config


def _session(request: Request) -> Session:
    """Return the request's session (its unit of work's, on a POST)."""
    return get_work(request).session


def _now(request: Request) -> datetime:
    return request.app.state.ctx.clock.now()  # type: ignore[no-any-return]


def _failed(request: Request, kind: str, account: str | None = None) -> None:
    config, ip = _config(request), client_ip(request)
    work = get_work(request)
    if work.writes:
        record_failure(work.session, config, ip, kind, _now(request), account)
    else:  # a GET of a bad link: the count is kept in a transaction of its own (a GET's unit only reads)
        request.app.state.ctx.engine.run(lambda uow: record_failure(uow.session, config, ip, kind, uow.now))


def _throttle(request: Request, account: str | None = None) -> None:
    if is_throttled(_session(request), _config(request), client_ip(request), _now(request), account):
        raise RateLimited()


def _signed_in(request: Request, person_id: int, method: str, target: str) -> Response:
    config = _config(request)
    cookie = start_session(_session(request), config, person_id, method, _now(request),
                           request.cookies.get(config.session_cookie))
    response = RedirectResponse(target, status_code=303)
    set_session_cookie(response, config, cookie)
    forget_csrf_cookie(request, response)  # the new session's token replaces the pre-sign-in one
    return secure(response)


def _case_target(case_id: int | None) -> str:
    return f"/cases/{case_id}" if case_id else "/tasks"


@router.get("/")
def home(user: OptionalUser) -> Response:
    """Send people to their tasks, or to sign in."""
    return RedirectResponse("/tasks" if user else "/signin", status_code=303)


@router.get("/signin")
def signin_page(request: Request, user: OptionalUser, next: str | None = None) -> Response:
    """Show the sign-in page: password for coordinators and administrators, or a link by email."""
    lang = user.lang if user else choose_language(request)
    return render(request, "signin.html", lang, user=user, next=safe_next(next), errors={}, email="", notice=None,
                  providers=active_providers(_session(request)))


@router.post("/signin/password")
def signin_password(request: Request, email: Annotated[str, Form()] = "", password: Annotated[str, Form()] = "",
                    next: Annotated[str, Form()] = "") -> Response:
    """Sign a coordinator or administrator in with email and password."""
    _throttle(request, email[:320] or None)
    person = check_password(_session(request), email, password) if email and password else None
    if person is None:
        _failed(request, "password", email[:320] or None)
        lang = choose_language(request)
        return render(request, "signin.html", lang, status=401, next=safe_next(next), email=email, notice=None,
                      errors={"password": "signin.error.password"})
    return _signed_in(request, person.id or 0, "password", safe_next(next))


@router.post("/signin/email")
def signin_email(work: WorkDep, request: Request, email: Annotated[str, Form()] = "",
                 next: Annotated[str, Form()] = "") -> Response:
    """Send the address to its organisation's identity provider, or email it a short-lived sign-in link.

    The answer never tells whether the address is registered (a provider chosen by the person's organisation
    does: the brief asks for it, see README "Sign in with your organisation's identity provider").
    """
    _throttle(request, email[:320] or None)
    lang = choose_language(request)
    if "@" not in email or len(email) > 320:
        return render(request, "signin.html", lang, status=422, next="/tasks", email=email, notice=None,
                      errors={"email": "signin.error.email"}, providers=active_providers(_session(request)))
    provider = provider_for_email(_session(request), email)
    if provider is not None:
        return redirect_to_provider(request, provider, safe_next(next), login_hint=email.strip())
    _failed(request, "email", email)  # every request counts, per address and per account: no mail bombing

    def _do(uow) -> None:  # type: ignore[no-untyped-def]
        person = person_by_email(uow.session, email)
        if person is not None:
            send_sign_in_link(uow, person, None, key=f"sign-in-link:{person.id}:{uow.now:%Y%m%dT%H%M}")
    work.run(_do)
    return render(request, "signin.html", lang, next="/tasks", email="", errors={}, notice="signin.email_sent")


def _link_page(session: Session, request: Request, token: str) -> Response:
    ctx = request.app.state.ctx
    _throttle(request)
    found = check_link(session, token, ctx.clock.now())
    person = session.get(Person, found.link.person_id) if found.link else None
    case = session.get(Case, found.link.case_id) if found.link and found.link.case_id else None
    if found.status is LinkStatus.UNKNOWN or person is None or not person.active:
        _failed(request, "link")
        return render(request, "link.html", choose_language(request), status=404, status_name="unknown",
                      person=None, case=None, token=token)
    status = 200 if found.status is LinkStatus.VALID else 410
    return render(request, "link.html", choose_language(request, person.language), status=status,
                  status_name=found.status.value, person=person, case=case, token=token)


@router.api_route("/link/{token}", methods=["GET", "HEAD"])
def link_page(session: SessionDep, request: Request, token: str) -> Response:
    """Show what the link is for and a button to sign in; changes nothing."""
    return _link_page(session, request, token)


@router.post("/link/{token}")
def link_use(session: SessionDep, request: Request, token: str) -> Response:
    """Use the link up and start a session for its recipient, then open its case."""
    ctx = request.app.state.ctx
    _throttle(request)
    found = consume_link(session, token, ctx.clock.now())
    person = session.get(Person, found.link.person_id) if found.link else None
    session.flush()
    if found.status is LinkStatus.VALID and found.link is not None and person is not None and person.active:
        return _signed_in(request, person.id or 0, "link", _case_target(found.link.case_id))
    return _link_page(session, request, token)


@router.post("/link/{token}/renew")
def link_renew(session: SessionDep, work: WorkDep, request: Request, token: str) -> Response:
    """Email a fresh link for the same person and case to the person's own address."""
    ctx = request.app.state.ctx
    _throttle(request)
    found = check_link(session, token, ctx.clock.now())
    if found.link is None:
        return _link_page(session, request, token)
    link = found.link

    def _do(uow) -> Person | None:  # type: ignore[no-untyped-def]
        person = uow.session.get(Person, link.person_id)
        if person is not None and person.active:  # one fresh link per old link per hour
            send_sign_in_link(uow, person, link.case_id, key=f"sign-in-link:renew:{link.id}:{uow.now:%Y%m%dT%H}")
        return person  # type: ignore[no-any-return]
    person = work.run(_do)
    lang = choose_language(request, person.language if person else None)
    return render(request, "link.html", lang, status_name="sent", person=person, case=None, token=token)


@router.post("/signout")
def signout(request: Request) -> Response:
    """End the session and forget its cookie."""
    config = _config(request)
    cookie = request.cookies.get(config.session_cookie)
    if cookie:
        end_session(_session(request), cookie, _now(request))
    response = RedirectResponse("/signin", status_code=303)
    clear_session_cookie(response, config)
    return secure(response)


@router.post("/language")
def set_language(session: SessionDep, request: Request, user: OptionalUser, lang: Annotated[str, Form()] = "",
                 next: Annotated[str, Form()] = "") -> Response:
    """Switch the interface language; remembered on the person and on this browser."""
    response = RedirectResponse(safe_next(next, "/"), status_code=303)
    if lang not in LANGUAGES:
        return secure(response)
    if user is not None:
        person = session.get(Person, user.id)
        if person is not None:
            person.language = lang
            session.add(person)
            session.flush()
    response.set_cookie(LANGUAGE_COOKIE, lang, max_age=365 * 24 * 3600, path="/", httponly=True, samesite="lax",
                        secure=_config(request).cookie_secure)
    return secure(response)
