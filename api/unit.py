"""The request's one unit of work: every read and write of a request runs in it, committed once at the end.

A route asks for `WorkDep` (or `SessionDep`, which is the same transaction's ORM session) and calls services
with `work.uow`. Nothing under api/ opens a write session or commits: `UnitOfWorkRoute` opens the unit lazily,
commits it after the handler returned (before the response is sent, so a failed commit is answered as an
error, never as a success), rolls it back on any error, and only then lets side effects leave.

Safe requests (GET, HEAD, OPTIONS) read on a plain read session and may not write (SQLite would otherwise take
its one write lock for every page view). A write request runs entirely in one write transaction: the checks it
makes, its writes and the response it reads see the same data. Each `work.run` call runs under a savepoint:
when it raises, what it wrote is undone at once, so a handler that catches the error and answers with a form
page neither shows nor commits half of a transition. Any error that leaves the handler rolls everything back.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from fastapi.routing import APIRoute
from sqlalchemy import event
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from engine.service import Engine, UnitOfWork

T = TypeVar("T")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _refuse_write(session: Session, *_args: object) -> None:
    """Stop a write on a safe request's read session loudly (it would otherwise be dropped silently)."""
    if session.new or session.dirty or session.deleted:
        raise RuntimeError("a GET, HEAD or OPTIONS request may not write; use a POST")


class ReadSession(Session):
    """A safe request's session: a flush with anything to write raises (the listener is on the class, once)."""


event.listen(ReadSession, "before_flush", _refuse_write)


class RequestWork:
    """One request's unit of work, opened on first use."""

    def __init__(self, engine: Engine, *, writes: bool) -> None:
        self.engine = engine
        self.writes = writes
        self._uow: UnitOfWork | None = None
        self._read: Session | None = None

    @property
    def uow(self) -> UnitOfWork:
        """Return the request's write transaction, opening it on first use."""
        if not self.writes:
            raise RuntimeError("a GET, HEAD or OPTIONS request may not write")
        if self._uow is None:
            self._uow = self.engine.begin()
        return self._uow

    @property
    def session(self) -> Session:
        """Return the session the request reads on: the write transaction's for a write request."""
        if self.writes:
            return self.uow.session
        if self._read is None:
            self._read = ReadSession(self.engine.db.engine, expire_on_commit=False)
        return self._read

    def run(self, work: Callable[[UnitOfWork], T]) -> T:
        """Run a service call in the request's transaction; when it raises, what it wrote is undone."""
        return self.uow.attempt(work)

    def finish(self) -> None:
        """Commit what the request wrote (its side effects run after), and close what it read on."""
        try:
            if self._uow is not None:
                uow, self._uow = self._uow, None
                uow.commit()
        finally:
            self.close()

    def abort(self) -> None:
        """Roll back what the request wrote."""
        try:
            if self._uow is not None:
                uow, self._uow = self._uow, None
                uow.rollback()
        finally:
            self.close()

    @property
    def idle(self) -> bool:
        """Tell whether nothing is open (no transaction, no read session): finishing has nothing to do."""
        return self._uow is None and self._read is None

    def close(self) -> None:
        """Close the read session."""
        if self._read is not None:
            read, self._read = self._read, None
            read.close()


class UnitOfWorkRoute(APIRoute):
    """A route whose request runs in one `RequestWork`, committed after the handler and before the response."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def run(request: Request) -> Response:
            work = RequestWork(request.app.state.ctx.engine, writes=request.method not in SAFE_METHODS)
            request.state.work = work
            try:
                response = await handler(request)
            except BaseException:
                await run_in_threadpool(work.abort)
                raise
            if not work.idle:  # a read that closed its session in its own thread needs no second hop
                await run_in_threadpool(work.finish)
            return response

        return run


def get_work(request: Request) -> RequestWork:
    """Return the request's unit of work (every router of the service uses `UnitOfWorkRoute`)."""
    work: RequestWork | None = getattr(request.state, "work", None)
    if work is None:
        raise RuntimeError(f"{request.url.path}: the route is not a UnitOfWorkRoute")
    return work


async def _work(request: Request) -> RequestWork:
    """`get_work` as a dependency: `async`, so FastAPI does not hand a lookup to the threadpool."""
    return get_work(request)


async def get_session(work: Annotated[RequestWork, Depends(_work)]) -> Session:
    """Return the request's session (the write transaction's, for a write request).

    A read session is only made here (it connects on first use, in the handler's thread), so a safe request gets
    it without a threadpool hop; a write request's session begins its transaction, which waits for the database
    (SQLite's write lock), so that happens in a worker thread as before.
    """
    if not work.writes:
        return work.session
    return await run_in_threadpool(lambda: work.session)


WorkDep = Annotated[RequestWork, Depends(_work)]
SessionDep = Annotated[Session, Depends(get_session)]
