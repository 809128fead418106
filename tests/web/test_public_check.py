"""The public check page (/check): open without signing in, in fi, sv and en; a sealed record and a text in force
are recognised, a changed or random file is not; bad input is shown on the form; checks are limited per address."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Page, expect

from api.context import AppContext
from tests.api.test_public_check import downloaded_text, into_force, seal
from tests.support.builders import org
from tests.web.browser import describe, violations
from tests.web.live import live_server
from tests.web.support import csrf_of, sign_in, web_client


def post_check(
    client: TestClient, token: str, *, content: bytes | None = None, sha256: str = "", name: str = "asiakirja.pdf"
):
    files = {"file": (name, content, "application/pdf")} if content is not None else {"file": ("", b"")}
    return client.post("/check", data={"csrf_token": token, "sha256": sha256}, files=files)


def test_the_check_page_is_public_and_speaks_every_language(ctx: AppContext) -> None:
    with web_client(ctx) as client:
        page = client.get("/check")
        assert page.status_code == 200 and "<h1>Tarkista asiakirja</h1>" in page.text
        assert 'enctype="multipart/form-data"' in page.text and 'href="/check"' in page.text  # the footer links it
        for lang, title in (
            ("sv", "Kontrollera en handling"),
            ("en", "Check a document"),
            ("fi", "Tarkista asiakirja"),
        ):
            r = client.post("/language", data={"csrf_token": csrf_of(page.text), "lang": lang, "next": "/check"})
            assert r.status_code == 303 and r.headers["location"] == "/check"
            page = client.get("/check")
            assert f"<h1>{title}</h1>" in page.text and f'<html lang="{lang}">' in page.text
        # without the form's token nothing is checked (a public form is still a form another site could post)
        assert client.post("/check", data={"sha256": "0" * 64}).status_code == 403


def test_a_text_in_force_and_its_sealed_record_are_recognised_a_changed_file_is_not(ctx: AppContext) -> None:
    with web_client(ctx) as client:
        fx = into_force(ctx, client)
        text = downloaded_text(client, fx)
        pdf = seal(ctx, fx, hashlib.sha256(text).hexdigest())
        token = csrf_of(client.get("/check").text)

        page = post_check(client, token, content=text, name="sopimus.md")
        assert page.status_code == 200 and "Tunnistettu" in page.text, page.text
        assert "Sopimusteksti, versio 1" in page.text and "Pirkanmaan puitesopimus" in page.text
        for key in fx.keys:
            assert org(ctx, key).name_fi in page.text
        assert "Voimassa" in page.text
        for user in [fx.coordinator, *(u for us in fx.signatories.values() for u in us)]:
            assert user.person.email not in page.text and user.person.name not in page.text

        page = post_check(client, token, content=pdf)
        assert "Sinetöity asiakirja sopimustekstin versiosta 1" in page.text
        assert hashlib.sha256(pdf).hexdigest() in page.text
        page = post_check(client, token, sha256=hashlib.sha256(pdf).hexdigest().upper())
        assert "Sinetöity asiakirja sopimustekstin versiosta 1" in page.text

        for changed in (pdf + b"%", pdf[:100] + b"X" + pdf[101:], os.urandom(2000)):
            page = post_check(client, token, content=changed)
            assert page.status_code == 200 and "Ei tunnistettu." in page.text and "Tunnistettu:" not in page.text


def test_bad_input_is_shown_on_the_form_with_4xx(ctx: AppContext) -> None:
    with web_client(ctx, check_max_bytes=1024 * 1024) as client:
        token = csrf_of(client.get("/check").text)
        page = post_check(client, token, sha256="not a hash")
        assert page.status_code == 422 and 'href="#sha256"' in page.text and "64 heksadesimaalimerkkiä" in page.text
        assert 'value="not a hash"' in page.text  # what was typed stays in the field
        page = post_check(client, token)
        assert page.status_code == 422 and 'href="#file"' in page.text
        page = post_check(client, token, content=b"%PDF-", sha256="0" * 64)
        assert page.status_code == 422 and "ei molempia" in page.text
        page = post_check(client, token, content=b"0" * (1024 * 1024 + 1))
        assert page.status_code == 413 and "enintään 1 megatavu" in page.text
        r = client.post(
            "/check", content=b"--X\r\n\x00garbage", headers={"Content-Type": "multipart/form-data; boundary=X"}
        )
        assert 400 <= r.status_code < 500


def test_checks_from_one_address_are_limited_with_retry_after_in_the_person_s_language(ctx: AppContext) -> None:
    with web_client(ctx, check_limit=2) as client:
        token = csrf_of(client.get("/check").text)
        for _ in range(2):
            assert post_check(client, token, sha256="0" * 64).status_code == 200
        page = post_check(client, token, sha256="0" * 64)
        assert page.status_code == 429 and int(page.headers["Retry-After"]) > 0
        assert "Osoitteestasi on tehty liian monta tarkistusta" in page.text and "10 minuutin" in page.text
        client.post("/language", data={"csrf_token": token, "lang": "sv", "next": "/check"})
        page = post_check(client, token, sha256="0" * 64)
        assert page.status_code == 429 and "Försök igen om 10 minuter" in page.text


def test_a_signed_in_person_checks_as_well(ctx: AppContext) -> None:
    with web_client(ctx) as client:
        fx = into_force(ctx, client)
        sign_in(client, ctx, fx.coordinator.id)
        page = client.get("/check")
        assert page.status_code == 200
        digest = hashlib.sha256(downloaded_text(client, fx)).hexdigest()
        page = post_check(client, csrf_of(page.text), sha256=digest)
        assert "Tunnistettu" in page.text and "Pirkanmaan puitesopimus" in page.text


@pytest.mark.browser
@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_in_chromium_a_visitor_uploads_the_sealed_pdf_and_the_pages_pass_axe(
    ctx: AppContext, page: Page, tmp_path: Path
) -> None:
    with web_client(ctx) as client:
        fx = into_force(ctx, client)
        pdf = seal(ctx, fx, hashlib.sha256(downloaded_text(client, fx)).hexdigest())
    (tmp_path / "sinetöity.pdf").write_bytes(pdf)
    (tmp_path / "muutettu.pdf").write_bytes(pdf + b"%")
    with live_server(ctx) as base:
        for lang, heading in (
            ("fi", "Tarkista asiakirja"),
            ("sv", "Kontrollera en handling"),
            ("en", "Check a document"),
        ):
            page.context.add_cookies([{"name": "vk_lang", "value": lang, "url": base}])
            page.goto(f"{base}/check")
            expect(page.get_by_role("heading", level=1)).to_have_text(heading)
            assert not (found := violations(page)), describe(found)
        page.context.add_cookies([{"name": "vk_lang", "value": "fi", "url": base}])
        page.goto(f"{base}/check")
        page.get_by_label("Tiedosto").set_input_files(str(tmp_path / "sinetöity.pdf"))
        page.get_by_role("button", name="Tarkista").click()
        expect(page.get_by_text("Tunnistettu: tämän palvelun antama asiakirja.")).to_be_visible()
        expect(page.get_by_text("Sinetöity asiakirja sopimustekstin versiosta 1")).to_be_visible()
        assert not (found := violations(page)), describe(found)
        page.get_by_label("Tiedosto").set_input_files(str(tmp_path / "muutettu.pdf"))
        page.get_by_role("button", name="Tarkista").click()
        expect(page.get_by_text("Ei tunnistettu.")).to_be_visible()
        page.get_by_label("tai SHA-256-tiiviste").fill("ei tiiviste")
        page.get_by_role("button", name="Tarkista").click()
        expect(page.locator(".error-summary")).to_contain_text("64 heksadesimaalimerkkiä")
        assert not (found := violations(page)), describe(found)
