"""Plumbing shared by the web pages: the signed-in user, CSRF on every router, errors shown as pages.

Web routes use `WebRoute`, which turns errors into HTML pages with the right status instead of the API's JSON:
not signed in -> 303 to the sign-in page; a bad CSRF token -> 403; too many bad tokens -> 429; any engine
error -> its status (403, 404, 409, 422) and its message.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any
from urllib.parse import quote

import anyio
from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from sqlmodel import Session
from starlette.responses import RedirectResponse, Response

from api.deps import SessionDep, actor_for
from api.refusals import refusal_text
from api.unit import SAFE_METHODS, UnitOfWorkRoute, get_work
from api.web.csrf import CsrfRejected, verify_csrf
from api.web.i18n import choose_language
from api.web.render import render
from api.web.sessions import SessionInfo
from engine.actors import Actor
from engine.calendar import HELSINKI
from engine.errors import EngineError, Unauthenticated
from engine.models import Person


class SignInRequired(Exception):
    """The page needs a signed-in person."""


class RateLimited(Exception):
    """Too many bad sign-in attempts from one address."""


@dataclass(frozen=True)
class WebUser:
    """The signed-in person of a request, their actor and their language."""

    person: Person
    actor: Actor
    lang: str
    session: SessionInfo

    @property
    def id(self) -> int:
        """Return the person's id."""
        return self.person.id or 0

    @property
    def coordinates(self) -> bool:
        """Tell whether the person may create and run agreements."""
        return "coordinator" in self.person.role_set or "admin" in self.person.role_set


def today_of(request: Request) -> date:
    """Return today's Helsinki date by the service's clock."""
    return request.app.state.ctx.clock.now().astimezone(HELSINKI).date()  # type: ignore[no-any-return]


def load_user(request: Request, session: Session) -> WebUser | None:
    """Return the signed-in person of a request, or None."""
    info: SessionInfo | None = getattr(request.state, "web_session", None)
    if info is None:
        return None
    person = session.get(Person, info.person_id)
    if person is None or not person.active:
        return None
    lang = choose_language(request, person.language)
    request.state.web_lang = lang
    user = WebUser(person=person, actor=actor_for(person), lang=lang, session=info)
    # the error page is drawn after the request's session was closed: a read session's close keeps what it
    # loaded, a write transaction's rollback expires it, so a write request's error page gets a detached copy
    request.state.web_user = user if request.method in SAFE_METHODS else WebUser(
        person=Person.model_validate(person.model_dump()), actor=user.actor, lang=lang, session=info)
    return user


def optional_user(request: Request, session: SessionDep) -> WebUser | None:
    """Dependency: the signed-in person or None."""
    return load_user(request, session)


def required_user(request: Request, session: SessionDep) -> WebUser:
    """Dependency: the signed-in person; otherwise the page sends them to sign in."""
    user = load_user(request, session)
    if user is None:
        raise SignInRequired()
    return user


OptionalUser = Annotated[WebUser | None, Depends(optional_user)]
User = Annotated[WebUser, Depends(required_user)]


async def read_page(request: Request, page: Callable[[Session, WebUser], Response]) -> Response:
    """Draw a GET page in one worker thread: the signed-in user, the page's reads, rendering, closing the session.

    A page route written as `def` with `User` and `SessionDep` costs three threadpool hops (the user, the page,
    closing the session), each under anyio's default 40 threads; with 50 clients those threads fought over the
    GIL and a page cost twice its own CPU. The hot pages (my tasks, the agreement page) are `async` routes that
    call this instead: one hop, on the reads' own limiter (`api.readcache.READ_THREADS`), whose waiting requests
    wait in the event loop. Not signed in raises `SignInRequired` as `User` does (the route sends them to sign in).
    """
    work = get_work(request)

    def run() -> Response:
        try:
            session = work.session
            return page(session, required_user(request, session))
        finally:
            work.close()  # in this thread: `UnitOfWorkRoute` then has nothing left to close in another hop

    return await anyio.to_thread.run_sync(run, limiter=request.app.state.agreement_reads.limiter)


# form fields that carry no words of the person's own (tokens, hashes, ids): not shown back on an error page
UNTYPED = frozenset({"csrf_token", "sha256", "version", "party", "party_case_id", "on_behalf_of", "review_id",
                     "confirm", "action", "next", "outcome"})


async def typed_values(request: Request) -> list[tuple[str, str]]:
    """Return what the person typed into the form of a failed POST (field, value), so an error page loses none."""
    if request.method != "POST":
        return []
    try:
        form = await request.form()  # parsed once already by the route: starlette hands back the same form
    except Exception:  # noqa: BLE001 - a body that is no form has nothing to show back
        return []
    return [(k, v) for k, v in form.multi_items() if isinstance(v, str) and v.strip() and k not in UNTYPED]


def error_page(request: Request, status: int, *, message: str | None = None, detail: str | None = None,
               typed: list[tuple[str, str]] | None = None) -> Response:
    """Render the error page for a status, in the request's language, with the navigation and what was typed."""
    lang = getattr(request.state, "web_lang", None) or choose_language(request)
    back = None
    parts = request.url.path.strip("/").split("/")
    if request.method == "POST" and len(parts) >= 3 and parts[1].isdigit():
        back = f"/{parts[0]}/{parts[1]}"  # the page the form was on, e.g. /agreements/5 for /agreements/5/sign
    return render(request, "error.html", lang, status=status, status_code=status,
                  message=message or f"error.{status if status in (403, 404, 409, 422, 429) else 'other'}",
                  detail=detail, user=getattr(request.state, "web_user", None), typed=typed or [], back=back)


class WebRoute(UnitOfWorkRoute):
    """A route whose request runs in one unit of work and whose errors become pages."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def run(request: Request) -> Response:
            try:
                return await handler(request)
            except (SignInRequired, Unauthenticated):
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                if request.method != "GET":
                    target = "/tasks"
                return RedirectResponse(f"/signin?next={quote(target, safe='')}", status_code=303)
            except CsrfRejected as exc:
                return error_page(request, 403, message="error.csrf", detail=str(exc))
            except RateLimited:
                return error_page(request, 429)
            except RequestValidationError:  # a path that is not an id, e.g. /agreements/abc
                return error_page(request, 404)
            except EngineError as exc:
                lang = getattr(request.state, "web_lang", None) or choose_language(request)
                return error_page(request, exc.status_code,
                                  detail=refusal_text(exc, lang, request.app.state.ctx.registry),
                                  typed=await typed_values(request))

        return run


def web_router() -> APIRouter:
    """Return a router of pages: HTML errors, CSRF checked on every state-changing request, no OpenAPI."""
    return APIRouter(route_class=WebRoute, dependencies=[Depends(verify_csrf)], include_in_schema=False)
