"""The email sandbox's limits: an administrator's template cannot freeze a worker, exhaust memory or read what its
reader should not; at send time a template over a limit is a contained, logged failure; the words stay right."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import date

import pytest
from sqlalchemy import select
from sqlmodel import Session

from engine.errors import InvalidInput
from engine.models import Case, OutboxMessage, Person
from notifications import template_store
from notifications.render import NotPlainData, RenderLimitExceeded, plain, render
from notifications.template_store import SAMPLE, EmailTemplate, load_overrides
from tests.support.builders import create_agreement, render_mail

ATTACKS = {
    "power": "{{ 9**(9**7) }}",
    "product": "{% set a = 3**2000 %}{{ a * a * a * a }}",
    "repeat": "{{ 'x' * 10**9 }}",
    "list repeat": "{{ ([1] * 10**8)|length }}",
    "nested loops": "{% set a = 'xxxxxxxxxx' %}{% for i in a %}{% for j in a %}{% for k in a %}{% for l in a %}"
                    "{% for m in a %}.{% endfor %}{% endfor %}{% endfor %}{% endfor %}{% endfor %}",
    "silent loops": "{% set a = 'x' * 100000 %}{% for i in a %}{% for j in a %}{% endfor %}{% endfor %}",
    "concat doubling": "{% set a = 'x' * 100000 %}{% set a = a ~ a %}{% set a = a ~ a %}{% set a = a ~ a %}"
                       "{% set a = a ~ a %}{% set a = a ~ a %}{% set a = a ~ a %}{% set a = a ~ a %}",
    "block doubling": "{% set a %}{{ 'x' * 100000 }}{% endset %}{% set b %}{{ a }}{{ a }}{% endset %}"
                      "{% set c %}{{ b }}{{ b }}{% endset %}{% set d %}{{ c }}{{ c }}{% endset %}"
                      "{% set e %}{{ d }}{{ d }}{% endset %}",
    "output in a loop": "{% set a = 'x' * 200000 %}{% for i in 'abcdefghij' %}{{ a }}{% endfor %}",
    "or in a loop": "{% set a = 'x' * 200000 %}{% for i in 'abcdefghij' %}{{ a or '' }}{% endfor %}",
    "condition in a loop": "{% set a = 'x' * 200000 %}{% for i in 'abcdefghij' %}{{ a if i else '' }}{% endfor %}",
    "center": "{{ 'x'|center(10**9) }}",
    "replace": "{{ ('ab' * 1000)|replace('', 'y' * 5000) }}",
    "join": "{% set a = 'x' * 1000 %}{{ (a|list)|join(a * 300) }}",
    "format width": "{{ '%999999999s' % 1 }}",
    "format filter": "{{ '%999999999s'|format(1) }}",
    "slices": "{% set a = 'x' * 200000 %}{% set b = a[:] ~ a[1:] ~ a[2:] ~ a[3:] ~ a[4:] ~ a[5:] %}",
}


def _override(part: str, source: str, name: str = "party_reminder", lang: str = "fi") -> tuple[tuple[str, str], ...]:
    return ((f"{lang}/{name}.{part}.j2", source),)


@pytest.mark.parametrize("name", list(ATTACKS))
def test_what_would_take_time_or_memory_is_refused_quickly(name: str) -> None:
    started = time.perf_counter()
    with pytest.raises(RenderLimitExceeded) as refused:
        render("party_reminder", "fi", SAMPLE, _override("txt", ATTACKS[name]))
    assert time.perf_counter() - started < 2.0, name
    assert refused.value.part == "txt" and refused.value.kind in {"size", "number", "loops"}


def test_the_wall_clock_budget_stops_a_slow_render() -> None:
    from notifications.render import Limits

    slow = "{% set a = 'x' * 3000 %}{% for i in a %}{{ (a|list|sort)|length }}{% endfor %}"
    limits = Limits(seconds=0.05, chars=10**9, iterations=10**6)
    started = time.perf_counter()
    with pytest.raises(RenderLimitExceeded) as refused:
        render("party_reminder", "fi", SAMPLE, _override("txt", slow), limits=limits)
    assert refused.value.kind == "time" and time.perf_counter() - started < 1.0


def test_within_the_limits_a_template_computes_and_loops() -> None:
    ok = "{{ 2 ** 10 }} {{ 'ab' * 3 }} {% for i in 'xyz' %}{{ i }}{% endfor %} {{ person.name ~ '!' }} " \
         "{{ '%05d' % 42 }} {{ 'abc'|center(7) }}|"
    text = render("party_reminder", "fi", SAMPLE, _override("txt", ok)).text
    assert text == "1024 ababab xyz Maija Meikäläinen! 00042   abc  |\n"


def test_translations_made_at_compile_time_are_the_catalogue_s_and_placeholders_are_escaped() -> None:
    hostile = {**SAMPLE, "case": {**SAMPLE["case"], "title": "<b>Sopimus</b> & muut"}, "parent": None}
    for lang, words in {"fi": "Määräaikamuistutus", "sv": "Påminnelse om tidsfrist", "en": "Deadline reminder"}.items():
        mail = render("party_reminder", lang, hostile)
        assert mail.subject.startswith(f"{words}: <b>Sopimus</b> & muut"), mail.subject
        assert "&lt;b&gt;Sopimus&lt;/b&gt; &amp; muut" in mail.html and "<b>Sopimus</b>" not in mail.html
    digest = render("digest", "sv", {**SAMPLE, "items": [{"subject": "a", "text": ""}, {"subject": "b", "text": ""}]})
    assert "Här är era öppna tidsfrister:" in digest.text  # {% pluralize %} still asks ngettext with the count


@dataclass(frozen=True)
class _Reader:
    name: str
    when: date


def test_render_takes_plain_data_only() -> None:
    person = Person(name="Maija", email="maija@example.fi", password_hash="$argon2id$secret")
    with pytest.raises(NotPlainData):
        render("party_reminder", "fi", {**SAMPLE, "person": person})
    with pytest.raises(NotPlainData):
        plain({"settings": object()})
    assert plain({"reader": _Reader("Maija", date(2026, 1, 2)), "n": [1, (2, 3)]}) == {
        "reader": {"name": "Maija", "when": date(2026, 1, 2)}, "n": [1, [2, 3]]}


PROBES = ["{{ person.password_hash }}", "{{ person.email }}", "{{ recipient.__class__ }}", "{{ person.__class__ }}",
          "{{ person.items() }}", "{{ settings }}", "{{ config }}", "{{ self.__class__ }}", "{{ self.body() }}",
          "{{ range(3) }}", "{{ lipsum() }}", "{{ cycler }}", "{{ namespace() }}", "{{ joiner }}",
          "{{ case.__init__ }}",
          "{{ link.__class__.__mro__ }}", "{{ ''.__class__.__mro__[1].__subclasses__() }}",
          "{{ gettext.__globals__ }}", "{% include 'party_reminder.txt.j2' %}{{ person.password_hash }}"]


@pytest.mark.parametrize("probe", PROBES)
def test_an_edited_template_cannot_reach_beyond_its_data(probe: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        template_store.check("party_reminder", "fi", {"txt": probe})
    assert refused.value.field in {"template", "txt"}


def _person(ctx, person_id: int) -> Person:
    with Session(ctx.db.engine) as s:
        person = s.get(Person, person_id)
        assert person is not None
        return person


def _store_override(ctx, name: str, part: str, source: str, lang: str = "fi") -> None:
    """Store an edit directly (as one saved before a limit existed, or one that only real data makes heavy)."""
    with Session(ctx.db.engine) as s:
        s.add(EmailTemplate(name=name, lang=lang, part=part, source=source, updated_at=ctx.clock.now()))
        s.commit()
        load_overrides(s, ctx.registry)


def test_what_a_sent_mail_shows_of_its_reader_is_their_name(ctx) -> None:
    _store_override(ctx, "agreement_circulated", "txt",
                    "{{ person }}|{{ person.password_hash is defined }}|{{ person.email is defined }}|{{ link }}")
    agreement = create_agreement(ctx, parties=1, circulate=False)
    signer = agreement.signatories[agreement.keys[0]][0]
    with Session(ctx.db.engine) as s:
        row = s.get(Person, signer.person.id)
        row.password_hash = "$argon2id$v=19$m=65536,t=3,p=4$c2VjcmV0$aGFzaA"
        s.commit()
    from workflows.agreement import service

    ctx.engine.run(lambda uow: service.circulate(uow, agreement.id, agreement.coordinator.actor))
    render_mail(ctx)
    with Session(ctx.db.engine) as s:
        mail = s.execute(select(OutboxMessage).where(OutboxMessage.template == "agreement_circulated",
                                                     OutboxMessage.person_id == signer.person.id)).scalar_one()
    shown, has_hash, has_email, link = mail.text.strip().split("|")
    assert shown == str({"name": signer.person.name}) and (has_hash, has_email) == ("False", "False")
    assert "argon2" not in mail.text and signer.person.email not in mail.text
    assert link.startswith("http://testserver/")  # the link meant for the reader is there


def test_at_send_time_a_template_over_a_limit_is_a_contained_logged_failure(ctx, caplog) -> None:
    _store_override(ctx, "agreement_circulated", "txt", "{{ 9**(9**7) }}")
    agreement = create_agreement(ctx, parties=2, circulate=False)
    from workflows.agreement import service

    started = time.perf_counter()
    with caplog.at_level(logging.ERROR, logger="notifications.outbox"):
        ctx.engine.run(lambda uow: service.circulate(uow, agreement.id, agreement.coordinator.actor))
        render_mail(ctx)  # the mail job, before it sends
    assert time.perf_counter() - started < 5.0
    with Session(ctx.db.engine) as s:
        assert s.get(Case, agreement.id).state == "circulating"  # the change that mails went on
        rows = s.execute(select(OutboxMessage).where(OutboxMessage.template == "agreement_circulated")).scalars().all()
    assert len(rows) == 2 and {r.status for r in rows} == {"failed"}
    assert all("number" in (r.last_error or "") and "too large" in (r.last_error or "") for r in rows)
    assert any("agreement_circulated" in r.getMessage() and "failed" in r.getMessage() for r in caplog.records)
    # a reader in another language is not affected: the edit is Finnish only
    _store_override(ctx, "agreement_circulated", "txt", "{{ 9**(9**7) }}", lang="sv")
    assert render("agreement_circulated", "en", SAMPLE,
                  ctx.registry.services["template_overrides"]).text.strip()


def test_a_digest_that_cannot_render_keeps_its_reminders_held(ctx, caplog) -> None:
    from datetime import UTC, datetime

    fx = create_agreement(ctx, parties=1, deadline=date(2026, 6, 19))
    user = fx.signatories[fx.keys[0]][0]
    with Session(ctx.db.write_engine) as s:
        row = s.get(Person, user.id)
        assert row is not None
        row.digest = True
        s.commit()
    _store_override(ctx, "digest", "txt", "{% for a in items %}{{ 'x' * 10**9 }}{% endfor %}")
    ctx.clock.set(datetime(2026, 6, 15, 6, 30, tzinfo=UTC))  # 09:30 Helsinki on the -P7D day
    with caplog.at_level(logging.ERROR, logger="notifications.digest"):
        ctx.tick()
    with Session(ctx.db.engine) as s:
        mine = s.execute(select(OutboxMessage.template, OutboxMessage.status)
                         .where(OutboxMessage.person_id == user.id)).all()
    assert ("party_reminder", "held") in mine and not any(t == "digest" for t, _ in mine), mine
    assert any("stay held" in r.getMessage() for r in caplog.records)
    with Session(ctx.db.write_engine) as s:  # fixed: the next digest takes them
        template_store.revert(s, ctx.registry, "digest", "fi")
        s.commit()
    ctx.clock.set(datetime(2026, 6, 16, 6, 30, tzinfo=UTC))
    ctx.tick()
    with Session(ctx.db.engine) as s:
        mine = s.execute(select(OutboxMessage.template, OutboxMessage.status)
                         .where(OutboxMessage.person_id == user.id)).all()
    assert ("party_reminder", "digested") in mine and any(t == "digest" for t, _ in mine), mine
