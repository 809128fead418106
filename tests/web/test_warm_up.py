"""The start-up warm-up (`api.warmup`): it reads the hot pages as people who exist, writes nothing, and an empty
database or a failing page never stops the start (issue 11: the first request as fast as later ones)."""

from __future__ import annotations

import asyncio

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlmodel import Session

import api.warmup
from api.app import create_app
from api.context import AppContext
from api.web.models import WebSession
from api.web.views import _key
from engine.calendar import HELSINKI
from engine.models import Event, OutboxMessage
from engine.permissions import ReadAccess
from tests.support.builders import create_agreement, make_user
from workflows.common.pdf import outside_event_loop


def _warm(app: object) -> int:
    """Run the warm-up as the server's start does, on a loop of its own (a browser test earlier in this worker
    may have left Playwright's loop running in this thread, where asyncio.run() refuses)."""
    return outside_event_loop(lambda: asyncio.run(api.warmup.warm_up(app)))  # type: ignore[arg-type]


def _counts(ctx: AppContext) -> tuple[int, int, int]:
    with Session(ctx.db.engine) as session:
        return tuple(session.execute(select(func.count()).select_from(t)).scalar_one()  # type: ignore[return-value]
                     for t in (WebSession, Event, OutboxMessage))


def test_the_warm_up_reads_the_hot_pages_and_writes_nothing(ctx: AppContext) -> None:
    fx = create_agreement(ctx, parties=3)
    app = create_app(ctx=ctx)
    before = _counts(ctx)
    assert _warm(app) == 6  # API read, agreement page, my tasks; coordinator, signatory
    assert _counts(ctx) == before
    # FULL (the coordinator) and SHARED (a party signatory): the API bodies and the agreement page's shared part
    assert len(app.state.agreement_reads.cache) == 4
    with TestClient(app) as client:  # the lifespan runs it too, and the service answers afterwards
        assert client.get(f"/api/v1/agreements/{fx.id}", headers=fx.coordinator.headers).status_code == 200


def test_an_empty_database_warms_nothing(ctx: AppContext) -> None:
    assert _warm(create_app(ctx=ctx)) == 0


def test_a_failing_warm_up_does_not_stop_the_start(ctx: AppContext, monkeypatch: pytest.MonkeyPatch) -> None:
    fx = create_agreement(ctx, parties=2)

    async def broken(*_args: object) -> int:
        raise RuntimeError("a page that fails")

    monkeypatch.setattr(api.warmup, "_get", broken)
    app = create_app(ctx=ctx)
    assert _warm(app) == 0
    with TestClient(app) as client:
        assert client.get(f"/api/v1/agreements/{fx.id}", headers=fx.coordinator.headers).status_code == 200


def test_every_open_agreement_is_kept_for_its_first_reader_in_each_chosen_language(ctx: AppContext) -> None:
    older = create_agreement(ctx, parties=2)
    create_agreement(ctx, parties=2)  # the newest: the one the hot pages are read for
    make_user(ctx, org_key=older.keys[0], language="sv")  # someone reads in Swedish; nobody in English
    app = create_app(ctx=ctx)
    _warm(app)
    reads = app.state.agreement_reads
    with Session(ctx.db.engine) as session:
        fingerprint = reads.current(session, older.id)[1]
    today = ctx.clock.now().astimezone(HELSINKI).date()
    kept = {lang: reads.cache.lookup(*_key(older.id, ReadAccess.SHARED, lang, today, fingerprint)) is not None
            for lang in ("fi", "sv", "en")}
    assert kept == {"fi": True, "sv": True, "en": False}
    misses = reads.cache.misses
    with TestClient(app) as client:  # the older agreement's first API read is answered from what start-up kept
        signatory = older.signatories[older.keys[1]][0]
        for reader in (older.coordinator, signatory):
            assert client.get(f"/api/v1/agreements/{older.id}", headers=reader.headers).status_code == 200
    assert reads.cache.misses == misses
