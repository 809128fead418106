"""A whole year of the annual cycle on the injected clock: requests, reminders, deadlines, report, next year."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select
from sqlmodel import Session

from engine.actors import SYSTEM
from engine.errors import Conflict, InvalidInput, InvalidTransition, NotPermitted
from engine.models import Case, OutboxMessage, Timer
from tests.support.builders import make_user
from tests.support.pdf import pdf_is_tagged, pdf_text
from workflows.cycle import reports, schedule, service
from workflows.cycle.annual_report import render_pdf, report_data
from workflows.cycle.models import AnnualReport, Measure
from workflows.cycle.read import read_cycle
from workflows.cycle.schemas import AgreeIn, CycleCreate, ReportIn, ScheduleIn, SurveyIn
from workflows.registers import service as registers
from workflows.registers.schemas import MeetingIn, StatementIn

MEASURES = [
    ("Ilmastotiekartta", "climate", "regional_council:06", "2026-06-30"),
    ("Maakuntien yhteinen toimintamalli", "operating_model", "regional_council:06", "2026-12-31"),
    ("Kehittämisen vuosikello", "contract_based_cooperation", "network:alke", "2026-09-30"),
    ("Työperäisen maahanmuuton selvitys", "work_based_immigration", "network:alke", "2026-11-30"),
    ("Sote-uudistuksen edunvalvonta", "advocacy", "regional_council:02", "2026-10-31"),
    ("Kuntaliiton tuki", "advocacy", "association:kuntaliitto", "2026-12-31"),
]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def mails(ctx, template: str) -> list[OutboxMessage]:
    with ctx.db.read_session() as s:
        return list(s.execute(select(OutboxMessage).where(OutboxMessage.template == template)
                              .order_by(OutboxMessage.id)).scalars())


def state(ctx, case_id: int) -> str:
    with ctx.db.read_session() as s:
        return s.get(Case, case_id).state


def test_a_whole_year(ctx) -> None:
    admin = make_user(ctx, roles="admin", name="Pääkäyttäjä")
    coord = make_user(ctx, org_key="association:kuntaliitto", roles="coordinator", name="Kuntaliiton koordinaattori")
    d06 = make_user(ctx, org_key="regional_council:06", name="Maakuntajohtaja 06", email="mj06@example.fi")
    d02 = make_user(ctx, org_key="regional_council:02", name="Maakuntajohtaja 02", email="mj02@example.fi")
    alke = make_user(ctx, org_key="regional_council:13", roles="", name="Alke-sihteeri", email="alke@example.fi")
    run = ctx.engine.run
    run(lambda uow: reports.add_network_member(uow, "alke", alke.id, admin.actor))
    sched = run(lambda uow: schedule.set_schedule(uow, ScheduleIn(coordinator_id=coord.id), admin.actor))
    planner_id = sched.case_id
    with pytest.raises(InvalidInput, match="^reporting_closes: must come after reporting_opens"):
        run(lambda uow: schedule.set_schedule(uow, ScheduleIn.model_validate(
            {"reporting_closes": {"month": 10, "day": 1, "year_offset": 0}}), admin.actor))

    cycle = run(lambda uow: service.create_cycle(uow, CycleCreate(year=2026), coord.actor)).id
    with pytest.raises(InvalidInput, match=r"^measures\[1\]\.responsible: unknown responsible organisation"):
        run(lambda uow: service.agree(uow, cycle, AgreeIn.model_validate({"measures": [
            {"title": "Aa", "theme": "climate", "responsible": "regional_council:06", "due_date": "2026-05-01"},
            {"title": "Bb", "theme": "climate", "responsible": "regional_council:99", "due_date": "2026-05-01"}]}),
            coord.actor))
    body = AgreeIn.model_validate({"measures": [{"title": t, "theme": th, "responsible": r, "due_date": d}
                                                for t, th, r, d in MEASURES]})
    run(lambda uow: service.agree(uow, cycle, body, coord.actor))
    assert state(ctx, cycle) == "in_progress"  # 2026 has begun: the year starts at once
    with ctx.db.read_session() as s:
        case = s.get(Case, cycle)
        # reporting opens Mon 2.11.2026; the last business day before it is Fri 30.10. (31.10. is All Saints' Day)
        assert case.deadline == date(2026, 10, 30)
        ids = {m.title: m.id for m in s.execute(select(Measure).where(Measure.cycle_id == cycle)).scalars()}

    # 31.8.2026 ends: the planner creates the 2027 cycle, in planning for the meeting on 15.10.2026
    ctx.clock.set(utc(2026, 8, 31, 20, 59))
    ctx.tick()
    assert service_find(ctx, 2027) is None
    ctx.clock.set(utc(2026, 8, 31, 21, 0))
    ctx.tick()
    next_cycle = service_find(ctx, 2027)
    assert next_cycle is not None and state(ctx, next_cycle) == "planning"
    with ctx.db.read_session() as s:
        planner = s.get(Case, planner_id)
        assert planner.deadline == date(2027, 8, 31) and planner.data["next_year"] == 2028
        milestone = s.execute(select(Timer.due_at).where(Timer.case_id == next_cycle, Timer.status == "pending")
                              .order_by(Timer.due_at)).scalars().all()
    assert milestone == [utc(2026, 10, 1, 6, 0), utc(2026, 10, 14, 6, 0)]  # 14 and 1 days before, 09:00 EEST

    # the survey is not open yet
    ratings = {"cooperation": 4, "advocacy": 5, "information": 3, "meetings": 4, "kuntaliitto_support": 4}
    with pytest.raises(Conflict, match="the survey is open 2026-11-02 – 2026-11-30"):
        run(lambda uow: reports.answer_survey(uow, cycle, SurveyIn(ratings=ratings), d06.actor))

    # reporting opens as Fri 30.10.2026 ends (EET from 25.10.): one request per responsible, each emailed
    ctx.clock.set(utc(2026, 10, 30, 21, 59, 59))
    ctx.tick()
    assert state(ctx, cycle) == "reporting"
    requested = mails(ctx, "cycle_report_requested")
    assert sorted(m.to_address for m in requested) == sorted(["mj06@example.fi", "mj02@example.fi", "alke@example.fi",
                                                              coord.person.email])
    with ctx.db.read_session() as s:
        view = read_cycle(s, ctx.registry, cycle, SYSTEM)  # the engine reads everything
    assert sorted(r.responsible for r in view.report_requests) == [
        "association:kuntaliitto", "network:alke", "regional_council:02", "regional_council:06"]
    assert {r.deadline for r in view.report_requests} == {date(2027, 1, 15)}

    ctx.clock.set(utc(2026, 11, 10, 10, 0))
    with pytest.raises(InvalidInput, match=r"^ratings\.advocacy: must be a whole number from 1 to 5, got 6"):
        run(lambda uow: reports.answer_survey(uow, cycle, SurveyIn(ratings={**ratings, "advocacy": 6}), d06.actor))
    run(lambda uow: reports.answer_survey(uow, cycle, SurveyIn(ratings=ratings, comments="Hyvä vuosi."), d06.actor))
    run(lambda uow: reports.answer_survey(uow, cycle, SurveyIn(ratings={**ratings, "advocacy": 3}), d02.actor))
    with pytest.raises(NotPermitted):
        run(lambda uow: reports.answer_survey(uow, cycle, SurveyIn(ratings=ratings), alke.actor))

    def report(user, responsible, items, summary="Raportti"):
        data = ReportIn.model_validate({"summary": summary, "measures": [
            {"measure_id": ids[t], "status": st, "note": f"{t}: {st}"} for t, st in items]})
        return run(lambda uow: reports.submit_report(uow, cycle, responsible, data, user.actor))

    with pytest.raises(InvalidInput) as err:
        report(d06, "regional_council:06", [("Ilmastotiekartta", "done"), ("Kuntaliiton tuki", "done")])
    assert err.value.field == "measures[1].measure_id"
    assert "belongs to association:kuntaliitto, not regional_council:06" in err.value.detail
    with pytest.raises(NotPermitted):
        report(d02, "regional_council:06", [("Ilmastotiekartta", "done")])
    report(d06, "regional_council:06", [("Ilmastotiekartta", "ongoing")], "Ensimmäinen versio")
    report(d06, "regional_council:06", [("Ilmastotiekartta", "done"), ("Maakuntien yhteinen toimintamalli",
                                                                        "ongoing")], "Toinen versio")
    report(alke, "network:alke", [("Kehittämisen vuosikello", "done"), ("Työperäisen maahanmuuton selvitys",
                                                                        "dropped")])

    # reminders 7 and 1 business-adjusted days before Fri 15.1.2027, at 09:00, only to those who have not reported
    ctx.clock.set(utc(2027, 1, 8, 6, 59))
    ctx.tick()
    assert mails(ctx, "cycle_report_reminder") == []
    ctx.clock.set(utc(2027, 1, 8, 7, 0))
    ctx.tick()
    first = mails(ctx, "cycle_report_reminder")
    assert sorted(m.to_address for m in first) == sorted(["mj02@example.fi", coord.person.email])
    ctx.clock.set(utc(2027, 1, 14, 7, 0))
    ctx.tick()
    assert len(mails(ctx, "cycle_report_reminder")) == 4
    # the window closes at 23:59:59 on 15.1.; the cycle moves to review, late reports are still taken
    ctx.clock.set(utc(2027, 1, 15, 21, 59, 59))
    ctx.tick()
    assert state(ctx, cycle) == "review"
    # the day after is a Saturday: the coordinator hears on Monday 18.1. at 09:00
    ctx.clock.set(utc(2027, 1, 18, 6, 59))
    ctx.tick()
    assert mails(ctx, "cycle_report_overdue") == []
    ctx.clock.set(utc(2027, 1, 18, 7, 0))
    ctx.tick()
    assert {m.to_address for m in mails(ctx, "cycle_report_overdue")} == {coord.person.email}

    with Session(ctx.db.write_engine) as s:
        registers.add_meeting(s, MeetingIn(kind="regional_directors", title="Maakuntajohtajakokous",
                                           held_on=date(2026, 9, 3), minutes_url="https://example.fi/mkj/3"),
                              coord.actor, ctx.clock.now())
        registers.add_statement(s, StatementIn(title="Kannanotto aluekehittämislakiin", issued_on=date(2026, 5, 4),
                                               addressee="Työ- ja elinkeinoministeriö"), coord.actor, ctx.clock.now())
        registers.add_statement(s, StatementIn(title="Cealkámuš sámegiela giellaáŋgiruššamis",
                                               issued_on=date(2026, 6, 6), addressee="Sámediggi"),
                                coord.actor, ctx.clock.now())
        s.commit()

    ctx.clock.set(utc(2027, 2, 20, 10, 0))
    with pytest.raises(InvalidTransition):
        run(lambda uow: uow.fire(cycle, "open_reporting", actor=coord.actor))
    next_id, digest = run(lambda uow: service.close(uow, cycle, "Kuntaliitolle: lisää tukea ilmastotyöhön.",
                                                    coord.actor))
    assert next_id == next_cycle and state(ctx, cycle) == "closed"
    with ctx.db.read_session() as s:
        stored = s.execute(select(AnnualReport).where(AnnualReport.cycle_id == cycle)).scalars().one()
        data = report_data(s, s.get(Case, cycle))
        carried = s.execute(select(Measure).where(Measure.cycle_id == next_cycle).order_by(Measure.number)).scalars()
        carried = [(m.title, m.status, m.carried_from_id is not None) for m in carried]
        children = s.execute(select(Case.state).where(Case.parent_id == cycle)).scalars().all()
    assert stored.sha256 == digest
    for text in ("Toimintakertomus 2026", "Ilmastotiekartta", "Kannanotto aluekehittämislakiin",
                 "Maakuntajohtajakokous", "lisää tukea ilmastotyöhön", "toteutunut"):
        assert text in stored.html
    assert data["counts"] == {"done": 2, "ongoing": 1, "not_started": 2, "dropped": 1}
    assert data["survey"]["answers"] == 2 and data["survey"]["means"]["advocacy"] == 4.0
    pdf = render_pdf(data)
    assert pdf.startswith(b"%PDF-")
    text = pdf_text(pdf)  # the text a reader or a search finds in the PDF, not only the bytes of its fonts
    for phrase in ("Toimintakertomus 2026", "Kannanotto aluekehittämislakiin", "Työ- ja elinkeinoministeriö",
                   "Cealkámuš sámegiela giellaáŋgiruššamis", "lisää tukea ilmastotyöhön"):
        assert phrase in text, phrase
    sv = pdf_text(render_pdf(data, "sv"))
    assert "Verksamhetsberättelse 2026" in sv and "Åtgärder" in sv and "Ställningstaganden" in sv
    assert pdf_is_tagged(pdf)
    assert render_pdf(data) is pdf  # the same report is printed once (WeasyPrint takes seconds for a large one)
    changed = render_pdf({**data, "feedback": "Kuntaliitolle: lisää tukea saamenkieliseen työhön."})
    assert changed is not pdf and "saamenkieliseen" in pdf_text(changed)
    assert carried == [("Maakuntien yhteinen toimintamalli", "ongoing", True),
                       ("Sote-uudistuksen edunvalvonta", "not_started", True),
                       ("Kuntaliiton tuki", "not_started", True)]
    assert set(children) == {"closed"}


def service_find(ctx, year: int) -> int | None:
    return ctx.engine.run(lambda uow: service.find_cycle(uow, year))
