"""People pages: an administrator adds and edits anyone; a coordinator adds their own organisation's signatories.

Bad input comes back as 422 in the person's language, naming the field and keeping what was typed; a request
outside what the person manages is a 403 page and writes nothing; no input gives a 500.
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from engine.models import Organisation, Person
from tests.support.builders import make_user, org
from tests.web.support import csrf_of, sign_in, web_client

GOOD = {"name": "Maija Meikäläinen", "email": "Maija.Meikalainen@Tampere.FI", "language": "sv",
        "organisation": "Tampere", "title": "Kansliapäällikkö", "roles": ["signatory", "coordinator"]}


def _people(ctx) -> int:
    with Session(ctx.db.engine) as session:
        return int(session.execute(select(func.count()).select_from(Person)).scalar_one())


def _person(ctx, email: str) -> Person | None:
    with Session(ctx.db.engine) as session:
        return session.execute(select(Person).where(Person.email == email)).scalars().first()


def _post(client, url: str, csrf: str, **fields):  # type: ignore[no-untyped-def]
    return client.post(url, data={"csrf_token": csrf, **fields})


def _summary(html: str) -> list[str]:
    """Return the error summary's lines (label: message), tags removed."""
    box = re.search(r'<div class="error-summary".*?</ul>', html, re.S)
    assert box, "no error summary on the page"
    return [re.sub(r"<[^>]+>", "", li).strip() for li in re.findall(r"<li>(.*?)</li>", box.group(0), re.S)]


def _value(html: str, name: str) -> str:
    found = re.search(rf'<input type="[a-z]+" id="{name}" name="{name}" value="([^"]*)"', html)
    assert found, f"no field {name}"
    return found.group(1)


def test_an_administrator_adds_a_person_and_finds_them_in_the_list(ctx) -> None:
    admin = make_user(ctx, roles="admin", name="Pää Käyttäjä")
    with web_client(ctx) as client:
        sign_in(client, ctx, admin.id)
        assert 'href="/people"' in client.get("/admin").text  # reached from the administration page and the menu
        page = client.get("/people/new")
        assert page.status_code == 200 and "<h1>Lisää henkilö</h1>" in page.text
        for role in ("signatory", "coordinator", "admin"):
            assert f'id="role-{role}" name="roles" value="{role}"' in page.text
        r = _post(client, "/people", csrf_of(page.text), **GOOD)
        assert r.status_code == 303 and r.headers["location"].startswith("/people?notice=added")
        listing = client.get(r.headers["location"]).text
        assert "Henkilö lisättiin." in listing and "Maija Meikäläinen" in listing
        assert "maija.meikalainen@tampere.fi" in listing and "Allekirjoittaja, Koordinaattori" in listing
    person = _person(ctx, "maija.meikalainen@tampere.fi")
    assert person is not None
    assert (person.language, person.roles, person.title, person.active) == (
        "sv", "coordinator,signatory", "Kansliapäällikkö", True)
    assert person.organisation_id == org(ctx, "municipality:837").id


@pytest.mark.parametrize(("lang", "labels", "messages"), [
    ("fi", ("Nimi", "Sähköpostiosoite", "Kieli", "Organisaatio", "Roolit"),
     ("Täytä tämä kenttä.", "Kirjoita sähköpostiosoite muodossa", "Valitse suomi, ruotsi tai englanti.",
      "ei löydy rekisteristä", "Valitse roolit")),
    ("sv", ("Namn", "E-postadress", "Språk", "Organisation", "Roller"),
     ("Fyll i", "Skriv e-postadressen i formen", "Välj finska, svenska eller engelska.", "finns inte i registret",
      "Välj rollerna")),
    ("en", ("Name", "Email address", "Language", "Organisation", "Roles"),
     ("Fill in", "Write the email address as", "Choose Finnish, Swedish or English.", "is not in the register",
      "Choose the roles")),
])
def test_bad_input_names_each_field_in_the_persons_language_and_keeps_what_was_typed(ctx, lang, labels,
                                                                                     messages) -> None:
    admin = make_user(ctx, roles="admin", language=lang)
    before = _people(ctx)
    with web_client(ctx) as client:
        sign_in(client, ctx, admin.id)
        csrf = csrf_of(client.get("/people/new").text)
        r = _post(client, "/people", csrf, name="", email="maija(at)tampere", language="de",
                  organisation="Tampereen kaupunki", title="Sihteeri", roles=["signatory", "superuser"])
        assert r.status_code == 422
        assert f'<html lang="{lang}">' in r.text
        lines = _summary(r.text)
        assert len(lines) == 5, lines
        for line, label, message in zip(lines, labels, messages, strict=True):
            assert line.startswith(f"{label}: "), (line, label)
            assert message in line, (line, message)
        assert _value(r.text, "email") == "maija(at)tampere" and _value(r.text, "organisation") == "Tampereen kaupunki"
        assert _value(r.text, "title") == "Sihteeri"
        assert 'aria-invalid="true"' in r.text and 'href="#roles"' in r.text
    assert _people(ctx) == before


def test_an_email_address_is_unique_whatever_its_case(ctx) -> None:
    admin = make_user(ctx, roles="admin")
    make_user(ctx, org_key="municipality:837", email="kirjaamo@tampere.fi")
    before = _people(ctx)
    with web_client(ctx) as client:
        sign_in(client, ctx, admin.id)
        csrf = csrf_of(client.get("/people/new").text)
        r = _post(client, "/people", csrf, **{**GOOD, "email": "Kirjaamo@Tampere.fi"})
        assert r.status_code == 422
        assert _summary(r.text) == ["Sähköpostiosoite: Osoite on jo toisen henkilön käytössä."]
        assert _value(r.text, "email") == "Kirjaamo@Tampere.fi"
        r = _post(client, "/people", csrf, **{**GOOD, "organisation": "", "roles": ["signatory"]})
        assert r.status_code == 422  # a signatory signs for an organisation
        assert _summary(r.text) == ["Organisaatio: Allekirjoittajalla ja koordinaattorilla on oltava organisaatio."]
    assert _people(ctx) == before


def test_an_administrator_edits_a_person_but_not_away_their_own_administration(ctx) -> None:
    admin = make_user(ctx, roles="admin")
    person = make_user(ctx, org_key="municipality:837", name="Teppo Testaaja", email="teppo@tampere.fi")
    with web_client(ctx) as client:
        sign_in(client, ctx, admin.id)
        page = client.get(f"/people/{person.id}")
        assert page.status_code == 200 and _value(page.text, "email") == "teppo@tampere.fi"
        assert _value(page.text, "organisation") == "Tampere" and 'value="signatory" checked' in page.text
        r = _post(client, f"/people/{person.id}", csrf_of(page.text), name="Teppo Testaaja", email="teppo@orivesi.fi",
                  language="en", organisation="municipality:562", roles=["signatory"], active="")
        assert r.status_code == 303 and "notice=saved" in r.headers["location"]
        own = client.get(f"/people/{admin.id}").text
        r = _post(client, f"/people/{admin.id}", csrf_of(own), name=admin.person.name, email=admin.person.email,
                  language="fi", roles=[], active="")
        assert r.status_code == 422
        assert _summary(r.text) == ["Roolit: Et voi poistaa omaa ylläpitäjän rooliasi.",
                                    "Käytössä: voi kirjautua ja saa sähköpostia: Et voi poistaa itseäsi käytöstä."]
        assert client.get("/people/abc").status_code == 404 and client.get("/people/99999").status_code == 404
    changed = _person(ctx, "teppo@orivesi.fi")
    assert changed is not None and changed.id == person.id
    assert (changed.language, changed.active, changed.organisation_id) == ("en", False, org(ctx, "municipality:562").id)
    with Session(ctx.db.engine) as session:
        assert session.get(Person, admin.id).role_set == {"admin"}


def test_a_coordinator_adds_a_signatory_of_their_own_organisation_only(ctx) -> None:
    coordinator = make_user(ctx, org_key="regional_council:06", roles="coordinator", name="Kaisa Koordinaattori",
                            language="sv")
    make_user(ctx, org_key="municipality:837", name="Tampereen allekirjoittaja")
    with web_client(ctx) as client:
        sign_in(client, ctx, coordinator.id)
        listing = client.get("/people").text
        assert "Tampereen allekirjoittaja" not in listing and "Kaisa Koordinaattori" in listing
        assert 'href="/people"' in client.get("/tasks").text
        page = client.get("/people/new")
        assert page.status_code == 200 and "Birkalands förbund" in page.text
        assert 'value="signatory" checked' in page.text and 'value="coordinator"' not in page.text
        r = _post(client, "/people", csrf_of(page.text), name="Pekka Puheenjohtaja", email="pekka@pirkanmaa.fi",
                  language="fi", roles=["signatory"])
        assert r.status_code == 303
        added = _person(ctx, "pekka@pirkanmaa.fi")
        assert added is not None and added.organisation_id == org(ctx, "regional_council:06").id
        assert added.roles == "signatory"
        assert "Pekka Puheenjohtaja" in client.get("/people").text
        edit = client.get(f"/people/{added.id}")
        assert edit.status_code == 200
        r = _post(client, f"/people/{added.id}", csrf_of(edit.text), name="Pekka Puheenjohtaja",
                  email="pekka.p@pirkanmaa.fi", language="sv", roles=["signatory"], active="on")
        assert r.status_code == 303
    assert _person(ctx, "pekka.p@pirkanmaa.fi") is not None


def test_a_coordinator_is_refused_another_organisation_or_role_and_nothing_is_written(ctx) -> None:
    coordinator = make_user(ctx, org_key="regional_council:06", roles="coordinator", language="sv")
    stranger = make_user(ctx, org_key="municipality:837", name="Tampereen allekirjoittaja")
    colleague = make_user(ctx, org_key="regional_council:06", roles="coordinator", name="Toinen koordinaattori")
    signatory = make_user(ctx, org_key="regional_council:06", name="Allekirjoittaja")
    before = _people(ctx)
    with web_client(ctx) as client:
        sign_in(client, ctx, coordinator.id)
        csrf = csrf_of(client.get("/people/new").text)
        new = {"name": "Ulla Ulkopuolinen", "email": "ulla@tampere.fi", "language": "fi"}
        for forged in ({"organisation": "municipality:837", "roles": ["signatory"]},
                       {"organisation": "Tampere", "roles": ["signatory"]},
                       {"roles": ["coordinator"]}, {"roles": ["signatory", "admin"]}):
            r = _post(client, "/people", csrf, **new, **forged)
            assert r.status_code == 403, forged
            assert '<html lang="sv">' in r.text and "undertecknare för din egen organisation" in r.text
        for person in (stranger, colleague):
            assert client.get(f"/people/{person.id}").status_code == 403
            r = _post(client, f"/people/{person.id}", csrf, name="Muutettu", email=person.person.email,
                      language="fi", roles=["signatory"], active="on")
            assert r.status_code == 403
        assert _post(client, "/people", "wrong-token", **new, roles=["signatory"]).status_code == 403

        sign_in(client, ctx, signatory.id)
        for path in ("/people", "/people/new"):
            r = client.get(path)
            assert r.status_code == 403 and "Henkilöitä hallinnoivat ylläpitäjät ja koordinaattorit." in r.text
        assert _post(client, "/people", csrf_of(client.get("/tasks").text), **new,
                     roles=["signatory"]).status_code == 403
    assert _people(ctx) == before
    with Session(ctx.db.engine) as session:
        assert session.get(Person, stranger.id).name == "Tampereen allekirjoittaja"
        assert session.get(Person, colleague.id).name == "Toinen koordinaattori"
        assert session.execute(select(Organisation).where(Organisation.key == "regional_council:06")).scalar_one()


def test_the_list_filters_by_organisation_and_names_an_unknown_one(ctx) -> None:
    admin = make_user(ctx, roles="admin", language="en")
    make_user(ctx, org_key="municipality:837", name="Tampereen allekirjoittaja")
    make_user(ctx, org_key="municipality:091", name="Helsingin allekirjoittaja")
    with web_client(ctx) as client:
        sign_in(client, ctx, admin.id)
        page = client.get("/people", params={"organisation": "municipality:091"}).text
        assert "Helsingin allekirjoittaja" in page and "Tampereen allekirjoittaja" not in page
        assert "1 person" in page
        bad = client.get("/people", params={"organisation": "Atlantis", "q": "x" * 300})
        assert bad.status_code == 422
        assert _summary(bad.text) == ["Organisation: The organisation is not in the register. Write its name or code."]
        assert _value(bad.text, "organisation") == "Atlantis"
