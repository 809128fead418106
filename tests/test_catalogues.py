"""Every gettext catalogue, every domain: complete in fi, sv and en, plurals right, the code's ids all there.

Also what the catalogues fixed: plurals for n = 1 and n = 2, .ics titles in the recipient's language, and the
Swedish wheel's "nätverk". The glossary check of every catalogue is in tests/web/test_i18n.py.
"""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime

import icalendar
import pytest
from babel.support import Translations
from sqlalchemy import select
from sqlmodel import Session

from api.web.i18n import translate_n
from api.web.render import error_text
from engine.i18n import LANGUAGES, compile_catalogues
from engine.models import OutboxMessage
from tests.support.builders import create_agreement, render_mail
from tests.support.catalogues import ROOT, catalog, domains, extracted, forms, messages, placeholders
from workflows.annual_clock.ical import render_ics
from workflows.annual_clock.items import Item
from workflows.annual_clock.svg import render_page, render_svg
from workflows.i18n import translate_n as workflows_n

DOMAINS = [d.name for d in domains()]


def test_the_domains_are_there() -> None:
    assert {"web", "workflows", "engine"} <= set(DOMAINS)


@pytest.mark.parametrize("domain", DOMAINS)
def test_every_language_has_every_message_and_none_is_empty(domain: str) -> None:
    by_lang = {lang: messages(domain, lang) for lang in LANGUAGES}
    ids = set().union(*(set(m) for m in by_lang.values()))
    for lang, found in by_lang.items():
        assert not ids - set(found), f"{domain}/{lang}.po lacks {sorted(ids - set(found))}"
        empty = [k for k, m in found.items() if not all(f.strip() for f in forms(m))]
        assert not empty, f"{domain}/{lang}.po has empty translations: {empty}"
        fuzzy = [k for k, m in found.items() if m.fuzzy]
        assert not fuzzy, f"{domain}/{lang}.po has fuzzy (unchecked) translations: {fuzzy}"
        plural = [k for k, m in found.items() if isinstance(m.id, tuple | list)]
        assert all(len(forms(found[k])) == 2 for k in plural), f"{domain}/{lang}.po: a plural without 2 forms"
        for k in plural:  # a message is plural in every language or in none
            assert all(isinstance(by_lang[other][k].id, tuple | list) for other in LANGUAGES), (domain, k)


@pytest.mark.parametrize("domain", DOMAINS)
def test_placeholders_are_the_same_in_every_language(domain: str) -> None:
    d = next(x for x in domains() if x.name == domain)
    fi = messages(domain, "fi")
    for key, message in fi.items():
        if d.keyed:  # the Finnish text is the reference
            expected = set().union(*(placeholders(f) for f in forms(message)))
        else:  # the msgid (English source text) is
            ids = message.id if isinstance(message.id, tuple | list) else (message.id,)
            expected = set().union(*(placeholders(i) for i in ids))
        for lang in LANGUAGES:
            got = set().union(*(placeholders(f) for f in forms(messages(domain, lang)[key])))
            # a singular form may say "once" instead of "{n} time"; any other name must match exactly
            assert got - {"n"} == expected - {"n"}, (domain, lang, key, got, expected)


@pytest.mark.parametrize("domain", DOMAINS)
@pytest.mark.parametrize("lang", LANGUAGES)
def test_plural_forms_are_declared_for_n_1_and_n_2(domain: str, lang: str) -> None:
    cat = catalog(domain, lang)
    assert cat.num_plurals == 2 and cat.plural_expr.replace(" ", "") in ("(n!=1)", "n!=1"), (domain, lang)


@pytest.mark.parametrize("domain", [d for d in domains() if d.keywords or not d.keyed], ids=lambda d: d.name)
def test_every_message_id_the_code_names_is_in_the_catalogue(domain) -> None:
    found = set(messages(domain.name, "fi"))
    missing = {k: where for k, where in extracted(domain).items() if k not in found}
    assert not missing, f"{domain.name}: used but not in the catalogue (run scripts/i18n): {missing}"
    fi = messages(domain.name, "fi")
    singular = {k: where for k, where in extracted(domain).items() if not where[2] and k in fi
                and isinstance(fi[k].id, tuple | list)}
    assert not singular, f"{domain.name}: a message with plural forms read without a count (use tn): {singular}"


# (function, key, lang, n, expected): the plurals people read, including the three the issue names
PLURALS = [
    (translate_n, "revise.pending", "fi", 1, "Päätöstä odottaa lisäksi 1 osapuoli."),
    (translate_n, "revise.pending", "fi", 2, "Päätöstä odottaa lisäksi 2 osapuolta."),
    (translate_n, "revise.pending", "sv", 1, "Dessutom väntar 1 part på beslut."),
    (translate_n, "revise.pending", "sv", 2, "Dessutom väntar 2 parter på beslut."),
    (translate_n, "revise.pending", "en", 1, "1 more party has not decided yet."),
    (translate_n, "revise.pending", "en", 2, "2 more parties have not decided yet."),
    (translate_n, "admin.migrate.submit", "fi", 1, "Siirrä 1 asia"),
    (translate_n, "admin.migrate.submit", "fi", 2, "Siirrä 2 asiaa"),
    (translate_n, "admin.migrate.submit", "sv", 1, "Flytta 1 ärende"),
    (translate_n, "admin.migrate.submit", "sv", 2, "Flytta 2 ärenden"),
    (translate_n, "admin.migrate.submit", "en", 1, "Move 1 case"),
    (translate_n, "admin.migrate.submit", "en", 2, "Move 2 cases"),
    (translate_n, "notice.reminded", "fi", 1, "Lähetetään 1 muistutusviesti."),
    (translate_n, "notice.reminded", "fi", 2, "Lähetetään 2 muistutusviestiä."),
    (translate_n, "notice.reminded", "sv", 1, "1 påminnelse skickas."),
    (translate_n, "notice.reminded", "sv", 2, "2 påminnelser skickas."),
    (translate_n, "notice.reminded", "en", 1, "1 reminder is being sent."),
    (translate_n, "notice.reminded", "en", 2, "2 reminders are being sent."),
    (translate_n, "outbox.attempts", "fi", 1, "1 yritys"),
    (translate_n, "outbox.attempts", "fi", 2, "2 yritystä"),
    (translate_n, "outbox.attempts", "en", 1, "1 attempt"),
    (translate_n, "outbox.attempts", "en", 2, "2 attempts"),
    (workflows_n, "report.answers", "fi", 1, "1 vastaus"),
    (workflows_n, "report.answers", "fi", 2, "2 vastausta"),
    (workflows_n, "report.answers", "sv", 2, "2 svar"),
    (workflows_n, "report.answers", "en", 1, "1 answer"),
    (workflows_n, "report.answers", "en", 2, "2 answers"),
]


@pytest.mark.parametrize(("fn", "key", "lang", "n", "expected"), PLURALS,
                         ids=[f"{p[1]}-{p[2]}-{p[3]}" for p in PLURALS])
def test_plurals_are_right_for_1_and_2(fn, key: str, lang: str, n: int, expected: str) -> None:
    assert fn(lang, key, n) == expected


def test_a_form_error_with_a_count_takes_its_plural() -> None:
    assert error_text("fi", "admin.error.problems|1").startswith("Määrittelyssä on 1 virhe;")
    assert error_text("fi", "admin.error.problems|2").startswith("Määrittelyssä on 2 virhettä;")
    assert error_text("sv", "admin.error.problems|1").endswith("på raden nedan.")
    assert error_text("en", "admin.error.problems|1").startswith("The definition has 1 problem,")
    assert error_text("en", "admin.error.problems|3").startswith("The definition has 3 problems,")


@pytest.mark.parametrize("domain", DOMAINS)
def test_every_plural_renders_for_1_and_2(domain: str) -> None:
    from engine.i18n import translations

    d = next(x for x in domains() if x.name == domain)
    for lang in LANGUAGES:
        t = translations(ROOT / d.package / "locale", domain, lang)
        for key, message in messages(domain, lang).items():
            if isinstance(message.id, tuple | list):
                one, two = (t.ngettext(message.id[0], message.id[1], n) for n in (1, 2))
                assert (one, two) == tuple(forms(message)), (domain, lang, key)


def test_compiled_catalogues_say_what_the_po_files_say(tmp_path) -> None:
    for d in domains():
        shutil.copytree(ROOT / d.package / "locale", tmp_path / d.package / "locale", dirs_exist_ok=True)
    for mo in tmp_path.rglob("*.mo"):
        mo.unlink()
    written = compile_catalogues(tmp_path)
    assert len(written) == len(list(tmp_path.rglob("*.po"))) >= 3 * len(DOMAINS)
    web_sv = tmp_path / "api" / "locale" / "sv" / "LC_MESSAGES" / "web.mo"
    with web_sv.open("rb") as fh:
        t = Translations(fh, domain="web")
    assert t.gettext("nav.tasks") == "Mina uppgifter"
    assert t.ngettext("revise.pending", "revise.pending", 1) == "Dessutom väntar {n} part på beslut."
    assert compile_catalogues(tmp_path) == []  # up to date: nothing rewritten


def _item(**kw: object) -> Item:
    base: dict[str, object] = {"uid": "case-7-proposals", "kind": "deadline", "process": "nomination",
                               "name": "Alueiden kehittämisen lainvalmisteluryhmä", "start": date(2026, 3, 20),
                               "end": date(2026, 3, 20), "case_id": 7, "done": False, "overdue": True,
                               "label": "clock.item.proposals"}
    return Item(**{**base, **kw})  # type: ignore[arg-type]


@pytest.mark.parametrize(("lang", "summary", "overdue"), [
    ("fi", "Määräaika: Alueiden kehittämisen lainvalmisteluryhmä: ehdotukset", "Myöhässä"),
    ("sv", "Tidsfrist: Alueiden kehittämisen lainvalmisteluryhmä: förslag", "Försenad"),
    ("en", "Deadline: Alueiden kehittämisen lainvalmisteluryhmä: proposals", "Overdue"),
])
def test_a_feeds_ics_titles_are_in_its_language(lang: str, summary: str, overdue: str) -> None:
    cycle = Item("case-9-planning", "meeting", "cycle", "Vuosiseuranta 2026", date(2026, 2, 3), date(2026, 2, 3), 9,
                 False, False, "clock.item.planning", (("year", "2026"),))
    cal = icalendar.Calendar.from_ical(render_ics([_item(), cycle], "x", lang, datetime(2026, 3, 1, tzinfo=UTC)))
    events = {str(e["uid"]).split("@")[0]: e for e in cal.walk("VEVENT")}
    assert str(events["case-7-proposals"]["summary"]) == summary
    assert str(events["case-7-proposals"]["description"]) == overdue
    planning = {"fi": "Kokous: Vuosiseuranta 2026: suunnittelukokous",
                "sv": "Möte: Årlig uppföljning 2026: planeringsmöte",
                "en": "Meeting: Annual follow-up 2026: planning meeting"}[lang]
    assert str(events["case-9-planning"]["summary"]) == planning


def test_a_reminders_ics_title_is_in_the_recipients_language(ctx) -> None:
    fx = create_agreement(ctx, parties=3, languages={"municipality:020": "sv", "municipality:108": "en"})
    assert fx.keys == ["wellbeing_county:08", "municipality:020", "municipality:108"]
    render_mail(ctx)
    with Session(ctx.db.engine) as s:
        rows = s.execute(select(OutboxMessage).where(OutboxMessage.ics.is_not(None))).scalars().all()  # type: ignore[union-attr]
    titles = {}
    for row in rows:
        event = next(iter(icalendar.Calendar.from_ical(row.ics).walk("VEVENT")))
        titles[row.language] = str(event["summary"])
    assert titles == {"fi": "Määräaika: Pirkanmaan puitesopimus", "sv": "Tidsfrist: Pirkanmaan puitesopimus",
                      "en": "Deadline: Pirkanmaan puitesopimus"}


def test_the_swedish_wheel_says_natverk() -> None:
    for render in (render_svg, render_page):
        sv = render([_item()], 2026, "sv", None)
        assert "Årsklocka 2026: hela nätverket" in sv and "verkosto" not in sv
        assert "förslag" in sv and "försenad" in sv and "Utnämningar" in sv
        assert "Vuosikello 2026: koko verkosto" in render([_item()], 2026, "fi", None)
        assert "Annual clock 2026: the whole network" in render([_item()], 2026, "en", None)
