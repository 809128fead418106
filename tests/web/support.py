"""Helpers of the web tests: a test client per app, reading CSRF tokens, signing in through a real link."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlmodel import Session

from api.app import create_app
from api.context import AppContext
from api.web.config import WebConfig
from engine.links import issue_link

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    """Return the first CSRF token on a page."""
    found = CSRF.search(html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


def sha_of(html: str) -> str:
    """Return the SHA-256 of the text a page's forms were shown with."""
    found = re.search(r'name="sha256" value="([0-9a-f]{64})"', html)
    assert found, "the page has no form naming the text's SHA-256"
    return found.group(1)


def web_client(ctx: AppContext, *, secure: bool = False, **config: object) -> TestClient:
    """Return a test client of the whole app (Secure cookies need an https base URL)."""
    app = create_app(ctx=ctx, web=WebConfig(cookie_secure=secure, **config))  # type: ignore[arg-type]
    return TestClient(app, base_url="https://testserver" if secure else "http://testserver",
                      follow_redirects=False)


def new_link(ctx: AppContext, person_id: int, case_id: int | None = None,
             valid_for: timedelta = timedelta(days=7)) -> str:
    """Issue a sign-in link the way a reminder does; return its token."""
    now = ctx.clock.now()
    with Session(ctx.db.write_engine) as session:
        token = issue_link(session, person_id=person_id, case_id=case_id, expires_at=now + valid_for, now=now)
        session.commit()
    return token


def sign_in(client: TestClient, ctx: AppContext, person_id: int, case_id: int | None = None) -> str:
    """Sign a person in through the link page (GET, then the button's POST); return where it led."""
    token = new_link(ctx, person_id, case_id)
    page = client.get(f"/link/{token}")
    assert page.status_code == 200, page.text
    r = client.post(f"/link/{token}", data={"csrf_token": csrf_of(page.text)})
    assert r.status_code == 303, r.text
    return str(r.headers["location"])


@dataclass
class Page:
    """A fetched page and its CSRF token."""

    status: int
    html: str

    @property
    def csrf(self) -> str:
        return csrf_of(self.html)


def get(client: TestClient, url: str) -> Page:
    """GET a page and return it with its status."""
    r = client.get(url)
    return Page(r.status_code, r.text)
