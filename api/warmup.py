"""At start-up, before the first request: read the hot pages once, so the first request costs what later ones do.

Templates are compiled when the app is built (`api.web.render.warm_templates`), but the first request after a
start still paid for the rest: anyio importing its worker-thread backend, the connection pool's first
connections, and SQLAlchemy compiling each statement the read and the pages build (an ORM statement is compiled
on its first execution, then found in the engine's cache). The bench measured the first API read at 15-60 ms
against 1-2 ms later, the first "my tasks" at 27-90 ms against 5-6 ms.

`warm_up` looks up a session cookie nobody has (compiling the session middleware's statement, and the engine's
write statements its once-a-minute touch uses), then sends a few GET requests through the app's router (not its
middleware: no cookie, no session row, no `last_seen_at` touch) as people who exist in the database: an
agreement's coordinator and a party's signatory, for the agreement read, the agreement page and "my tasks". GET
runs on a read session that refuses to write, so nothing is written; what they answer is thrown away. Then the
shared part of the open agreements' pages (`api.web.views.warm_shared`, in each language people chose) and their
API bodies are built and kept, so the first view of each costs what later ones do, and the coming year's dates
are formatted once in each language. An empty database warms nothing; a failure is logged and never stops the
start.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import MutableMapping
from contextlib import AsyncExitStack
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import anyio
from sqlalchemy import select
from sqlmodel import Session, col

from api.readcache import READ_THREADS
from api.unit import ReadSession
from api.web.i18n import DEFAULT_LANGUAGE, LANGUAGES
from api.web.sessions import SessionInfo, load_session
from api.web.states import state_sets
from api.web.views import warm_shared
from engine.calendar import HELSINKI, format_date
from engine.models import Case, Person
from engine.permissions import ReadAccess
from workflows.agreement.cases import AGREEMENT
from workflows.agreement.models import PartySignatory

if TYPE_CHECKING:
    from fastapi import FastAPI

log = logging.getLogger("vuosikello.api")
OPEN_PAGES = 100  # at ~3-5 ms each, at most half a second of start-up; the cache holds 2048 entries


def _people(app: FastAPI) -> list[tuple[str, int]]:
    """Return (path, person id) pairs to read: the newest agreement as its coordinator and as a signatory."""
    ctx = app.state.ctx
    # what the session middleware runs before every page (the warm-up's requests skip it): its lookup statement
    # compiled (a cookie nobody has finds nothing), and the engine's write statements for its once-a-minute touch
    load_session(ctx, app.state.web_config, "warm-up: no such cookie")
    ctx.db.statements  # noqa: B018 - compiled on first use, here instead of in a first request
    with Session(ctx.db.engine) as session:
        agreement = session.execute(select(col(Case.id), col(Case.coordinator_id))
                                    .where(col(Case.workflow) == AGREEMENT, col(Case.parent_id).is_(None))
                                    .order_by(col(Case.id).desc()).limit(1)).first()
        if agreement is None:
            return []
    # the connections the first concurrent reads will take, each with the read's statements prepared
    app.state.agreement_reads.prepare(ctx.db.engine, agreement.id, READ_THREADS + 2)
    with Session(ctx.db.engine) as session:
        signatory = session.execute(select(col(PartySignatory.person_id))
                                    .join(Case, col(Case.id) == col(PartySignatory.party_case_id))
                                    .where(col(Case.parent_id) == agreement.id).limit(1)).scalar()
    out = []
    for person_id in (agreement.coordinator_id, signatory):
        if person_id is not None:
            out += [(f"/api/v1/agreements/{agreement.id}", person_id), (f"/agreements/{agreement.id}", person_id),
                    ("/tasks", person_id)]
    return out


async def _get(app: FastAPI, path: str, person_id: int) -> int:
    info = SessionInfo(id=0, person_id=person_id, csrf_token=secrets.token_urlsafe(16), method="warm-up")
    scope: dict[str, Any] = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "", "app": app,
        "headers": [(b"host", b"localhost"), (b"accept-language", b"fi")], "client": ("127.0.0.1", 0),
        "server": ("localhost", 80),
        "state": {"web_session": info, "web_cookie": None, "web_person_id": person_id}}
    status = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])

    async with AsyncExitStack() as stack:  # what FastAPI's own middleware puts there for dependencies
        scope["fastapi_middleware_astack"] = stack
        await app.router(scope, receive, send)
    return status


async def warm_up(app: FastAPI) -> int:
    """Read the hot paths once as people in the database; return how many answered 200."""
    started = time.perf_counter()
    try:
        paths = await anyio.to_thread.run_sync(_people, app)  # also imports anyio's thread backend
    except Exception:  # noqa: BLE001 - a warm-up must never stop the service from starting
        log.warning("start-up warm-up failed; the first requests will be slower", exc_info=True)
        return 0
    answered = []
    for path, person in paths:  # the router's errors are not turned into answers here: each is caught alone
        try:
            answered.append(await _get(app, path, person))
        except Exception:  # noqa: BLE001 - e.g. a person who may no longer sign in; the others still warm
            log.warning("start-up warm-up: GET %s failed", path, exc_info=True)
    try:
        pages = await anyio.to_thread.run_sync(_open_agreement_pages, app)
        await anyio.to_thread.run_sync(_dates, app)
    except Exception:  # noqa: BLE001 - as above: the pages are then built on their first view
        log.warning("start-up warm-up: the open agreements' pages failed", exc_info=True)
        pages = 0
    log.debug("warmed %d of %d reads and %d agreement pages in %.0f ms", answered.count(200), len(answered), pages,
              (time.perf_counter() - started) * 1000)
    return answered.count(200)


def _dates(app: FastAPI) -> None:
    """Format the dates the pages show most, a month back and a year ahead (deadlines), in every language: Babel
    formats a date in ~20 us the first time and ~1 us from the cache, and "my tasks" shows one per case."""
    today = app.state.ctx.clock.now().astimezone(HELSINKI).date()
    for lang in LANGUAGES:
        for days in range(-31, 400):
            format_date(today + timedelta(days=days), lang)


def _open_agreement_pages(app: FastAPI) -> int:
    """Keep what the agreements the parties are being asked about now (awaiting parties, the most recently changed
    first, at most OPEN_PAGES) show every reader: the API's body, for a party and for the coordinator, and the
    shared part of the page as a party reads it, in each language people here have chosen (Finnish first). The
    first read of each after a start then costs what later ones do (the bench's first API read was 4 ms against
    1 ms later: the warm-up had read only the newest agreement). An organisation's own view is built on its first
    view. Return how many pages were kept."""
    ctx = app.state.ctx
    today = ctx.clock.now().astimezone(HELSINKI).date()
    awaiting = list(state_sets(ctx.registry).agreement_awaiting)
    reads = app.state.agreement_reads
    kept = 0
    with ReadSession(ctx.db.engine) as session:
        ids = session.execute(select(col(Case.id)).where(col(Case.workflow) == AGREEMENT,
                                                         col(Case.parent_id).is_(None), col(Case.state).in_(awaiting))
                              .order_by(col(Case.updated_at).desc()).limit(OPEN_PAGES)).scalars().all()
        chosen = set(session.execute(select(col(Person.language)).distinct()).scalars())
        languages = [DEFAULT_LANGUAGE] + [lang for lang in LANGUAGES if lang in chosen and lang != DEFAULT_LANGUAGE]
        for agreement_id in ids:
            reads.keep(session, agreement_id, (ReadAccess.SHARED, ReadAccess.FULL))
            for lang in languages:
                kept += warm_shared(session, ctx.registry, reads, agreement_id, lang, today)
    return kept
