"""The mail catalogue: every template's words translated in fi, sv and en, plurals, overrides and the sandbox."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from jinja2.exceptions import UndefinedError
from jinja2.sandbox import SecurityError
from sqlalchemy import select
from sqlmodel import Session

import notifications
from engine.errors import InvalidInput
from engine.models import OutboxMessage
from notifications import template_store
from notifications.render import LANGUAGES, MAIL, PARTS, TEMPLATES_DIR, render, shipped_source, template_names
from tests.support.builders import create_agreement, pirkanmaa_keys, render_mail

LOCALE = Path(MAIL.locale_dir)
PLACEHOLDER = re.compile(r"%\((\w+)\)s")
JINJA = [("**.j2", "jinja2.ext:babel_extract")]
JINJA_OPTIONS = {"**.j2": {"trim_blocks": "true", "lstrip_blocks": "true", "newstyle_gettext": "true"}}


def catalogue(lang: str) -> Catalog:
    with (LOCALE / lang / "LC_MESSAGES" / "mail.po").open("rb") as fh:
        return read_po(fh, locale=lang, domain="mail")


def template_msgids() -> set[str]:
    """Every message id the shipped templates use, as `pybabel extract` finds it."""
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
            TEMPLATES_DIR, JINJA, options_map=JINJA_OPTIONS, keywords={"gettext": None, "ngettext": (1, 2)}):
        found.add(message if isinstance(message, str) else message[0])
    code = Path(notifications.__file__).resolve().parent  # ids the code marks with N_ (reminders' actions)
    for _file, _line, message, _comments, _context in extract_from_dir(
            code, [("*.py", "python")], keywords={"N_": None}):
        found.add(message)
    return found


def context(template: str = "", **extra: Any) -> dict[str, Any]:
    """The administrators' preview data for a template, with changes."""
    return {**template_store.SAMPLE, **template_store.SAMPLE_FOR.get(template, {}), **extra}


# -- the catalogue ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_message_is_translated_in_every_language(lang: str) -> None:
    cat = catalogue(lang)
    messages = [m for m in cat if m.id]
    assert len(messages) >= 40
    for m in messages:
        strings = m.string if isinstance(m.string, tuple) else (m.string,)
        assert all(s.strip() for s in strings), (lang, m.id)
        assert not m.fuzzy, (lang, m.id)
        ids = m.id if isinstance(m.id, tuple) else (m.id,)
        wanted = set(PLACEHOLDER.findall(" ".join(ids)))
        for s in strings:  # a translation that drops or invents a placeholder breaks the mail
            assert set(PLACEHOLDER.findall(s)) == wanted, (lang, m.id, s)
        assert MAIL.has(lang, ids[0]), (lang, m.id)  # and the loader the renderer uses finds it


def test_the_catalogues_hold_exactly_what_the_templates_use() -> None:
    used = template_msgids()
    for lang in LANGUAGES:
        ids = {m.id if isinstance(m.id, str) else m.id[0] for m in catalogue(lang) if m.id}
        assert ids == used, (lang, sorted(used - ids), sorted(ids - used))


def test_one_template_per_email_and_no_words_outside_the_catalogue() -> None:
    names = template_names()
    assert len(names) == 21 and not any(p.is_dir() for p in TEMPLATES_DIR.iterdir())
    assert sorted(p.name for p in TEMPLATES_DIR.iterdir()) == sorted(
        ["base.html.j2", *(f"{n}.{part}.j2" for n in names for part in PARTS)])
    for name in names:  # outside {% trans %} blocks and tags, no words are left
        for part in PARTS:
            source = re.sub(r"{% trans.*?{% endtrans \+?%}", " ", shipped_source(name, part), flags=re.S)
            source = re.sub(r"{%.*?%}|{{.*?}}|<[^>]*>|/cases/", " ", source, flags=re.S)
            assert not re.findall(r"[^\W\d_]{2,}", source), (name, part, source)


# -- plurals ---------------------------------------------------------------------------------------------------

SEATS = {"fi": ("(1 paikka, toimikausi", "(2 paikkaa, toimikausi"),
         "sv": ("(1 plats, mandatperiod", "(2 platser, mandatperiod"),
         "en": ("(1 seat, term", "(2 seats, term")}
OPEN_DEADLINES = {"fi": ("Tässä on avoin määräaikanne:", "Tässä ovat avoimet määräaikanne:"),
                  "sv": ("Här är er öppna tidsfrist:", "Här är era öppna tidsfrister:"),
                  "en": ("Here is your open deadline:", "Here are your open deadlines:")}


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("n", [1, 2])
def test_a_count_takes_the_right_plural_form(lang: str, n: int) -> None:
    request = render("nomination_requested", lang, context("nomination_requested", seats=n))
    wanted, other = SEATS[lang][n - 1], SEATS[lang][2 - n]
    assert wanted in request.text and wanted in request.html and other not in request.text + request.html
    items = [{"subject": f"Muistutus {i}", "text": ""} for i in range(n)]
    digest = render("digest", lang, context(items=items))
    wanted, other = OPEN_DEADLINES[lang][n - 1], OPEN_DEADLINES[lang][2 - n]
    assert f"\n\n{wanted}\n\n* Muistutus 0\n" in digest.text and f"<p>{wanted}</p>" in digest.html
    assert other not in digest.text + digest.html


# -- wording and escaping --------------------------------------------------------------------------------------


def test_each_language_reads_as_before_and_html_placeholders_are_escaped() -> None:
    ctx = context(case={"id": 1, "title": 'Sopimus <b>"A&B"</b>', "state": "invited", "workflow": "x"})
    fi, sv, en = (render("agreement_circulated", lang, ctx) for lang in LANGUAGES)
    assert fi.subject == 'Hyväksyttäväksi: Sopimus <b>"A&B"</b> – määräaika ma 28.12.2026'
    assert sv.subject == 'För godkännande: Sopimus <b>"A&B"</b> – tidsfrist mån 28.12.2026'
    assert en.subject == 'For approval: Sopimus <b>"A&B"</b> – deadline Mon 28 Dec 2026'
    assert fi.text == (
        "Maija Meikäläinen,\n\nOrganisaatiotanne pyydetään päättämään sopimuksesta Sopimus <b>\"A&B\"</b> ja "
        "allekirjoittamaan se ma 28.12.2026 mennessä.\n\nMitä teidän tulee tehdä: Allekirjoittakaa sopimus.\n"
        "Määräaika: ma 28.12.2026\nAvaa tehtävä: https://vuosikello.example/link/…\n\n--\n"
        "Tämä on Vuosikello-palvelun automaattinen määräaikamuistutus. Älä vastaa tähän viestiin.\n")
    assert "<p>Er organisation ombeds besluta om avtalet Sopimus &lt;b&gt;&#34;A&amp;B&#34;&lt;/b&gt; och" in sv.html
    assert '<html lang="en">' in en.html and "<b>" not in en.html.split("<body")[1]
    assert render("agreement_circulated", "de", ctx) == fi  # an unsupported language gets Finnish


def test_organisations_appear_by_their_name_in_the_language() -> None:
    declined = {lang: render("party_declined", lang, context()).text.splitlines()[2] for lang in LANGUAGES}
    assert declined["fi"].startswith("Tampere on päättänyt olla hyväksymättä sopimusta Pirkanmaan puitesopimus.")
    assert declined["sv"].startswith("Tammerfors har beslutat att inte godkänna avtalet")
    assert render("party_declined", "sv", context(organisation=None)).text.splitlines()[2].startswith("En part ")


# -- administrators' overrides ---------------------------------------------------------------------------------


def test_an_override_of_one_language_is_used_for_that_language_only_and_may_translate() -> None:
    source = ("{% trans %}Deadline reminder{% endtrans %}? {% trans %}Deadline:{% endtrans %} "
              "{{ deadline|localdate(lang) }}")
    overrides = (("sv/party_reminder.subject.j2", source), ("sv/party_reminder.txt.j2", "Hej {{ person.name }}"))
    sv = render("party_reminder", "sv", context(), overrides)
    assert sv.subject == "Deadline reminder? Tidsfrist: mån 28.12.2026"  # no such msgid: the English text stands
    assert sv.text == "Hej Maija Meikäläinen\n"
    assert sv.html == render("party_reminder", "sv", context()).html  # parts not edited stay shipped
    assert render("party_reminder", "fi", context(), overrides).subject.startswith("Määräaikamuistutus: ")
    # an edit saved before the templates were shared (words written out in one language) still renders
    legacy = (("fi/agreement_circulated.subject.j2", "Hyväksyttäväksi: {{ case.title }} – määräaika "
               "{{ deadline|localdate(lang) }}"),)
    assert render("agreement_circulated", "fi", context(), legacy).subject == (
        "Hyväksyttäväksi: Pirkanmaan puitesopimus – määräaika ma 28.12.2026")


def test_a_saved_override_reaches_the_outbox_in_its_language(ctx) -> None:
    subject = ("{% trans title=case.title, deadline=deadline|localdate(lang) %}For approval: {{ title }} – deadline "
               "{{ deadline }}{% endtrans %} (ny)")
    with Session(ctx.db.write_engine) as session:
        preview = template_store.save(session, ctx.registry, "agreement_circulated", "sv", {"subject": subject},
                                      actor_id=None, now=datetime(2026, 3, 2, tzinfo=UTC))
        session.commit()
    assert preview["subject"] == "För godkännande: Pirkanmaan puitesopimus – tidsfrist mån 28.12.2026 (ny)"
    keys = pirkanmaa_keys(ctx)[:3]
    create_agreement(ctx, parties=3, deadline=date(2026, 6, 19), languages=dict(zip(keys, LANGUAGES, strict=True)))
    render_mail(ctx)
    with Session(ctx.db.engine) as session:
        sent = dict(session.execute(select(OutboxMessage.language, OutboxMessage.subject)).all())
    assert sent == {"fi": "Hyväksyttäväksi: Pirkanmaan puitesopimus – määräaika ma 22.6.2026",
                    "sv": "För godkännande: Pirkanmaan puitesopimus – tidsfrist mån 22.6.2026 (ny)",
                    "en": "For approval: Pirkanmaan puitesopimus – deadline Mon 22 Jun 2026"}
    with Session(ctx.db.engine) as session:
        shown = template_store.sources(session, "agreement_circulated")
    assert shown["sv"]["subject"] == {"source": subject, "edited": True}
    assert shown["fi"]["subject"] == {"source": shipped_source("agreement_circulated", "subject"), "edited": False}


@pytest.mark.parametrize("name", template_names())
def test_every_shipped_template_previews_in_every_language(name: str) -> None:
    for lang in LANGUAGES:
        preview = template_store.check(name, lang, {part: shipped_source(name, part) for part in PARTS})
        assert preview["subject"] and preview["text"].strip() and preview["html"].strip(), (name, lang)
        assert f'<html lang="{lang}">' in preview["html"] or name == "nomination_letter"  # the letter brings its own


# -- the sandbox -----------------------------------------------------------------------------------------------

ESCAPES = [
    "{{ person.__class__ }}",
    "{{ ().__class__.__base__.__subclasses__() }}",
    "{{ case.title.upper() }}",
    "{{ gettext.__globals__ }}",
    "{{ gettext.__closure__[0].cell_contents }}",  # the catalogue behind the function
    "{% macro m() %}x{% endmacro %}{{ m() }}",
    "{% trans x=person.__class__ %}{{ x }}{% endtrans %}",
    "{{ gettext('%(x)s', x=person.__class__.__mro__) }}",
    "{{ lipsum() }}",
    "{{ range(3)|list }}",
]


@pytest.mark.parametrize("source", ESCAPES)
def test_a_template_that_escapes_the_sandbox_still_fails(source: str) -> None:
    with pytest.raises(InvalidInput):
        template_store.check("party_reminder", "sv", {"txt": source})
    with pytest.raises(Exception) as caught:  # refused, or undefined: never rendered
        render("party_reminder", "sv", context(), (("sv/party_reminder.txt.j2", source),))
    assert isinstance(caught.value, SecurityError | UndefinedError)


def test_the_catalogue_functions_are_the_only_callables() -> None:
    source = ("{{ gettext('Deadline:') }} "
              "{{ ngettext('Here is your open deadline:', 'Here are your open deadlines:', 2) }}")
    assert render("party_reminder", "sv", context(), (("sv/party_reminder.txt.j2", source),)).text == (
        "Tidsfrist: Här är era öppna tidsfrister:\n")
