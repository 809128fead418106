"""Operations: the version, the migration state, a request id on every response, error body and log line (JSON
logs from the real server process), and Prometheus metrics after a scripted day."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import httpx
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select
from sqlmodel import Session, col

from api import __version__
from api.app import create_app
from engine.models import OutboxMessage, Timer
from tests.conftest import context_for
from tests.support.builders import create_agreement, make_user
from tests.support.http_server import HttpServer
from tests.support.webhook_receiver import Receiver

ROOT = Path(__file__).resolve().parents[2]


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run([sys.executable, "-m", "api.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=120)


def test_version_and_db_current(tmp_path: Path) -> None:
    done = _cli("--version", env={})
    assert done.returncode == 0 and done.stdout.strip() == f"vuosikello {__version__}"
    env = {"VUOSIKELLO_DATABASE_URL": f"sqlite:///{tmp_path / 'ops.db'}"}
    empty = _cli("db", "current", env=env)
    assert empty.returncode == 1 and "empty" in empty.stdout
    assert _cli("db", "upgrade", env=env).returncode == 0
    current = _cli("db", "current", env=env)
    lines = dict(line.split(":", 1) for line in current.stdout.splitlines())
    assert current.returncode == 0 and lines["database"].strip() == lines["shipped"].strip()


def test_every_response_and_error_body_carries_the_request_id(ctx) -> None:
    client = TestClient(create_app(ctx=ctx))
    mine = client.get("/healthz", headers={"X-Request-ID": "case-31:retry.2"})
    assert mine.headers["x-request-id"] == "case-31:retry.2"
    made = client.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces" + "x" * 80})
    assert made.headers["x-request-id"] != "" and " " not in made.headers["x-request-id"]
    refused = client.get("/api/v1/agreements/1")
    assert refused.status_code == 401
    assert refused.json()["request_id"] == refused.headers["x-request-id"]


def _metrics(client: TestClient, headers: dict[str, str]) -> dict[str, float]:
    r = client.get("/metrics", headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(r.text):
        for sample in family.samples:
            label = ",".join(f"{v}" for v in sample.labels.values())
            out[sample.name + (f"{{{label}}}" if label else "")] = sample.value
    return out


def test_metrics_after_a_scripted_day_match_the_database(database, clock, tmp_path) -> None:
    ctx = context_for(database, clock, metrics_token="scraper-secret-123")
    admin = make_user(ctx, roles="admin")
    signatory = make_user(ctx, org_key="municipality:837")
    client = TestClient(create_app(ctx=ctx))
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers=signatory.headers).status_code == 403
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    receiver = Receiver().start()
    receiver.stop()  # an endpoint that is down: the webhook backlog grows
    with client:
        r = client.post("/api/v1/webhooks", json={"name": "down", "url": receiver.url, "allow_private": True},
                        headers=admin.headers)
        assert r.status_code == 201
        create_agreement(ctx, parties=3, reminder_offsets=["-P7D", "-P1D"])
        morning = _metrics(client, {"Authorization": "Bearer scraper-secret-123"})
        assert morning["vuosikello_timers_due"] == 0 and morning["vuosikello_timers_pending"] > 0
        assert morning["vuosikello_webhook_backlog"] > 0
        with Session(ctx.db.engine) as session:  # the invitations, not rendered until the mail job runs
            queued = session.execute(select(func.count()).select_from(OutboxMessage).where(
                col(OutboxMessage.status) == "queued")).scalar_one()
        assert queued > 0 and morning["vuosikello_outbox_messages{queued}"] == queued
        # the day passes without a sweep: reminders fall due and are late
        with Session(ctx.db.engine) as session:
            first_due = session.execute(select(func.min(col(Timer.due_at))).where(
                col(Timer.status) == "pending")).scalar_one()
        clock.set(first_due + timedelta(hours=2))
        late = _metrics(client, admin.headers)
        with Session(ctx.db.engine) as session:
            due_now = session.execute(select(func.count()).select_from(Timer).where(
                col(Timer.status) == "pending", col(Timer.due_at) <= clock.now())).scalar_one()
        assert due_now > 0 and late["vuosikello_timers_due"] == due_now == late["vuosikello_timers_late"]
        ctx.tick()  # the sweep runs: timers fire, mail is captured, webhooks fail (endpoint down)
        evening = _metrics(client, admin.headers)
        with Session(ctx.db.engine) as session:
            by_status = dict(session.execute(select(col(OutboxMessage.status), func.count())
                                             .group_by(col(OutboxMessage.status))).all())
        assert evening["vuosikello_timers_due"] == 0
        for status, count in by_status.items():
            assert evening[f"vuosikello_outbox_messages{{{status}}}"] == count
        assert evening["vuosikello_webhook_backlog"] >= morning["vuosikello_webhook_backlog"]
        assert evening["vuosikello_mail_deliveries_failed"] == by_status.get("failed", 0) + by_status.get("dead", 0)


def test_the_real_server_writes_json_log_lines_with_the_request_id(tmp_path: Path) -> None:
    server = HttpServer.start({"VUOSIKELLO_DATABASE_URL": f"sqlite:///{tmp_path / 'log.db'}",
                               "VUOSIKELLO_LOG_FORMAT": "json", "VUOSIKELLO_SMTP_HOST": ""}, tmp_path / "server.log")
    try:
        r = httpx.get(f"{server.url}/healthz", headers={"X-Request-ID": "trace-7f3a"}, timeout=30)
        assert r.status_code == 200 and r.headers["x-request-id"] == "trace-7f3a"
        httpx.get(f"{server.url}/api/v1/agreements/1", headers={"X-Request-ID": "trace-401"}, timeout=30)
        log = server.log()
    finally:
        server.stop()
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert lines, log[-2000:]
    assert all({"time", "level", "logger", "message", "request_id"} <= set(line) for line in lines)
    access = [line for line in lines if line["logger"] == "uvicorn.access"]
    assert {"trace-7f3a", "trace-401"} <= {line["request_id"] for line in access}
