"""Languages: every catalogue follows the glossary; the choice is remembered per person.

Completeness, placeholders and plurals of every gettext domain: tests/test_catalogues.py.
"""

from __future__ import annotations

import csv
import re

from sqlmodel import Session

from engine.directory import DATA_DIR
from engine.models import Person
from tests.support.builders import make_user
from tests.support.catalogues import domains, forms, messages
from tests.web.support import csrf_of, sign_in, web_client

# (Finnish stem, Swedish stem, English pattern): a message naming the Finnish term names the others too.
TERMS = [("puitesopimu", "ramavtal", "framework agreement"),
         ("sopimusosapuol", "avtalspart", "contracting part"),
         ("määräai", "tidsfrist", "deadline|overdue"),
         ("pöytäkirja", "protokoll", "minutes"),
         ("varahenkilö", "ersättare", "substitut"),
         ("muistutusviest", "påminnelse", "reminder")]


def _glossary() -> list[dict[str, str]]:
    with (DATA_DIR / "glossary.csv").open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _texts() -> list[tuple[str, dict[str, str]]]:
    """Return (domain:msgid, {lang: text}) for every message of every catalogue, each plural form on its own."""
    out = []
    for d in domains():
        fi, sv, en = (messages(d.name, lang) for lang in ("fi", "sv", "en"))
        for key, message in fi.items():
            if key not in sv or key not in en:
                continue  # tests/test_catalogues.py names the gap
            for i, text in enumerate(forms(message)):
                pick = [forms(m)[min(i, len(forms(m)) - 1)] for m in (sv[key], en[key])]
                out.append((f"{d.name}:{key}", {"fi": text, "sv": pick[0], "en": pick[1]}))
    return out


def test_terms_follow_the_glossary() -> None:
    glossary = _glossary()
    for fi, sv, en in TERMS[:4]:  # these four are glossary rows; the last two are this interface's own words
        assert any(row["fi"].startswith(fi) and row["sv"].startswith(sv[:6]) and re.search(en, row["en"])
                   for row in glossary)
    texts = _texts()
    assert len(texts) > 590
    for key, text in texts:
        for fi, sv, en in TERMS:
            if fi in text["fi"].lower():
                assert sv in text["sv"].lower(), (key, sv)
                assert re.search(en, text["en"].lower()), (key, en)
        # in planning law "muistutus" is a formal objection: an email reminder is a "muistutusviesti"
        assert not re.search(r"\bmuistutu(s|kse|st)(?!viest)", text["fi"].lower()), key


def test_the_language_is_switched_and_remembered_on_the_person(ctx) -> None:
    user = make_user(ctx, org_key="municipality:837", language="fi")
    with web_client(ctx) as client:
        assert '<html lang="fi">' in client.get("/signin").text
        page = client.get("/signin").text
        r = client.post("/language", data={"csrf_token": csrf_of(page), "lang": "en", "next": "/signin"})
        assert r.status_code == 303 and r.headers["location"] == "/signin"
        assert '<html lang="en">' in client.get("/signin").text  # remembered on this browser
        sign_in(client, ctx, user.id)
        tasks = client.get("/tasks").text
        assert '<html lang="fi">' in tasks and "Omat tehtävät" in tasks  # the person's own language wins
        r = client.post("/language", data={"csrf_token": csrf_of(tasks), "lang": "sv", "next": "/tasks"})
        assert "Mina uppgifter" in client.get("/tasks").text
        assert client.post("/language", data={"csrf_token": csrf_of(tasks), "lang": "de",
                                              "next": "https://evil.example"}).headers["location"] == "/"
    with Session(ctx.db.engine) as session:
        assert session.get(Person, user.id).language == "sv"


def test_the_link_page_speaks_the_recipients_language(ctx) -> None:
    from tests.web.support import new_link

    user = make_user(ctx, org_key="municipality:020", language="sv", name="Anna Andersson")
    with web_client(ctx) as client:
        page = client.get(f"/link/{new_link(ctx, user.id)}").text
        assert '<html lang="sv">' in page and "Logga in och fortsätt" in page
