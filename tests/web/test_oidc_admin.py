"""Administrators configure identity providers: REST and the admin page, validated, the secret never shown."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlmodel import Session

from api.app import create_app
from api.context import AppContext
from api.web.oidc import OidcProvider, decrypt_client_secret
from tests.support.builders import make_user
from tests.support.oidc_provider import Provider, running_provider
from tests.web.support import csrf_of, sign_in, web_client

SECRET = "very-secret-client-secret-0815"  # noqa: S105 - the test's own client secret


@pytest.fixture
def provider() -> Iterator[Provider]:
    with running_provider() as running:
        yield running


def body(provider: Provider, **changes: object) -> dict[str, object]:
    return {"name": "Tampereen kaupunki", "issuer": provider.issuer, "client_id": "vuosikello",
            "client_secret": SECRET, "domains": ["Tampere.fi"], "organisations": ["municipality:837"], **changes}


def test_an_administrator_adds_and_changes_a_provider_over_rest(ctx: AppContext, provider: Provider,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    admin = make_user(ctx, roles="admin")
    client = TestClient(create_app(ctx=ctx))
    created = client.post("/api/v1/oidc-providers", json=body(provider), headers=admin.headers)
    assert created.status_code == 201, created.text
    read = created.json()
    assert read["domains"] == ["tampere.fi"] and read["issuer"] == provider.issuer
    assert read["redirect_uri"] == "http://testserver/signin/oidc/callback"
    changed = client.patch(f"/api/v1/oidc-providers/{read['id']}", json={"active": False, "client_secret": "new-1"},
                           headers=admin.headers)
    assert changed.status_code == 200 and changed.json()["active"] is False
    listed = client.get("/api/v1/oidc-providers", headers=admin.headers)
    one = client.get(f"/api/v1/oidc-providers/{read['id']}", headers=admin.headers)
    for response in (created, changed, listed, one):
        assert SECRET not in response.text and "new-1" not in response.text and "secret" not in response.text
    assert SECRET not in caplog.text and "new-1" not in caplog.text
    with Session(ctx.db.engine) as session:
        row = session.execute(select(OidcProvider)).scalars().one()
        assert "new-1" not in row.client_secret_encrypted
        assert decrypt_client_secret(row.client_secret_encrypted, ctx.settings.secret_key) == "new-1"


@pytest.mark.parametrize(("changes", "field", "lang", "text"), [
    ({"issuer": "http://idp.tampere.fi"}, "issuer", "fi", "myöntäjän osoitteen on alettava https://"),
    ({"issuer": "http://idp.tampere.fi"}, "issuer", "sv", "utfärdarens adress måste börja med https://"),
    ({"issuer": "http://127.0.0.1:1"}, "issuer", "en", "discovery document (/.well-known/openid-configuration)"),
    ({"domains": ["not a domain"]}, "domains[0]", "en", "“not a domain” is not an email domain"),
    ({"domains": [], "organisations": []}, "domains", "fi", "Anna vähintään yksi sähköpostin verkkotunnus"),
    ({"organisations": ["municipality:999999"]}, "organisations[0]", "sv", "organisationen municipality:999999"),
])
def test_rest_validation_names_the_field_in_the_callers_language(ctx: AppContext, provider: Provider,
                                                                 changes: dict[str, object], field: str, lang: str,
                                                                 text: str) -> None:
    admin = make_user(ctx, roles="admin")
    client = TestClient(create_app(ctx=ctx))
    r = client.post("/api/v1/oidc-providers", json=body(provider, **changes),
                    headers={**admin.headers, "Accept-Language": lang})
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field and text in r.json()["message"], r.json()
    assert SECRET not in r.text


def test_missing_fields_and_a_taken_domain_are_refused(ctx: AppContext, provider: Provider) -> None:
    admin = make_user(ctx, roles="admin")
    client = TestClient(create_app(ctx=ctx))
    missing = client.post("/api/v1/oidc-providers", json={"name": "X", "issuer": provider.issuer},
                          headers={**admin.headers, "Accept-Language": "en"})
    assert missing.status_code == 422
    assert "client_id" in missing.text and "client_secret" in missing.text
    assert client.post("/api/v1/oidc-providers", json=body(provider), headers=admin.headers).status_code == 201
    taken = client.post("/api/v1/oidc-providers", json=body(provider, name="Toinen"),
                        headers={**admin.headers, "Accept-Language": "en"})
    assert taken.status_code == 422 and taken.json()["field"] == "domains[0]"
    assert "already served by the identity provider Tampereen kaupunki" in taken.json()["message"]


def test_only_administrators_configure_providers(ctx: AppContext, provider: Provider) -> None:
    coordinator = make_user(ctx, org_key="municipality:837", roles="coordinator")
    client = TestClient(create_app(ctx=ctx))
    assert client.post("/api/v1/oidc-providers", json=body(provider),
                       headers=coordinator.headers).status_code == 403
    assert client.get("/api/v1/oidc-providers", headers=coordinator.headers).status_code == 403
    assert client.get("/api/v1/oidc-providers").status_code == 401
    with web_client(ctx) as web:
        sign_in(web, ctx, coordinator.id)
        assert web.get("/admin/oidc").status_code == 403
        token = csrf_of(web.get("/tasks").text)
        assert web.post("/admin/oidc", data={"csrf_token": token, **_form(provider)}).status_code == 403
    with Session(ctx.db.engine) as session:
        assert session.execute(select(OidcProvider)).first() is None


def _form(provider: Provider, **changes: str) -> dict[str, str]:
    return {"name": "Tampereen kaupunki", "issuer": provider.issuer, "client_id": "vuosikello",
            "client_secret": SECRET, "domains": "tampere.fi", "organisations": "municipality:837", **changes}


def test_the_admin_page_adds_a_provider_and_keeps_the_secret_out_of_sight(ctx: AppContext, provider: Provider) -> None:
    admin = make_user(ctx, roles="admin")
    with web_client(ctx) as web:
        sign_in(web, ctx, admin.id)
        page = web.get("/admin/oidc")
        assert page.status_code == 200 and "/signin/oidc/callback" in page.text and "openid email profile" in page.text
        token = csrf_of(page.text)
        assert web.post("/admin/oidc", data=_form(provider)).status_code == 403  # no CSRF token
        bad = web.post("/admin/oidc", data={"csrf_token": token, **_form(provider, issuer="http://idp.example.fi",
                                                                          name="")})
        assert bad.status_code == 422
        assert 'href="#name"' in bad.text and "Tieto on pakollinen" in bad.text
        assert SECRET not in bad.text  # not even typed back
        bad = web.post("/admin/oidc", data={"csrf_token": token, **_form(provider, issuer="http://idp.example.fi")})
        assert bad.status_code == 422 and 'href="#issuer"' in bad.text
        assert "Myöntäjän osoitteen on alettava https://" in bad.text and 'value="http://idp.example.fi"' in bad.text
        ok = web.post("/admin/oidc", data={"csrf_token": token, **_form(provider)})
        assert ok.status_code == 303 and ok.headers["location"] == "/admin/oidc?notice=saved"
        listing = web.get(ok.headers["location"])
        assert "Tunnistuspalvelu on tallennettu" in listing.text and "Tampereen kaupunki" in listing.text
        with Session(ctx.db.engine) as session:
            row = session.execute(select(OidcProvider)).scalars().one()
        edit = web.get(f"/admin/oidc/{row.id}")
        assert edit.status_code == 200 and SECRET not in edit.text and "Jätä tyhjäksi" in edit.text
        kept = web.post(f"/admin/oidc/{row.id}", data={"csrf_token": token, **_form(provider, client_secret="",
                                                                                       name="Tampere (Entra ID)")})
        assert kept.status_code == 303
    with Session(ctx.db.engine) as session:
        row = session.execute(select(OidcProvider)).scalars().one()
        assert row.name == "Tampere (Entra ID)" and row.active is False  # the box was not ticked: paused
        assert decrypt_client_secret(row.client_secret_encrypted, ctx.settings.secret_key) == SECRET


def test_a_provider_that_is_down_can_be_paused_but_not_taken_back_into_use(ctx: AppContext) -> None:
    admin = make_user(ctx, roles="admin")
    client = TestClient(create_app(ctx=ctx))
    with running_provider() as gone:
        created = client.post("/api/v1/oidc-providers", json=body(gone), headers=admin.headers)
        assert created.status_code == 201, created.text
    url = f"/api/v1/oidc-providers/{created.json()['id']}"  # the provider process has stopped
    paused = client.patch(url, json={"active": False}, headers=admin.headers)
    assert paused.status_code == 200 and paused.json()["active"] is False
    back = client.patch(url, json={"active": True}, headers={**admin.headers, "Accept-Language": "sv"})
    assert back.status_code == 422 and back.json()["field"] == "issuer"
    assert "/.well-known/openid-configuration" in back.json()["message"] and "kan inte hämtas" in back.json()["message"]
