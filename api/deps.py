"""FastAPI dependencies: the shared context, the request's unit of work and session, and the authenticated actor."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.context import AppContext
from api.unit import SessionDep, WorkDep, get_session, get_work
from engine.actors import Actor
from engine.directory import person_for_token
from engine.errors import NotPermitted, Unauthenticated
from engine.models import Person


def get_ctx(request: Request) -> AppContext:
    """Return the service's shared context."""
    ctx: AppContext = request.app.state.ctx
    return ctx


CtxDep = Annotated[AppContext, Depends(get_ctx)]




def actor_for(person: Person) -> Actor:
    """Build the engine's actor from a person."""
    return Actor(person_id=person.id, name=person.name, roles=person.role_set,
                 organisation_id=person.organisation_id)


# Declared as the OpenAPI security scheme ("Authorize" in /docs); a missing or non-bearer header is not an error
# here (a web session may authenticate instead), current_actor answers 401 when neither does.
BEARER = HTTPBearer(auto_error=False, scheme_name="bearer",
                    description="An API token: `Authorization: Bearer <token>` (vuosikello people token ...)")


def current_actor(request: Request, session: SessionDep,
                  credentials: Annotated[HTTPAuthorizationCredentials | str | None, Depends(BEARER)] = None) -> Actor:
    """Authenticate the caller from `Authorization: Bearer <token>` (or a web session).

    As a dependency the bearer scheme hands over the parsed credentials; a page that authenticates by hand may
    pass the raw `Authorization` header instead.
    """
    person: Person | None = None
    if isinstance(credentials, str):
        scheme, _, token = credentials.partition(" ")
        credentials = (HTTPAuthorizationCredentials(scheme=scheme, credentials=token)
                       if scheme.lower() == "bearer" else None)
    if credentials is not None and credentials.credentials:
        person = person_for_token(session, credentials.credentials.strip())
    elif getattr(request.state, "web_person_id", None):
        person = session.get(Person, request.state.web_person_id)
    if person is None or not person.active:
        raise Unauthenticated("a valid `Authorization: Bearer <token>` header is required")
    actor = actor_for(person)
    request.state.actor = actor
    return actor


ActorDep = Annotated[Actor, Depends(current_actor)]


def require_admin(actor: ActorDep) -> Actor:
    """Let only administrators through."""
    if not actor.is_admin:
        raise NotPermitted("this needs the admin role")
    return actor


AdminDep = Annotated[Actor, Depends(require_admin)]


def if_match(if_match: Annotated[str | None, Header(description="Expected case version")] = None) -> int | None:
    """Read an optional expected version from If-Match (a number, quotes allowed)."""
    if if_match is None:
        return None
    text = if_match.strip().removeprefix("W/").strip('"')
    if not text.isdigit():
        from engine.errors import InvalidInput

        raise InvalidInput("If-Match", "must be the case version, a whole number")
    return int(text)


ExpectedVersion = Annotated[int | None, Depends(if_match)]


__all__ = ["ActorDep", "AdminDep", "CtxDep", "ExpectedVersion", "SessionDep", "WorkDep", "get_session", "get_work"]
