"""`vuosikello worker` sweeps (timers, mail) without the web server; `/health/ready` answers 503 when the
database does not, where `/healthz` only says the process runs."""

from __future__ import annotations

import os
import select as io_select
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine
from sqlmodel import Session, col
from sqlmodel import select as sql_select

from api.app import create_app
from api.context import AppContext, build_context
from api.web.mail import send_sign_in_link
from engine.db import Database, make_database
from engine.models import OutboxMessage, Person
from engine.settings import Settings
from tests.support.service_process import READY_TIMEOUT, ROOT
from tests.support.waiting import wait_until


def test_ready_touches_the_database(ctx: AppContext) -> None:
    client = TestClient(create_app(ctx=ctx), raise_server_exceptions=False)
    r = client.get("/health/ready")
    assert r.status_code == 200 and r.json() == {"status": "ok", "database": "ok"}
    working = ctx.db.engine
    ctx.db.engine = create_engine("postgresql+psycopg://nobody@127.0.0.1:9/none?connect_timeout=2")
    try:  # the database goes away (a closed port): ready says so, the liveness check does not
        r = client.get("/health/ready")
        assert r.status_code == 503 and r.json()["database"] == "unreachable", r.text
        assert r.headers["retry-after"] == "5"
        assert client.get("/healthz").status_code == 200
    finally:
        ctx.db.engine.dispose()
        ctx.db.engine = working
    assert client.get("/health/ready").status_code == 200


def _status(db: Database, message_id: int) -> str:
    with Session(db.engine) as s:
        return str(s.execute(sql_select(OutboxMessage.status).where(col(OutboxMessage.id) == message_id))
                   .scalar_one())


@pytest.mark.slow
def test_the_worker_delivers_mail_without_the_web_server(ctx: AppContext, database: Database,
                                                         tmp_path: Path) -> None:
    if database.is_sqlite:  # the worker migrates its database as serve does: a file of its own
        url = f"sqlite:///{tmp_path / 'worker.db'}"
    else:
        url = database.url  # already at head: the worker's upgrade is a no-op
    proc = subprocess.Popen([sys.executable, "-m", "api.cli", "worker"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT,
                            env={**os.environ, "PYTHONUNBUFFERED": "1", "VUOSIKELLO_DATABASE_URL": url,
                                 "VUOSIKELLO_ENVIRONMENT": "test", "VUOSIKELLO_SMTP_HOST": "",
                                 "VUOSIKELLO_SCHEDULER_INTERVAL_SECONDS": "0.3"})
    output: list[bytes] = []
    try:
        assert proc.stdout is not None
        end = time.monotonic() + READY_TIMEOUT
        while not any(b"worker sweeping" in line for line in output):
            assert time.monotonic() < end and proc.poll() is None, b"".join(output).decode()
            if io_select.select([proc.stdout], [], [], 0.2)[0]:
                output.append(proc.stdout.readline())
        db = make_database(url) if database.is_sqlite else database
        worker_ctx = build_context(Settings(environment="test", database_url=url, base_url="http://testserver",
                                            scheduler_enabled=False), clock=ctx.clock, db=db)

        def queue(uow) -> None:  # type: ignore[no-untyped-def]
            person = Person(name="Aino", email="aino@example.fi", language="fi", roles="signatory",
                            created_at=uow.now)
            uow.session.add(person)
            uow.session.flush()
            send_sign_in_link(uow, person, None, key=f"worker-test:{person.id}")
        worker_ctx.engine.run(queue)
        with Session(db.engine) as s:
            message_id = int(s.execute(sql_select(OutboxMessage.id)).scalars().one())
        wait_until(lambda: _status(db, message_id) == "captured", within=30,
                   what="the worker delivered (captured) the queued mail", seen=lambda: _status(db, message_id))
        proc.terminate()
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
