"""Tests for notifications.mime: message structure, headers, iCalendar, and what a real server receives."""

from __future__ import annotations

import asyncio
import re
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage

import icalendar
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from notifications.mime import MailSpec, build_message, build_wire, deadline_ics, message_id, to_bytes
from notifications.render import render
from notifications.smtp import SmtpConfig, SmtpSender
from tests.support.smtp_server import ReceivedMessage, SmtpTestServer

# Registers the smtp_server fixture (harmless if tests/conftest.py lists it too).
pytest_plugins = ["tests.support.smtp_fixtures"]

KEY = "reminder:case=12:party=3:deadline=2026-12-28:offset=-P7D:person=5"
DOMAIN = "vuosikello.local"
DEADLINE = date(2026, 12, 28)
SUBJECT = "Muistutus: lausunnon määräaika lähestyy – Åbo stad / Pöytäkirja"
TEXT = "Hei Matti,\n\nlausunnon määräaika on ma 28.12.2026.\n\nVuosikello\n"
HTML = "<p>Hei Matti,</p><p>lausunnon määräaika on <strong>ma 28.12.2026</strong>.</p>"


def make_ics(
    deadline_date: date = DEADLINE,
    url: str | None = "https://vuosikello.local/case/12",
    alarm_days_before: int | None = 7,
) -> bytes:
    """The deadline calendar used by most tests."""
    return deadline_ics(
        "deadline-case-12-party-3@vuosikello.local",
        "Määräaika: lausunto (Tampereen kaupunki)",
        "Lausunto yhteistyösopimuksesta.\nSvar senast måndag.",
        deadline_date,
        url=url,
        alarm_days_before=alarm_days_before,
        dtstamp=datetime(2026, 12, 1, 8, 30, tzinfo=UTC),
    )


def make_spec(**overrides: object) -> MailSpec:
    """A Finnish reminder with an .ics attachment."""
    spec = MailSpec(
        sender="Vuosikello <noreply@vuosikello.local>",
        to=["Matti Meikäläinen <matti@tampere.example>", "kirjaamo@pirkanmaa.example"],
        cc=["Åsa Öberg <asa@abo.example>"],
        subject=SUBJECT,
        text=TEXT,
        html=HTML,
        message_key=KEY,
        list_id="case-12.vuosikello.local",
        domain=DOMAIN,
        ics=make_ics(),
        ics_filename="maaraaika.ics",
        headers={"Reply-To": "kirjaamo@pirkanmaa.example"},
        lang="fi",
        date=datetime(2026, 12, 21, 7, 0, tzinfo=UTC),
    )
    return replace(spec, **overrides)


def deliver(server: SmtpTestServer, message: EmailMessage) -> ReceivedMessage:
    """Send through SmtpSender to the real test server and return what it stored."""

    async def scenario() -> None:
        config = SmtpConfig(server.hostname, server.port, local_hostname="localhost", timeout=5)
        async with SmtpSender(config) as sender:
            await sender.send(message)

    asyncio.run(scenario())
    (received,) = server.messages
    return received


def content_types(message: EmailMessage) -> list[str]:
    """Content types of all parts, depth first."""
    return [part.get_content_type() for part in message.walk()]


# -- message_id ---------------------------------------------------------------------------------


def test_message_id_is_deterministic_and_well_formed() -> None:
    first = message_id(KEY, DOMAIN)
    assert first == message_id(KEY, DOMAIN)
    assert re.fullmatch(r"<[0-9a-f]{32}@vuosikello\.local>", first)
    assert message_id(KEY + ":x", DOMAIN) != first
    assert message_id(KEY, "other.example").split("@")[0] == first.split("@")[0]


@given(st.text(max_size=200), st.text(max_size=200))
def test_message_id_depends_only_on_the_key(key: str, other: str) -> None:
    assert message_id(key, DOMAIN) == message_id(key, DOMAIN)
    assert (message_id(key, DOMAIN) == message_id(other, DOMAIN)) == (key == other)


# -- build_message (no network) --------------------------------------------------------------------


def test_headers() -> None:
    msg = build_message(make_spec())
    assert msg["Message-ID"] == message_id(KEY, DOMAIN)
    assert msg["List-Id"] == "<case-12.vuosikello.local>"
    assert msg["Content-Language"] == "fi"
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["X-Auto-Response-Suppress"] == "All"
    assert msg["Reply-To"] == "kirjaamo@pirkanmaa.example"
    assert msg["Date"] == "Mon, 21 Dec 2026 07:00:00 +0000"
    assert msg["Subject"] == SUBJECT
    assert [a.addr_spec for a in msg["To"].addresses] == [
        "matti@tampere.example",
        "kirjaamo@pirkanmaa.example",
    ]
    assert [a.display_name for a in msg["Cc"].addresses] == ["Åsa Öberg"]


def test_structure_with_calendar() -> None:
    msg = build_message(make_spec())
    assert content_types(msg) == [
        "multipart/mixed",
        "multipart/alternative",
        "text/plain",
        "text/html",
        "text/calendar",
    ]


def test_structure_without_calendar_is_plain_alternative() -> None:
    msg = build_message(make_spec(ics=None))
    assert content_types(msg) == ["multipart/alternative", "text/plain", "text/html"]


def test_wire_form_is_7bit_with_encoded_headers() -> None:
    raw = to_bytes(build_message(make_spec()))
    assert raw.isascii()
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    assert b"Subject: =?utf-8?" in raw


def test_naive_datetimes_are_taken_as_utc() -> None:
    msg = build_message(make_spec(date=datetime(2026, 12, 21, 7, 0)))
    assert msg["Date"] == "Mon, 21 Dec 2026 07:00:00 +0000"
    raw = deadline_ics("u@x", "s", "d", DEADLINE, dtstamp=datetime(2026, 12, 1, 8, 30))
    assert b"DTSTAMP:20261201T083000Z" in raw


def test_same_spec_gives_identical_bytes() -> None:
    assert to_bytes(build_message(make_spec())) == to_bytes(build_message(make_spec()))


def test_extra_headers_replace_fixed_ones() -> None:
    msg = build_message(make_spec(headers={"Auto-Submitted": "auto-replied", "X-Case": "12"}))
    assert msg.get_all("Auto-Submitted") == ["auto-replied"]
    assert msg["X-Case"] == "12"


def test_to_bytes_strips_bcc_without_touching_the_message() -> None:
    msg = build_message(make_spec(headers={"Bcc": "hidden@example.fi"}))
    assert b"hidden@example.fi" not in to_bytes(msg)
    assert msg["Bcc"] == "hidden@example.fi"


def test_ascii_subject_that_looks_like_an_encoded_word_survives() -> None:
    subject = "=?utf-8?q?not_encoded?= literally"
    raw = to_bytes(build_message(make_spec(subject=subject)))
    assert message_from_bytes(raw, policy=policy.default)["Subject"] == subject


@pytest.mark.parametrize(
    "overrides",
    [
        {"subject": "Hei\r\nBcc: victim@example.fi"},
        {"to": ["a@example.fi\nBcc: victim@example.fi"]},
        {"headers": {"X-Evil": "a\rb"}},
        {"to": []},
        {"lang": "de"},
        {"ics_filename": 'a".ics'},
    ],
)
def test_invalid_specs_are_rejected(overrides: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        build_message(make_spec(**overrides))


@settings(max_examples=200, deadline=None)
@given(
    subject=st.text(st.sampled_from("abcxyz ABC012=?_-.:,'\"()<>@äöåÄÖÅ€–"), min_size=1, max_size=150).filter(
        lambda s: s == s.strip()
    ),
    body=st.text(st.sampled_from("ab äö=.-\n"), max_size=300),
)
def test_subject_and_body_round_trip(subject: str, body: str) -> None:
    raw = to_bytes(build_message(make_spec(subject=subject, text=body, ics=None)))
    parsed = message_from_bytes(raw, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    assert parsed["Subject"] == subject
    plain = parsed.get_body(("plain",))
    assert plain is not None
    assert plain.get_content().replace("\r\n", "\n").removesuffix("\n") == body.removesuffix("\n")


def test_long_recipient_lists_are_folded_within_78_characters() -> None:
    to = [f"Kirjaamo {n} Pirkkalan kunta <kirjaamo{n}@pirkkala.example>" for n in range(12)]
    raw = to_bytes(build_message(make_spec(to=to)))
    header_lines = raw.split(b"\r\n\r\n")[0].split(b"\r\n")
    assert max(len(line) for line in header_lines) <= 78
    parsed = message_from_bytes(raw, policy=policy.default)
    assert [a.addr_spec for a in parsed["To"].addresses] == [f"kirjaamo{n}@pirkkala.example" for n in range(12)]


# Unquoted display names: whitespace runs collapse by RFC 5322 semantics, so generate single spaces.
NAMES = st.lists(st.text(st.sampled_from("abcxyzABCäöåÄÖÅ-"), min_size=1, max_size=12), min_size=1, max_size=4).map(
    " ".join
)
LOCALS = st.text(st.sampled_from("abcxyz0123.-_"), min_size=1, max_size=30).filter(
    lambda s: not s.startswith(".") and not s.endswith(".") and ".." not in s
)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(NAMES, LOCALS), min_size=1, max_size=15))
def test_address_lists_round_trip_and_fold(people: list[tuple[str, str]]) -> None:
    to = [f"{name} <{local}@kunta.example>" for name, local in people]
    raw = to_bytes(build_message(make_spec(to=to, cc=[])))
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    parsed = message_from_bytes(raw, policy=policy.default)
    addresses = parsed["To"].addresses
    assert [(a.display_name, a.addr_spec) for a in addresses] == [
        (name, f"{local}@kunta.example") for name, local in people
    ]


# -- deadline_ics -------------------------------------------------------------------------------------


def test_deadline_ics_is_an_all_day_publish_event() -> None:
    raw = make_ics()
    assert b"PRODID:-//Vuosikello//EN" in raw
    assert b"METHOD:PUBLISH" in raw
    assert b"DTSTART;VALUE=DATE:20261228" in raw
    assert b"DTEND;VALUE=DATE:20261229" in raw
    calendar = icalendar.Calendar.from_ical(raw)
    assert str(calendar["VERSION"]) == "2.0"
    (event,) = calendar.walk("VEVENT")
    assert event["UID"] == "deadline-case-12-party-3@vuosikello.local"
    assert event["DTSTART"].dt == DEADLINE
    assert event["DTEND"].dt == DEADLINE + timedelta(days=1)
    assert event["DTSTAMP"].dt == datetime(2026, 12, 1, 8, 30, tzinfo=UTC)
    assert str(event["SUMMARY"]) == "Määräaika: lausunto (Tampereen kaupunki)"
    assert str(event["DESCRIPTION"]) == "Lausunto yhteistyösopimuksesta.\nSvar senast måndag."
    assert str(event["URL"]) == "https://vuosikello.local/case/12"
    (alarm,) = event.walk("VALARM")
    assert alarm["TRIGGER"].dt == timedelta(days=-7)


def test_deadline_ics_is_stable_and_optional_parts_can_be_left_out() -> None:
    assert make_ics() == make_ics()
    raw = make_ics(url=None, alarm_days_before=None)
    assert b"URL" not in raw
    assert b"VALARM" not in raw


def test_deadline_ics_rejects_datetimes_and_negative_alarms() -> None:
    with pytest.raises(TypeError):
        make_ics(deadline_date=datetime(2026, 12, 28, 12, 0, tzinfo=UTC))
    with pytest.raises(ValueError):
        make_ics(alarm_days_before=-1)


# -- what a real SMTP server receives -----------------------------------------------------------------


def test_server_receives_finnish_subject_parts_and_calendar(smtp_server: SmtpTestServer) -> None:
    received = deliver(smtp_server, build_message(make_spec()))
    msg = received.message

    assert received.mail_from == "noreply@vuosikello.local"
    assert received.rcpt_tos == ["matti@tampere.example", "kirjaamo@pirkanmaa.example", "asa@abo.example"]
    assert msg["Subject"] == SUBJECT
    assert msg["Message-ID"] == message_id(KEY, DOMAIN)
    assert msg["List-Id"] == "<case-12.vuosikello.local>"
    assert msg["Content-Language"] == "fi"
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["X-Auto-Response-Suppress"] == "All"
    assert msg["To"].addresses[0].display_name == "Matti Meikäläinen"

    plain = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    assert plain is not None and html is not None
    assert plain.get_content().replace("\r\n", "\n") == TEXT
    assert "<strong>ma 28.12.2026</strong>" in html.get_content()

    (attachment,) = list(msg.iter_attachments())
    assert attachment.get_content_type() == "text/calendar"
    assert attachment.get_param("method") == "PUBLISH"
    assert attachment.get_content_charset() == "utf-8"
    assert attachment.get_filename() == "maaraaika.ics"
    calendar = icalendar.Calendar.from_ical(attachment.get_payload(decode=True))
    (event,) = calendar.walk("VEVENT")
    assert event["DTSTART"].dt == DEADLINE
    assert str(event["SUMMARY"]) == "Määräaika: lausunto (Tampereen kaupunki)"


def test_same_key_gives_the_same_message_id_on_the_wire(smtp_server: SmtpTestServer) -> None:
    first = build_message(make_spec(date=None))
    second = build_message(make_spec(date=None, subject="Toinen muistutus"))

    async def scenario() -> None:
        config = SmtpConfig(smtp_server.hostname, smtp_server.port, local_hostname="localhost", timeout=5)
        async with SmtpSender(config) as sender:
            await sender.send(first)
            await sender.send(second)

    asyncio.run(scenario())
    ids = [m.message["Message-ID"] for m in smtp_server.messages]
    assert ids == [message_id(KEY, DOMAIN)] * 2


def test_swedish_message_without_calendar(smtp_server: SmtpTestServer) -> None:
    subject = "Påminnelse: tidsfristen närmar sig"
    spec = make_spec(ics=None, lang="sv", subject=subject, to=["a@abo.example"], cc=[])
    received = deliver(smtp_server, build_message(spec))
    assert received.message["Content-Language"] == "sv"
    assert received.message["Subject"] == subject
    assert received.message.get_content_type() == "multipart/alternative"
    assert list(received.message.iter_attachments()) == []


@pytest.mark.parametrize(("lang", "subject", "sentence"), [
    ("fi", "Määräaika ylittynyt: Pöytäkirja <1> – määräaika ma 28.12.2026",
     "Määräaika ma 28.12.2026 on ylittynyt, eikä organisaationne (Åbo) osuus ole vielä valmis."),
    ("sv", "Tidsfristen har gått ut: Pöytäkirja <1> – tidsfrist mån 28.12.2026",
     "Tidsfristen mån 28.12.2026 har gått ut och er organisations (Åbo) del är ännu inte klar."),
])
def test_a_rendered_template_arrives_in_the_recipients_language(smtp_server: SmtpTestServer, lang: str,
                                                                subject: str, sentence: str) -> None:
    context = {"person": {"name": "Åsa Öberg"}, "case": {"title": "Pöytäkirja <1>"}, "parent": None,
               "organisation": {"name_fi": "Åbo", "name_sv": "Åbo"}, "deadline": DEADLINE, "overdue": True,
               "actions": {}, "link": "https://vuosikello.local/case/12"}
    mail = render("party_reminder", lang, context)
    spec = make_spec(lang=lang, subject=mail.subject, text=mail.text, html=mail.html, to=["asa@abo.example"], cc=[])
    received = deliver(smtp_server, build_message(spec)).message
    assert received["Subject"] == subject and received["Content-Language"] == lang
    assert sentence in received.get_body(("plain",)).get_content()
    html = received.get_body(("html",)).get_content()
    assert f'<html lang="{lang}">' in html and "Pöytäkirja &lt;1&gt;" in html and "<1>" not in html


# -- build_wire: the message written directly, byte for byte what the email package writes ---------------------


def _same_as_generator(spec: MailSpec) -> bytes:
    wire = build_wire(spec)
    assert wire is not None
    for cte_type in ("8bit", "7bit"):
        assert wire.data == to_bytes(build_message(spec), cte_type=cte_type)
    return wire.data


@pytest.mark.parametrize(
    "overrides",
    [{}, {"ics": None}, {"cc": []}, {"headers": {}}, {"text": "a" * 200 + "\r\nb\rc\n\n", "html": ""},
     {"subject": "€" * 120}, {"subject": "=?utf-8?q?not_encoded?= literally"}, {"date": None}],
)
def test_build_wire_writes_what_the_generator_writes(overrides: dict[str, object]) -> None:
    raw = _same_as_generator(make_spec(**overrides))
    assert raw.isascii() and b"\r\n\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")


@settings(max_examples=150, deadline=None)
@given(
    subject=st.text(st.sampled_from("abcxyz ABC012=?_-.:,'\"()<>@äöåÄÖÅ€–"), min_size=1, max_size=150).filter(
        lambda s: s == s.strip()
    ),
    body=st.text(st.sampled_from("ab äö=.-\n\r\t"), max_size=300),
    people=st.lists(st.tuples(NAMES, LOCALS), min_size=1, max_size=6),
    ics=st.booleans(),
)
def test_build_wire_matches_the_generator_and_parses_back(
    subject: str, body: str, people: list[tuple[str, str]], ics: bool
) -> None:
    to = [f"{name} <{local}@kunta.example>" for name, local in people]
    spec = make_spec(subject=subject, text=body, to=to, ics=make_ics() if ics else None)
    raw = _same_as_generator(spec)
    parsed = message_from_bytes(raw, policy=policy.default)
    assert parsed["Subject"] == subject
    header_lines = raw.split(b"\r\n\r\n")[0].split(b"\r\n")
    assert all(len(line) <= 998 for line in header_lines)
    subject_lines = [line for line in header_lines if b"=?utf-8?b?" in line and b"@" not in line]
    assert all(len(line) <= 78 for line in subject_lines)
    assert all(len(word) <= 75 for line in subject_lines for word in re.findall(rb"=\?utf-8\?b\?[^?]*\?=", line))


@pytest.mark.parametrize(
    "overrides",
    [{"to": ["Test <jörg@bücher.example>"]}, {"headers": {"Bcc": "hidden@example.fi"}},
     {"headers": {"X-Note": "Pöytäkirja"}}, {"ics_filename": "määräaika.ics"}],
)
def test_build_wire_leaves_unusual_messages_to_the_email_package(overrides: dict[str, object]) -> None:
    assert build_wire(make_spec(**overrides)) is None
    build_message(make_spec(**overrides))  # which still builds them


def test_a_wire_message_has_the_envelope_of_its_email_message() -> None:
    from notifications.smtp import _envelope

    spec = make_spec(headers={})
    wire = build_wire(spec)
    assert wire is not None
    assert _envelope(wire) == _envelope(build_message(spec))
    assert _envelope(wire) == ("noreply@vuosikello.local",
                               ["matti@tampere.example", "kirjaamo@pirkanmaa.example", "asa@abo.example"])


def test_a_wire_message_arrives_as_built(smtp_server: SmtpTestServer) -> None:
    spec = make_spec(headers={})
    wire = build_wire(spec)
    assert wire is not None
    received = deliver(smtp_server, wire)  # type: ignore[arg-type]
    assert received.raw.replace(b"\r\n", b"\n") == wire.data.replace(b"\r\n", b"\n")
    assert received.message["Message-ID"] == message_id(KEY, DOMAIN)
    assert sorted(received.rcpt_tos) == ["asa@abo.example", "kirjaamo@pirkanmaa.example", "matti@tampere.example"]
