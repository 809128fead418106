"""The template editor under the sandbox's limits: a heavy template is a form error in the person's language, every
template can be edited (the sign-in link mail too, keeping its link), control characters are refused naming the
field, on SQLite and PostgreSQL."""

from __future__ import annotations

import html
import re
import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlmodel import Session

from api.app import create_app
from api.refusals import refusal_text
from api.web.mail import send_sign_in_link
from engine.errors import InvalidInput
from engine.models import OutboxMessage
from notifications import template_store
from notifications.render import PARTS, template_names
from notifications.template_store import EmailTemplate
from tests.support.builders import make_user
from tests.web.support import csrf_of, sign_in, web_client


def _form(page: str, lang: str) -> dict[str, str]:
    values = {p: html.unescape(re.search(rf'<textarea id="{p}"[^>]*>(.*?)</textarea>', page, re.S).group(1))  # type: ignore[union-attr]
              for p in PARTS}
    return {"csrf_token": csrf_of(page), "lang": lang, **values}


def _stored(ctx) -> int:
    with Session(ctx.db.engine) as s:
        return int(s.execute(select(func.count()).select_from(EmailTemplate)).scalar_one())


def test_a_heavy_template_is_a_form_error_in_the_admin_s_language(ctx) -> None:
    admin = make_user(ctx, roles="admin")
    with web_client(ctx) as client:
        sign_in(client, ctx, admin.id)
        form = _form(client.get("/admin/templates/party_reminder?lang=sv").text, "sv")
        for source, words in (("{{ 9**(9**7) }}", "Pohjassa laskettu luku on liian suuri."),
                              ("{{ 'x' * 10**9 }}", "Pohja tuottaa liikaa tekstiä."),
                              ("{% for a in link %}{% for b in link %}{% for c in link %}{% endfor %}{% endfor %}"
                               "{% endfor %}", "Pohjan silmukat toistuvat liian monta kertaa.")):
            started = time.perf_counter()
            r = client.post("/admin/templates/party_reminder", data={**form, "txt": source, "action": "save"})
            assert time.perf_counter() - started < 3.0
            assert r.status_code == 422 and words in r.text and 'href="#txt"' in r.text, r.text[-2000:]
            assert source in html.unescape(r.text)  # what was typed is kept
        assert _stored(ctx) == 0


def test_every_template_can_be_edited_and_the_sign_in_link_keeps_its_link(ctx) -> None:
    admin = make_user(ctx, roles="admin", language="sv")
    reader = make_user(ctx, roles="coordinator", language="sv", email="lasare@example.fi")
    with web_client(ctx) as client:
        sign_in(client, ctx, admin.id)
        for name in template_names():  # each opens with a preview, and an unchanged save is accepted
            page = client.get(f"/admin/templates/{name}?lang=en")
            assert page.status_code == 200 and 'class="preview-subject"' in page.text, name
            r = client.post(f"/admin/templates/{name}", data={**_form(page.text, "en"), "action": "save"})
            assert r.status_code == 303, (name, r.text[-1500:])
        form = _form(client.get("/admin/templates/sign_in_link?lang=sv").text, "sv")
        no_link = client.post("/admin/templates/sign_in_link", data={
            **form, "html": "<p>Hej {{ person.name }}</p>", "action": "save"})
        assert no_link.status_code == 422 and 'href="#html"' in no_link.text
        assert "Den här mallen måste visa {{ link }} både i texten och i HTML-delen." in html.unescape(no_link.text)
        saved = client.post("/admin/templates/sign_in_link", data={
            **form, "txt": "Hej {{ person.name }}! Logga in här: {{ link }}", "action": "save"})
        assert saved.status_code == 303, saved.text[-1500:]
    # the mail the sign-in page sends ("email me a link"), through the same function the page calls
    ctx.engine.run(lambda uow: send_sign_in_link(uow, reader.person, None, key="sign-in-link:test"))
    with Session(ctx.db.engine) as s:
        mail = s.execute(select(OutboxMessage).where(OutboxMessage.template == "sign_in_link",
                                                     OutboxMessage.person_id == reader.person.id)).scalar_one()
    assert mail.status == "pending" and mail.text.startswith(f"Hej {reader.person.name}! Logga in här: http")
    assert "/link/" in mail.text


def test_control_characters_are_refused_naming_the_field(ctx) -> None:
    admin = make_user(ctx, roles="admin", language="en")
    with web_client(ctx) as client:
        sign_in(client, ctx, admin.id)
        form = _form(client.get("/admin/templates/party_reminder?lang=fi").text, "fi")
        for field, value in (("subject", "Muistutus\x00{{ case.title }}"), ("txt", "Hei\x1b[31m {{ person.name }}"),
                             ("html", "<p>\x7f</p>")):
            r = client.post("/admin/templates/party_reminder", data={**form, field: value, "action": "save"})
            assert r.status_code == 422 and f'href="#{field}"' in r.text, (field, r.text[-1500:])
            # the form's own check or the template store's: either names the field and says why
            assert "control character" in r.text, re.findall(r"error-message.{0,300}", r.text, re.S)
            assert re.search(rf'<textarea id="{field}"[^>]*aria-invalid="true"', r.text)
    assert _stored(ctx) == 0
    api = TestClient(create_app(ctx=ctx))
    r = api.put("/api/v1/templates/party_reminder/fi", json={"subject": "Muistutus\x00"},
                headers={**admin.headers, "Accept-Language": "sv"})
    assert r.status_code == 422 and r.json()["field"] == "subject", r.text
    # the store's own check, whatever the request layer checks before it, on both databases
    with Session(ctx.db.write_engine) as s:
        with pytest.raises(InvalidInput) as refused:
            template_store.save(s, ctx.registry, "party_reminder", "fi", {"html": "<p>ok</p>", "subject": "A\x00B"},
                                actor_id=admin.id, now=ctx.clock.now())
        assert refused.value.field == "subject" and refused.value.message_id == "templates.error.control"
        assert "på rad 1 styrtecknet U+0000" in refusal_text(refused.value, "sv", ctx.registry)
        s.rollback()
    ok = api.put("/api/v1/templates/party_reminder/fi", json={"subject": "Muistutus: {{ case.title }}"},
                 headers=admin.headers)
    assert ok.status_code == 200 and ok.json()["subject"] == "Muistutus: Pirkanmaan puitesopimus"
    assert _stored(ctx) == 1
