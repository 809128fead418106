"""Reminders end to end: definitions arm timers, the sweep fires them, a real SMTP server receives the mail."""

from __future__ import annotations

from datetime import UTC, date, datetime

import icalendar
from sqlalchemy import select
from sqlmodel import Session

from engine.calendar import HELSINKI
from engine.models import OutboxMessage, Timer
from tests.support.builders import create_agreement
from workflows.agreement import service
from workflows.agreement.schemas import DecisionIn


def _timers(ctx, case_id: int) -> list[Timer]:
    with Session(ctx.db.engine) as s:
        return list(s.execute(select(Timer).where(Timer.case_id == case_id).order_by(Timer.due_at)).scalars())


def _local(t: datetime) -> datetime:
    return t.astimezone(HELSINKI)


def test_party_reminders_land_on_finnish_business_days(ctx) -> None:
    # Deadline on Midsummer Eve 19.6.2026 moves to Monday 22.6.2026.
    fx = create_agreement(ctx, parties=2, deadline=date(2026, 6, 19))
    party_case = fx.id + 1
    timers = _timers(ctx, party_case)
    reminders = [t for t in timers if t.kind == "reminder"]
    assert [(_local(t.due_at).date(), _local(t.due_at).hour) for t in reminders] == [
        (date(2026, 6, 8), 9), (date(2026, 6, 15), 9),
        (date(2026, 6, 18), 9),  # -P1D = Sun 21.6 -> previous business day Thu 18.6 (19.6 is Midsummer Eve)
        (date(2026, 6, 23), 9), (date(2026, 6, 30), 9), (date(2026, 7, 7), 9), (date(2026, 7, 14), 9),
    ]
    deadline = next(t for t in timers if t.kind == "deadline")
    assert _local(deadline.due_at) == datetime(2026, 6, 22, 23, 59, 59, tzinfo=HELSINKI)


def test_christmas_eve_deadline_moves_to_monday_28_12(ctx) -> None:
    ctx.clock.set(datetime(2026, 11, 2, 8, tzinfo=UTC))
    fx = create_agreement(ctx, parties=1, deadline=date(2026, 12, 24))
    deadline = next(t for t in _timers(ctx, fx.id + 1) if t.kind == "deadline")
    assert _local(deadline.due_at).date() == date(2026, 12, 28)


def test_dst_changes_neither_lose_nor_double_a_reminder(ctx) -> None:
    # Deadline Tuesday 31.3.2026, just after the spring change on Sunday 29.3.2026.
    fx = create_agreement(ctx, parties=1, deadline=date(2026, 3, 31), reminder_offsets=["-P3D", "-P2D", "-P1D"])
    due = [t.due_at for t in _timers(ctx, fx.id + 1) if t.kind == "reminder"]
    # -P3D Sat 28.3 and -P2D Sun 29.3 both move to Fri 27.3 (EET, 07:00 UTC) and are armed once;
    # -P1D Mon 30.3 is EEST (06:00 UTC); then the weekly overdue reminders (P7D, P14D, P21D) in EEST.
    assert due == [datetime(2026, 3, 27, 7, tzinfo=UTC), datetime(2026, 3, 30, 6, tzinfo=UTC),
                   datetime(2026, 4, 7, 6, tzinfo=UTC), datetime(2026, 4, 14, 6, tzinfo=UTC),
                   datetime(2026, 4, 21, 6, tzinfo=UTC)]
    ctx.clock.set(datetime(2026, 3, 31, 12, tzinfo=UTC))
    ctx.tick()
    with Session(ctx.db.engine) as s:
        sent = s.execute(select(OutboxMessage).where(OutboxMessage.template == "party_reminder")).scalars().all()
    assert len(sent) == 1  # coalesced: one per person and deadline however late the sweep ran


def test_reminder_email_as_received_by_smtp(smtp_ctx, smtp_server) -> None:
    ctx = smtp_ctx
    ctx.clock.set(datetime(2026, 12, 1, 8, tzinfo=UTC))
    fx = create_agreement(ctx, parties=2, deadline=date(2026, 12, 24),
                          languages={"municipality:020": "sv"})
    ctx.tick()  # the invitations
    invitations = smtp_server.messages
    assert sorted(m.rcpt_tos[0] for m in invitations) == sorted(u.person.email for us in fx.signatories.values()
                                                                for u in us)
    smtp_server.handler.clear()
    # -P7D from the effective deadline Mon 28.12.2026 is Mon 21.12.2026 09:00 Helsinki
    ctx.clock.set(datetime(2026, 12, 21, 7, 0, tzinfo=UTC))
    ctx.tick()
    by_lang = {m.message["Content-Language"]: m for m in smtp_server.messages}
    assert set(by_lang) == {"fi", "sv"}
    sv = by_lang["sv"].message
    assert sv["Subject"] == "Påminnelse om tidsfrist: Pirkanmaan puitesopimus – tidsfrist mån 28.12.2026"
    assert by_lang["fi"].message["Subject"] == (
        "Määräaikamuistutus: Pirkanmaan puitesopimus – määräaika ma 28.12.2026")
    assert sv["To"] == fx.signatories["municipality:020"][0].person.email
    assert sv["List-Id"] == f"<case-{fx.id + 2}.vuosikello.local>"
    types = [p.get_content_type() for p in sv.walk()]
    assert {"text/plain", "text/html", "text/calendar"} <= set(types)
    text = sv.get_body(("plain",)).get_content()
    assert "Underteckna" in text or "organ" in text
    assert "http://testserver/" in text
    ics = next(p for p in sv.walk() if p.get_content_type() == "text/calendar")
    cal = icalendar.Calendar.from_ical(ics.get_payload(decode=True))
    event = next(iter(cal.walk("VEVENT")))
    assert event.decoded("dtstart") == date(2026, 12, 28)
    assert str(event["summary"]) == "Tidsfrist: Pirkanmaan puitesopimus"  # the recipient's language, not Finnish
    # the same logical reminder always has the same Message-ID
    ids = {m.message["Message-ID"] for m in smtp_server.messages}
    with Session(ctx.db.engine) as s:
        stored = set(s.execute(select(OutboxMessage.message_id).where(
            OutboxMessage.template == "party_reminder")).scalars())
    assert ids == stored and len(ids) == 2


def test_signed_party_gets_no_more_reminders(smtp_ctx, smtp_server) -> None:
    ctx = smtp_ctx
    fx = create_agreement(ctx, parties=2, deadline=date(2026, 6, 19))
    key = fx.keys[0]
    user = fx.signatories[key][0]
    ctx.engine.run(lambda uow: service.decide(uow, fx.id, key, DecisionIn(
        outcome="approved", body="Aluehallitus", decided_on=date(2026, 3, 2), section="58"), user.actor))
    ctx.engine.run(lambda uow: service.sign(uow, fx.id, key, user.actor))
    ctx.tick()
    smtp_server.handler.clear()
    ctx.clock.set(datetime(2026, 7, 20, 12, tzinfo=UTC))
    ctx.tick()
    recipients = {m.rcpt_tos[0] for m in smtp_server.messages}
    assert user.person.email not in recipients
    other = fx.signatories[fx.keys[1]][0].person.email
    assert other in recipients
    # the coordinator was told the day after the deadline, once
    escalations = [m for m in smtp_server.messages if m.rcpt_tos[0] == fx.coordinator.person.email]
    assert len(escalations) == 1 and escalations[0].message["Subject"].startswith("Määräaika ylittynyt")
    with Session(ctx.db.engine):
        party = [t for t in _timers(ctx, fx.id + 1)]
    assert all(t.status != "pending" for t in party)


def test_deadline_marks_party_overdue_late_but_never_dropped(ctx) -> None:
    fx = create_agreement(ctx, parties=1, deadline=date(2026, 6, 19))
    ctx.clock.set(datetime(2026, 9, 1, tzinfo=UTC))  # the service was down all summer
    ctx.tick()
    from engine.models import Event
    with Session(ctx.db.engine) as s:
        names = [e.name for e in s.execute(select(Event).where(Event.case_id == fx.id + 1)).scalars()]
    assert names.count("PartyOverdue") == 1
    ctx.tick()
    with Session(ctx.db.engine) as s:
        again = [e.name for e in s.execute(select(Event).where(Event.case_id == fx.id + 1)).scalars()]
    assert again == names


def test_daily_digest_replaces_individual_reminders(ctx) -> None:
    fx = create_agreement(ctx, parties=2, deadline=date(2026, 6, 19))
    user = fx.signatories[fx.keys[0]][0]
    with Session(ctx.db.write_engine) as s:
        from engine.models import Person
        p = s.get(Person, user.id)
        p.digest = True
        s.commit()
    ctx.clock.set(datetime(2026, 6, 15, 6, 30, tzinfo=UTC))  # 09:30 Helsinki on the -P7D day
    ctx.tick()
    with Session(ctx.db.engine) as s:
        mine = s.execute(select(OutboxMessage).where(OutboxMessage.person_id == user.id)).scalars().all()
    statuses = sorted((m.template, m.status) for m in mine)
    assert ("digest", "captured") in statuses
    assert ("party_reminder", "digested") in statuses
    assert not any(t == "party_reminder" and st == "captured" for t, st in statuses)
