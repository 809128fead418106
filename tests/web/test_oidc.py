"""Signing in with an organisation's OpenID Connect provider, against a real provider on loopback.

The provider (`tests/support/oidc_provider.py`, the `oidc-provider-mock` package on Authlib) issues real RS256 id
tokens stamped with the real time, so these tests start the service's movable clock at the real time and move it
to make a token expire.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlmodel import Session, col

from api.context import AppContext
from api.logscrub import scrub
from api.web.models import WebSession
from api.web.oidc import OidcProvider, OidcSignIn, decrypt_client_secret, encrypt_client_secret
from engine.clock import ManualClock
from tests.support.builders import make_user
from tests.support.oidc_provider import Provider, local_path, running_provider
from tests.web.support import csrf_of, web_client

SECRET = "client-secret-never-shown-4711"  # noqa: S105 - the test's own client secret
TAMPERE, NOKIA = "municipality:837", "municipality:536"


@pytest.fixture
def clock() -> ManualClock:
    """The service's clock, started at the real time: the provider's tokens carry the real time."""
    return ManualClock(datetime.now(UTC))


@pytest.fixture
def provider() -> Iterator[Provider]:
    with running_provider(token_max_age=timedelta(minutes=5)) as running:
        yield running


def configure(ctx: AppContext, provider: Provider, *, domains: list[str] | None = None,
              organisations: list[str] | None = None, name: str = "Tampereen kaupunki") -> int:
    """Store a provider configuration the way the admin API does (encrypted secret)."""
    with Session(ctx.db.write_engine) as session:
        row = OidcProvider(name=name, issuer=provider.issuer, client_id="vuosikello",
                           client_secret_encrypted=encrypt_client_secret(SECRET, ctx.settings.secret_key),
                           domains=domains if domains is not None else ["tampere.fi"],
                           organisations=organisations if organisations is not None else [TAMPERE],
                           created_at=ctx.clock.now())
        session.add(row)
        session.commit()
        return row.id or 0


def start(client: TestClient, provider_id: int) -> str:
    """Press "Sign in with <provider>" on the sign-in page; return the provider's authorization URL."""
    page = client.get("/signin")
    assert page.status_code == 200
    r = client.post(f"/signin/oidc/{provider_id}", data={"csrf_token": csrf_of(page.text)})
    assert r.status_code == 303, r.text
    return str(r.headers["location"])


def sessions_of(ctx: AppContext, person_id: int) -> list[WebSession]:
    with Session(ctx.db.engine) as session:
        return list(session.execute(select(WebSession).where(col(WebSession.person_id) == person_id)).scalars())


def test_a_verified_address_of_a_served_organisation_signs_in(ctx: AppContext, provider: Provider) -> None:
    person = make_user(ctx, org_key=TAMPERE, email="liisa.virtanen@tampere.fi", language="sv")
    provider_id = configure(ctx, provider)
    provider.set_user("liisa", email="Liisa.Virtanen@tampere.fi", email_verified=True, name="Liisa Virtanen")
    with web_client(ctx) as client:
        page = client.get("/signin")
        assert "Kirjaudu: Tampereen kaupunki" in page.text  # the button, in the page's language
        pre_sign_in_token = csrf_of(page.text)
        url = start(client, provider_id)
        assert url.startswith(provider.issuer + "/oauth2/authorize?")
        for param in ("code_challenge_method=S256", "code_challenge=", "nonce=", "state=",
                      "scope=openid+email+profile", "redirect_uri=http%3A%2F%2Ftestserver%2Fsignin%2Foidc%2Fcallback"):
            assert param in url, param
        back = provider.authorize(url, "liisa")
        assert back.startswith("http://testserver/signin/oidc/callback?")
        done = client.get(local_path(back))
        assert done.status_code == 303, done.text
        assert done.headers["location"] == "/tasks"
        tasks = client.get("/tasks")
        assert tasks.status_code == 200
        assert csrf_of(tasks.text) != pre_sign_in_token  # the CSRF token rotates with the session
    [web] = sessions_of(ctx, person.person.id or 0)
    assert web.method == "oidc" and web.ended_at is None
    with Session(ctx.db.engine) as session:
        attempt = session.execute(select(OidcSignIn)).scalars().one()
        assert attempt.used_at is not None


def test_the_email_first_form_sends_a_served_domain_to_its_provider(ctx: AppContext, provider: Provider) -> None:
    make_user(ctx, org_key=TAMPERE, email="matti@tampere.fi")
    configure(ctx, provider)
    with web_client(ctx) as client:
        page = client.get("/signin")
        r = client.post("/signin/email", data={"csrf_token": csrf_of(page.text), "email": "matti@tampere.fi"})
        assert r.status_code == 303 and r.headers["location"].startswith(provider.issuer + "/oauth2/authorize?")
        assert "login_hint=matti%40tampere.fi" in r.headers["location"]
        other = client.post("/signin/email", data={"csrf_token": csrf_of(page.text), "email": "someone@nokia.fi"})
        assert other.status_code == 200  # everyone else: the emailed link, as before
        assert "Jos osoite on rekisterissä, siihen on lähetetty kirjautumislinkki" in other.text


def test_a_wrong_state_or_another_browser_is_refused(ctx: AppContext, provider: Provider) -> None:
    person = make_user(ctx, org_key=TAMPERE, email="anna@tampere.fi")
    provider_id = configure(ctx, provider)
    provider.set_user("anna", email="anna@tampere.fi", email_verified=True)
    with web_client(ctx) as client, web_client(ctx) as other_browser:
        back = provider.authorize(start(client, provider_id), "anna")
        code = back.split("code=")[1].split("&")[0]
        wrong = client.get(f"/signin/oidc/callback?state=not-the-state&code={code}")
        assert wrong.status_code == 400
        assert "Kirjautumispyyntö ei ole tämän selaimen aloittama" in wrong.text
        elsewhere = other_browser.get(local_path(back))  # the right state, but not this browser's cookie
        assert elsewhere.status_code == 400 and "Kirjautumispyyntö ei ole tämän selaimen aloittama" in elsewhere.text
    assert sessions_of(ctx, person.person.id or 0) == []


def test_a_replayed_callback_or_code_is_refused(ctx: AppContext, provider: Provider) -> None:
    person = make_user(ctx, org_key=TAMPERE, email="ville@tampere.fi", language="en")
    provider_id = configure(ctx, provider)
    provider.set_user("ville", email="ville@tampere.fi", email_verified=True)
    with web_client(ctx) as client:
        back = provider.authorize(start(client, provider_id), "ville")
        assert client.get(local_path(back)).status_code == 303
        state = back.split("state=")[1].split("&")[0]  # the browser's cookie, as it was before the callback
        again = client.get(local_path(back), headers={"cookie": f"vk_oidc_state={state}"})
        assert again.status_code == 400 and "Tämä kirjautumispyyntö on jo käytetty" in again.text
        # the old code with a fresh state of this browser: the provider refuses a code used once
        old_code = back.split("code=")[1].split("&")[0]
        fresh = provider.authorize(start(client, provider_id), "ville")
        state = fresh.split("state=")[1].split("&")[0]
        replay = client.get(f"/signin/oidc/callback?code={old_code}&state={state}")
        assert replay.status_code == 400 and "Tunnistuspalvelu ei hyväksynyt kirjautumista" in replay.text
    assert len(sessions_of(ctx, person.person.id or 0)) == 1


def test_an_expired_id_token_is_refused(ctx: AppContext, clock: ManualClock, provider: Provider) -> None:
    person = make_user(ctx, org_key=TAMPERE, email="eeva@tampere.fi")
    provider_id = configure(ctx, provider)
    provider.set_user("eeva", email="eeva@tampere.fi", email_verified=True)
    with web_client(ctx) as client:
        back = provider.authorize(start(client, provider_id), "eeva")
        clock.advance(timedelta(minutes=7))  # the token lives 5 minutes (and 1 of leeway); the attempt 10
        r = client.get(local_path(back))
        assert r.status_code == 400 and "Tunnistuspalvelun vastausta ei voitu varmistaa" in r.text
    assert sessions_of(ctx, person.person.id or 0) == []


def test_a_nonce_that_is_not_the_attempts_is_refused(ctx: AppContext, provider: Provider) -> None:
    person = make_user(ctx, org_key=TAMPERE, email="olli@tampere.fi")
    provider_id = configure(ctx, provider)
    provider.set_user("olli", email="olli@tampere.fi", email_verified=True)
    with web_client(ctx) as client:
        back = provider.authorize(start(client, provider_id), "olli")
        with Session(ctx.db.write_engine) as session:  # the token carries the nonce sent; expect another
            attempt = session.execute(select(OidcSignIn)).scalars().one()
            attempt.nonce = "another-nonce"
            session.add(attempt)
            session.commit()
        r = client.get(local_path(back))
        assert r.status_code == 400 and "Tunnistuspalvelun vastausta ei voitu varmistaa" in r.text
    assert sessions_of(ctx, person.person.id or 0) == []


@pytest.mark.parametrize(("claims", "text"), [
    ({"email": "nobody@tampere.fi", "email_verified": True}, "Sähköpostiosoitteellasi ei ole käyttäjää"),
    ({"email": "kalle@tampere.fi", "email_verified": False}, "Tunnistuspalvelu ei ole vahvistanut"),
    ({"email": "kalle@tampere.fi"}, "Tunnistuspalvelu ei ole vahvistanut"),
    ({"email": "nokia.person@nokia.fi", "email_verified": True}, "Tämä tunnistuspalvelu ei palvele organisaatiotasi"),
])
def test_refused_people_get_a_page_and_no_session(ctx: AppContext, provider: Provider, claims: dict[str, object],
                                                  text: str) -> None:
    kalle = make_user(ctx, org_key=TAMPERE, email="kalle@tampere.fi")
    nokia = make_user(ctx, org_key=NOKIA, email="nokia.person@nokia.fi")  # the provider serves Tampere only
    provider_id = configure(ctx, provider)
    provider.set_user("someone", **claims)
    with web_client(ctx) as client:
        r = client.get(local_path(provider.authorize(start(client, provider_id), "someone")))
        assert r.status_code == 403 and text in r.text
        assert 'href="/signin"' in r.text
        assert client.get("/tasks").status_code == 303  # still signed out
    assert sessions_of(ctx, kalle.person.id or 0) == [] and sessions_of(ctx, nokia.person.id or 0) == []


def test_the_refusal_page_speaks_swedish_and_english(ctx: AppContext, provider: Provider) -> None:
    provider_id = configure(ctx, provider)
    provider.set_user("x", email="nobody@tampere.fi", email_verified=True)
    for lang, text in (("sv", "Det finns ingen användare i Vuosikello med din e-postadress"),
                       ("en", "There is no user in Vuosikello with your email address")):
        with web_client(ctx) as client:
            client.cookies.set("vk_lang", lang)
            r = client.get(local_path(provider.authorize(start(client, provider_id), "x")))
            assert r.status_code == 403 and text in r.text, r.text[:2000]


def test_a_cancelled_sign_in_and_a_provider_that_is_down_are_pages_not_errors(ctx: AppContext,
                                                                             provider: Provider) -> None:
    provider_id = configure(ctx, provider)
    with web_client(ctx) as client:
        r = client.get("/signin/oidc/callback?error=access_denied&state=x")
        assert r.status_code == 400 and "Kirjautuminen peruttiin tunnistuspalvelussa" in r.text
        with Session(ctx.db.write_engine) as session:
            row = session.get(OidcProvider, provider_id)
            assert row is not None
            row.issuer = "http://127.0.0.1:1"  # nothing listens there
            session.add(row)
            session.commit()
        page = client.get("/signin")
        down = client.post(f"/signin/oidc/{provider_id}", data={"csrf_token": csrf_of(page.text)})
        assert down.status_code == 502 and "Tunnistuspalveluun ei juuri nyt saada yhteyttä" in down.text


def test_the_stored_secret_is_encrypted(ctx: AppContext, provider: Provider) -> None:
    provider_id = configure(ctx, provider)
    with Session(ctx.db.engine) as session:
        row = session.get(OidcProvider, provider_id)
        assert row is not None and SECRET not in row.client_secret_encrypted
        assert decrypt_client_secret(row.client_secret_encrypted, ctx.settings.secret_key) == SECRET


def test_no_secret_in_the_logs_of_a_sign_in(ctx: AppContext, provider: Provider,
                                            caplog: pytest.LogCaptureFixture) -> None:
    make_user(ctx, org_key=TAMPERE, email="sanna@tampere.fi")
    provider_id = configure(ctx, provider)
    provider.set_user("sanna", email="sanna@tampere.fi", email_verified=True)
    caplog.set_level(logging.DEBUG)
    with web_client(ctx) as client:
        back = provider.authorize(start(client, provider_id), "sanna")
        assert client.get(local_path(back)).status_code == 303
    assert caplog.records  # something was logged (httpx's requests at least)
    assert SECRET not in caplog.text


def test_the_callbacks_code_and_state_are_scrubbed_from_log_lines() -> None:
    line = '127.0.0.1 - "GET /signin/oidc/callback?state=s3cr3tstate&code=c0de123&iss=x HTTP/1.1" 303'
    assert scrub(line) == '127.0.0.1 - "GET /signin/oidc/callback?state=***&code=***&iss=x HTTP/1.1" 303'
    assert scrub("GET /directory?code=837") == "GET /directory?code=837"  # other pages' codes are no secrets


def test_an_attempt_expires_after_ten_minutes_and_old_ones_are_dropped(ctx: AppContext, clock: ManualClock,
                                                                       provider: Provider) -> None:
    person = make_user(ctx, org_key=TAMPERE, email="aino@tampere.fi")
    provider_id = configure(ctx, provider)
    provider.set_user("aino", email="aino@tampere.fi", email_verified=True)
    with web_client(ctx) as client:
        back = provider.authorize(start(client, provider_id), "aino")
        clock.advance(timedelta(minutes=11))
        late = client.get(local_path(back))
        assert late.status_code == 400 and "Kirjautumispyyntö vanheni" in late.text
        clock.advance(timedelta(days=2))
        start(client, provider_id)
    with Session(ctx.db.engine) as session:
        rows = list(session.execute(select(OidcSignIn)).scalars())
    assert len(rows) == 1 and rows[0].used_at is None  # the expired attempt is gone, the new one waits
    assert sessions_of(ctx, person.person.id or 0) == []
