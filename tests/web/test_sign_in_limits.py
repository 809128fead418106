"""The sign-in limiter: per client address, where `X-Forwarded-For` counts only from a configured trusted proxy
(none by default, also for a client on loopback of the real server), and per account, so guesses spread over many
addresses still stop."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlmodel import Session, col

from api.app import create_app
from api.context import AppContext
from api.web.auth import client_address, set_password
from api.web.config import WebConfig
from engine.clock import ManualClock
from engine.db import Database
from engine.models import OutboxMessage
from tests.conftest import context_for
from tests.support.builders import make_user
from tests.support.http_server import HttpServer
from tests.web.support import csrf_of

PASSWORD = "oikea-salasana-2026"


def _client(ctx: AppContext, ip: str) -> TestClient:
    return TestClient(create_app(ctx=ctx, web=WebConfig(cookie_secure=False)), client=(ip, 50000),
                      follow_redirects=False)


def _password(client: TestClient, email: str, password: str = "väärä-salasana", **headers: str) -> int:
    page = client.get("/signin")
    r = client.post("/signin/password", data={"email": email, "password": password,
                                              "csrf_token": csrf_of(page.text)}, headers=headers)
    return r.status_code


def test_forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy(ctx: AppContext) -> None:
    client = _client(ctx, "203.0.113.7")
    for i in range(10):  # a new "address" each time, and a new account, so only the address limit applies
        assert _password(client, f"guess{i}@example.fi", **{"X-Forwarded-For": f"198.51.100.{i}"}) == 401
    assert _password(client, "guess99@example.fi", **{"X-Forwarded-For": "198.51.100.99"}) == 429


def test_behind_a_trusted_proxy_each_client_is_counted_apart(database: Database, clock: ManualClock) -> None:
    ctx = context_for(database, clock, trusted_proxies=["10.0.0.0/8"])
    proxy = _client(ctx, "10.1.2.3")
    for i in range(10):
        assert _password(proxy, f"guess{i}@example.fi", **{"X-Forwarded-For": "198.51.100.1, 10.9.9.9"}) == 401
    assert _password(proxy, "other@example.fi", **{"X-Forwarded-For": "198.51.100.1"}) == 429  # that client
    assert _password(proxy, "other@example.fi", **{"X-Forwarded-For": "198.51.100.2"}) == 401  # another one
    # the left part of the header is the client's own to write: only the hop the proxy added counts
    assert _password(proxy, "other2@example.fi", **{"X-Forwarded-For": "198.51.100.2, 198.51.100.1"}) == 429


def test_client_address_rules() -> None:
    assert client_address("127.0.0.1", "1.2.3.4", []) == "127.0.0.1"
    assert client_address("127.0.0.1", "1.2.3.4", ["10.0.0.1"]) == "127.0.0.1"
    assert client_address("10.0.0.1", "1.2.3.4", ["10.0.0.1"]) == "1.2.3.4"
    assert client_address("10.0.0.1", "9.9.9.9, 1.2.3.4, 10.0.0.2", ["10.0.0.0/24"]) == "1.2.3.4"
    assert client_address("10.0.0.1", "not-an-ip", ["10.0.0.1"]) == "not-an-ip"


def test_guesses_at_one_account_from_many_addresses_stop(ctx: AppContext, clock: ManualClock) -> None:
    coordinator = make_user(ctx, org_key="regional_council:06", roles="coordinator", name="Koordinaattori")
    email = coordinator.person.email
    with Session(ctx.db.write_engine) as session:
        set_password(session, coordinator.id, PASSWORD)
        session.commit()
    for i in range(5):
        assert _password(_client(ctx, f"198.51.100.{i}"), email.upper()) == 401
    fresh = _client(ctx, "198.51.100.200")
    assert _password(fresh, email) == 429
    assert _password(fresh, email, PASSWORD) == 429  # even the right password waits for the window
    assert _password(fresh, "someone.else@example.fi") == 401  # that address is not throttled itself
    clock.advance(timedelta(minutes=16))
    assert _password(fresh, email, PASSWORD) == 303


def test_link_requests_for_one_account_from_many_addresses_stop(ctx: AppContext, clock: ManualClock) -> None:
    signatory = make_user(ctx, org_key="municipality:837", name="Aino")
    for i in range(5):
        client = _client(ctx, f"198.51.100.{i}")
        page = client.get("/signin")
        r = client.post("/signin/email", data={"email": signatory.person.email, "csrf_token": csrf_of(page.text)})
        assert r.status_code == 200
        clock.advance(timedelta(minutes=1))
    client = _client(ctx, "198.51.100.200")
    page = client.get("/signin")
    r = client.post("/signin/email", data={"email": signatory.person.email, "csrf_token": csrf_of(page.text)})
    assert r.status_code == 429
    with Session(ctx.db.engine) as session:
        mails = session.execute(select(func.count()).select_from(OutboxMessage)
                                .where(col(OutboxMessage.to_address) == signatory.person.email)).scalar_one()
    assert mails == 5


@pytest.mark.slow
def test_the_real_server_ignores_forwarded_for_from_loopback(tmp_path: Path) -> None:
    server = HttpServer.start({"VUOSIKELLO_DATABASE_URL": f"sqlite:///{tmp_path / 'vuosikello.db'}",
                               "VUOSIKELLO_SCHEDULER_ENABLED": "false", "VUOSIKELLO_ENVIRONMENT": "development"},
                              tmp_path / "server.log")
    try:
        with httpx.Client(base_url=server.url, timeout=30) as browser:
            statuses = []
            for i in range(11):
                page = browser.get("/signin")
                r = browser.post("/signin/password", data={"email": f"guess{i}@example.fi", "password": "x" * 12,
                                                           "csrf_token": csrf_of(page.text)},
                                 headers={"X-Forwarded-For": f"198.51.100.{i}"})
                statuses.append(r.status_code)
        assert statuses == [401] * 10 + [429], statuses
    finally:
        server.stop()
