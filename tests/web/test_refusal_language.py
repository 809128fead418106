"""No English engine text on a Finnish or Swedish page or in a refusal: every page and every kind of refusal,
in fi and sv, is checked for the engine's English phrases."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from tests.support.builders import create_agreement, decision, make_user
from tests.web.support import csrf_of, sha_of, sign_in, web_client

# fragments of the engine's English details (engine/service.py, workflows/*/service.py); none may reach a person
ENGLISH = ["is not allowed in state", "allowed:", "needs one of the roles", "refused by its conditions",
           "reload and retry", "changed by someone else", "no case with id", "trigger '", "is in the past",
           "is in the future", "is not circulating", "cannot sign in state", "may not record the decision",
           "the text was revised", "not every party has approved", "reminders go only"]
LANGS = ["fi", "sv"]


def english_in(text: str) -> list[str]:
    plain = re.sub(r"<[^>]+>", " ", text)
    return [e for e in ENGLISH if e.lower() in plain.lower()]


def refusals(ctx, client: TestClient):  # type: ignore[no-untyped-def]
    """Provoke every kind of engine refusal through the REST API; yield (what, request function)."""
    fx = create_agreement(ctx, parties=2, signatures=1)
    mine, other = fx.keys
    me = fx.signatories[mine][0]
    coord = fx.coordinator.headers
    url = f"/api/v1/agreements/{fx.id}"
    seen = client.get(url, headers=me.headers).json()["document_sha256"]
    client.put(f"{url}/document", json={"text": "# Toinen versio"}, headers=coord)
    return [
        ("invalid transition", lambda h: client.post(f"{url}/circulate", headers={**coord, **h})),
        ("stale version", lambda h: client.put(f"{url}/document", json={"text": "# Kolmas"},
                                                headers={**coord, "If-Match": "1", **h})),
        ("not permitted", lambda h: client.post(f"{url}/parties/{other}/decision", json=decision(),
                                                headers={**me.headers, **h})),
        ("revised text", lambda h: client.post(f"{url}/parties/{mine}/decision",
                                               json={**decision(), "document_sha256": seen},
                                               headers={**me.headers, **h})),
        ("sign before approval", lambda h: client.post(f"{url}/parties/{mine}/signatures",
                                                       headers={**me.headers, **h})),
        ("bad input", lambda h: client.post(f"{url}/parties/{mine}/decision",
                                            json=decision(decided_on="2030-01-01"), headers={**me.headers, **h})),
        ("not found", lambda h: client.get("/api/v1/cases/999999", headers={**coord, **h})),
        ("final state", lambda h: client.post(
            f"/api/v1/agreements/{create_agreement(ctx, parties=1, circulate=False).id}/withdraw",
            headers={**coord, **h})),
    ]


def test_every_kind_of_api_refusal_is_told_in_finnish_and_swedish(ctx) -> None:
    client = TestClient(create_app(ctx=ctx))
    with client:
        cases = refusals(ctx, client)
        for what, call in cases:
            english = call({"Accept-Language": "en"}).json()
            for lang in LANGS:
                r = call({"Accept-Language": f"{lang}-FI,{lang};q=0.9,en;q=0.5"})
                assert 400 <= r.status_code < 500, (what, r.status_code, r.text)
                body = r.json()
                assert body["message"] and body["message"] != body["detail"], (what, lang, body)
                assert body["message"] != english["message"], (what, lang, body["message"])
                assert not english_in(body["message"]), (what, lang, body["message"])


@pytest.mark.parametrize("lang", LANGS)
def test_no_page_shows_english_engine_text(ctx, lang: str) -> None:
    fx = create_agreement(ctx, parties=2, signatures=1)
    mine = fx.keys[0]
    me = fx.signatories[mine][0]
    admin = make_user(ctx, roles="admin,coordinator", name="Pää Käyttäjä")
    pages = {
        me.id: ["/tasks", f"/agreements/{fx.id}", f"/cases/{fx.id + 1}", "/substitutes", "/overview"],
        fx.coordinator.id: ["/tasks", f"/agreements/{fx.id}", f"/agreements/{fx.id}/revise", "/agreements/new",
                            "/dashboard", "/nominations/new", "/cycles/new", "/overview"],
        admin.id: ["/admin", "/admin/outbox", "/admin/templates", "/admin/workflows/agreement",
                   "/admin/workflows/agreement/simulate", "/admin/workflows/agreement/migrate", "/dashboard"],
    }
    for person_id, urls in pages.items():
        with web_client(ctx) as client:
            sign_in(client, ctx, person_id)
            client.cookies.set("vk_lang", lang)
            page = client.get("/tasks").text
            client.post("/language", data={"lang": lang, "next": "/tasks", "csrf_token": csrf_of(page)})
            for url in urls:
                r = client.get(url, follow_redirects=True)
                assert r.status_code == 200, (url, r.status_code)
                assert f'lang="{lang}"' in r.text, url
                assert not english_in(r.text), (lang, url, english_in(r.text))


@pytest.mark.parametrize("lang", LANGS)
def test_refusal_pages_are_in_the_persons_language(ctx, lang: str) -> None:
    fx = create_agreement(ctx, parties=2, signatures=1)
    mine, other = fx.keys
    me = fx.signatories[mine][0]
    with web_client(ctx) as client:
        sign_in(client, ctx, me.id, fx.id + 1)
        page = client.get("/tasks").text
        client.post("/language", data={"lang": lang, "next": "/tasks", "csrf_token": csrf_of(page)})
        page = client.get(f"/agreements/{fx.id}").text
        form = {"party": mine, "outcome": "approved", "body": "Kunnanhallitus", "decided_on": "2.3.2026",
                "section": "§ 58", "csrf_token": csrf_of(page), "sha256": sha_of(page)}
        refused = [client.post(f"/agreements/{fx.id}/sign", data={"party": mine, "sha256": sha_of(page),
                                                                   "confirm": sha_of(page),
                                                                   "csrf_token": csrf_of(page)}),  # not approved
                   client.post(f"/agreements/{fx.id}/decision", data={**form, "party": other}),  # not mine
                   client.post(f"/agreements/{fx.id}/decision", data={**form, "sha256": "0" * 64})]  # stale text
        for r in refused:
            assert 400 <= r.status_code < 500, r.text
            assert f'lang="{lang}"' in r.text
            assert not english_in(r.text), (lang, english_in(r.text))
    with web_client(ctx) as client:
        sign_in(client, ctx, fx.coordinator.id, fx.id)
        page = client.get("/tasks").text
        client.post("/language", data={"lang": lang, "next": "/tasks", "csrf_token": csrf_of(page)})
        page = client.get(f"/agreements/{fx.id}").text
        client.post(f"/agreements/{fx.id}/revise", data={"text": "# Uusi", "note": "", "version": "1",
                                                         "csrf_token": csrf_of(page)})
        stale = client.post(f"/agreements/{fx.id}/revise", data={"text": "# Kolmas", "note": "", "version": "1",
                                                                 "csrf_token": csrf_of(page)})
        assert stale.status_code == 409
        assert not english_in(stale.text), (lang, english_in(stale.text))
