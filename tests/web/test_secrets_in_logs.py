"""No secret in the server's log: the real `vuosikello serve` process signs a person in with an emailed link and
serves a calendar feed, and then neither the link's token nor the feed's secret (nor the admin's API token) is in
anything it wrote, while the access-log lines for those requests are there with `***` in their place."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlmodel import Session, col

from engine.db import make_database
from engine.models import OutboxMessage, Person
from tests.support.http_server import HttpServer
from tests.web.support import csrf_of

pytestmark = pytest.mark.slow
LINK = re.compile(r"/link/([A-Za-z0-9_\-]+)")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[HttpServer, str, str]]:
    db_url = f"sqlite:///{tmp_path / 'vuosikello.db'}"
    admin_token = secrets.token_urlsafe(24)
    server = HttpServer.start({"VUOSIKELLO_DATABASE_URL": db_url, "VUOSIKELLO_ADMIN_TOKEN": admin_token,
                               "VUOSIKELLO_ENVIRONMENT": "development", "VUOSIKELLO_SCHEDULER_ENABLED": "false",
                               "VUOSIKELLO_SMTP_HOST": ""}, tmp_path / "server.log")
    try:
        yield server, db_url, admin_token
    finally:
        server.stop()


def test_link_tokens_and_feed_secrets_never_reach_the_log(served: tuple[HttpServer, str, str]) -> None:
    server, db_url, admin_token = served
    db = make_database(db_url)
    try:
        with Session(db.engine) as session:  # the server migrated the file; a person to sign in
            session.add(Person(name="Aino Allekirjoittaja", email="aino@example.fi", language="fi",
                               roles="signatory", created_at=datetime.now(UTC)))
            session.commit()
        with httpx.Client(base_url=server.url, follow_redirects=False, timeout=30) as browser:
            page = browser.get("/signin")
            r = browser.post("/signin/email", data={"email": "aino@example.fi", "csrf_token": csrf_of(page.text)})
            assert r.status_code == 200, r.text[:300]
            with Session(db.engine) as session:
                mail = session.execute(select(OutboxMessage).where(col(OutboxMessage.to_address)
                                                                   == "aino@example.fi")).scalars().one()
            found = LINK.search(mail.text)
            assert found, mail.text
            token = found.group(1)
            page = browser.get(f"/link/{token}")
            assert page.status_code == 200
            r = browser.post(f"/link/{token}", data={"csrf_token": csrf_of(page.text)})
            assert r.status_code == 303, r.text[:300]
            assert browser.get("/tasks").status_code == 200  # signed in

        admin = {"Authorization": f"Bearer {admin_token}"}
        issued = httpx.post(f"{server.url}/api/v1/calendar/feeds", json={}, headers=admin, timeout=30)
        assert issued.status_code == 201, issued.text
        feed_path = httpx.URL(issued.json()["url"]).path
        feed_secret = feed_path.rsplit("/", 1)[1].removesuffix(".ics")
        r = httpx.get(f"{server.url}{feed_path}", timeout=30)
        assert r.status_code == 200 and "BEGIN:VCALENDAR" in r.text
        r = httpx.get(f"{server.url}/link/{token}?token={token}", timeout=30)  # a used link, also in a query
        assert r.status_code == 410
    finally:
        db.dispose()

    log = server.log()
    # the requests were logged ...
    assert re.search(r'"POST /link/\*\*\* HTTP/1\.1" 303', log), log[-3000:]
    assert re.search(r'"GET /api/v1/calendar/feeds/\*\*\*\.ics HTTP/1\.1" 200', log), log[-3000:]
    # ... and no secret with them
    for secret in (token, feed_secret, admin_token):
        assert secret not in log, f"a secret is in the server's log:\n{log[-3000:]}"
