"""The captured-mail page (`/mail`, development without SMTP) holds every sign-in link, so only an administrator
reads it: an anonymous visitor is sent to sign in, a signatory is refused, production has no such page. The demo
still shows its mail to a newcomer: it prints the administrator's sign-in link, which leads there."""

from __future__ import annotations

import re

import pytest
from sqlmodel import Session

from api.context import AppContext
from api.demo import load_demo, sign_in_links
from engine.clock import ManualClock
from engine.db import Database
from engine.links import issue_link
from tests.conftest import context_for
from tests.support.builders import make_user
from tests.web.support import csrf_of, sign_in, web_client


@pytest.fixture
def dev(database: Database, clock: ManualClock) -> AppContext:
    return context_for(database, clock, environment="development")


def _captured_link(ctx: AppContext, person_id: int) -> None:
    now = ctx.clock.now()
    with Session(ctx.db.write_engine) as session:  # a sign-in link, as the mail page would show it
        issue_link(session, person_id=person_id, case_id=None, expires_at=now.replace(year=now.year + 1), now=now)
        session.commit()


def test_an_anonymous_visitor_is_sent_to_sign_in_and_reads_no_mail(dev: AppContext) -> None:
    signatory = make_user(dev, org_key="municipality:837", name="Aino")
    client = web_client(dev)
    page = client.get("/signin")
    client.post("/signin/email", data={"email": signatory.person.email, "csrf_token": csrf_of(page.text)})
    fresh = web_client(dev)
    for path in ("/mail", "/mail/1", "/mail?q=example"):
        r = fresh.get(path)
        assert r.status_code == 303 and r.headers["location"].startswith("/signin?next=/mail"), (path, r.text)
        assert "/link/" not in r.text
    r = fresh.get("/mail", headers={"Authorization": "Bearer not-a-token"})
    assert r.status_code == 303


def test_a_signatory_is_refused_and_an_administrator_reads_it(dev: AppContext) -> None:
    signatory = make_user(dev, org_key="municipality:837", name="Aino")
    admin = make_user(dev, roles="admin", name="Pääkäyttäjä")
    client = web_client(dev)
    page = client.get("/signin")
    client.post("/signin/email", data={"email": signatory.person.email, "csrf_token": csrf_of(page.text)})
    sign_in(client, dev, signatory.id)
    r = client.get("/mail")
    assert r.status_code == 403 and "/link/" not in r.text
    assert client.get("/mail", headers=signatory.headers).status_code == 403
    r = web_client(dev).get("/mail", headers=admin.headers)
    assert r.status_code == 200 and signatory.person.email in r.text
    browser = web_client(dev)
    sign_in(browser, dev, admin.id)
    r = browser.get("/mail")
    assert r.status_code == 200 and signatory.person.email in r.text
    message = re.search(r'href="/mail/(\d+)"', r.text)
    assert message, r.text
    r = browser.get(f"/mail/{message.group(1)}")
    assert r.status_code == 200 and "/link/" in r.text


def test_production_has_no_mail_page(database: Database, clock: ManualClock) -> None:
    ctx = context_for(database, clock, environment="production", secret_key="a-real-secret-" + "x" * 30)
    admin = make_user(ctx, roles="admin", name="Pääkäyttäjä")
    r = web_client(ctx, secure=True).get("/mail", headers=admin.headers)
    assert r.status_code == 404


def test_the_demo_prints_an_administrator_link_that_leads_to_the_mail(dev: AppContext) -> None:
    info = sign_in_links(dev, load_demo(dev), "http://testserver")
    assert info.admin_link.startswith("http://testserver/link/")
    browser = web_client(dev)
    token = info.admin_link.rsplit("/", 1)[1]
    page = browser.get(f"/link/{token}")
    assert page.status_code == 200
    assert browser.post(f"/link/{token}", data={"csrf_token": csrf_of(page.text)}).status_code == 303
    r = browser.get("/mail")
    assert r.status_code == 200, r.text[:300]
