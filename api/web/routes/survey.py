"""The regional directors' annual survey (mkj-kysely): answering it while it is open, and following it.

A director answers for their own regional council, the cycle's own coordinator for any; everyone signed in sees
who has answered and the averages. An administrator sets the days the survey is open (`cycle_reports`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Annotated

from fastapi import Form, Request
from sqlalchemy import select
from sqlmodel import Session, col
from starlette.responses import RedirectResponse, Response

from api.deps import SessionDep, WorkDep
from api.refusals import refusal_text
from api.web.case_forms import SurveyFormIn, read_survey_form
from api.web.forms import Form as WebForm
from api.web.queries import org_name
from api.web.render import render
from api.web.routing import User, WebUser, today_of, web_router
from engine.calendar import effective_deadline
from engine.errors import Conflict, InvalidInput
from engine.models import Organisation
from engine.permissions import CaseReader
from workflows.cycle import reports
from workflows.cycle.models import SurveyAnswer
from workflows.cycle.read import cycle_row
from workflows.cycle.schemas import QUESTIONS
from workflows.cycle.who import runs_cycle

router = web_router()


@dataclass(frozen=True)
class SurveyState:
    """The survey of one cycle: its window, each council's latest answer, and whom the viewer answers for."""

    cycle_id: int
    year: int
    opens: date
    closes: date
    is_open: bool
    councils: list[tuple[str, str, SurveyAnswer | None]]  # (key, name, latest answer)
    answers_for: list[tuple[str, str]]  # the councils the viewer may answer for
    set_closes: date  # the closing day as set (`closes` is moved off weekends and holidays)
    version: int  # the cycle's version the page was shown with
    answer_versions: dict[str, int]  # each council's latest answer version

    def replaces(self, key: str) -> int:
        """Return the version a new answer of a council replaces (0: none yet)."""
        return self.answer_versions.get(key, 0)

    @property
    def answered(self) -> int:
        """Return how many councils have answered."""
        return sum(1 for c in self.councils if c[2] is not None)

    def means(self) -> dict[str, float | None]:
        """Return the mean rating per question over the councils' latest answers."""
        latest = [a.ratings for _k, _n, a in self.councils if a is not None]
        return {q: round(sum(r[q] for r in latest) / len(latest), 2) if latest else None for q in QUESTIONS}


def survey_state(session: Session, user: WebUser, cycle_id: int, today: date) -> SurveyState:
    """Read a cycle's survey for a viewer."""
    case = cycle_row(session, cycle_id)
    m = case.data["milestones"]
    opens, set_closes = date.fromisoformat(m["survey_opens"]), date.fromisoformat(m["survey_closes"])
    closes = effective_deadline(set_closes)
    orgs = session.execute(select(Organisation).where(col(Organisation.kind) == "regional_council",
                                                      col(Organisation.active).is_(True))
                           .order_by(col(Organisation.code))).scalars().all()
    latest: dict[int, SurveyAnswer] = {}
    for a in session.execute(select(SurveyAnswer).where(col(SurveyAnswer.cycle_id) == cycle_id)
                             .order_by(col(SurveyAnswer.version))).scalars():
        latest[a.organisation_id] = a
    councils = [(o.key, org_name(o, user.lang), latest.get(o.id or 0)) for o in orgs]
    director = "signatory" in user.person.role_set
    runner = runs_cycle(case, user.actor)  # the cycle's own coordinator answers for any council, no other
    answers_for = [(k, n) for o, (k, n, _a) in zip(orgs, councils, strict=True)
                   if runner or (director and o.id == user.person.organisation_id)]
    return SurveyState(cycle_id, int(case.data["year"]), opens, closes, opens <= today <= closes, councils,
                       answers_for, set_closes, case.version,
                       {o.key: latest[o.id].version for o in orgs if o.id in latest})


def show_survey(request: Request, session: Session, user: WebUser, cycle_id: int, form: WebForm | None = None,
                status: int = 200, notice: str | None = None, refusal: str | None = None,
                window_form: WebForm | None = None) -> Response:
    """Render the survey page: its window, who answered, the answer form, and for administrators the window."""
    ctx = request.app.state.ctx
    state = survey_state(session, user, cycle_id, today_of(request))
    if form is None:
        form = WebForm({"organisation": state.answers_for[0][0] if len(state.answers_for) == 1 else ""})
    may_window = "set_survey_window" in CaseReader(ctx.registry, session, ctx.clock.now()).permitted(
        cycle_id, user.actor)
    window_form = window_form or WebForm({"survey_opens": state.opens.isoformat(),
                                          "survey_closes": state.set_closes.isoformat()})
    return render(request, "survey.html", user.lang, status=status, user=user, s=state, form=form,
                  questions=QUESTIONS, notice=notice, refusal=refusal, may_window=may_window,
                  window_form=window_form)


class SurveyPost(SurveyFormIn):
    """The survey form as posted, with the version of the council's answer it replaces (a double send is refused)."""

    replaces: str = ""


@router.get("/cycles/{cycle_id}/survey")
def survey_page(request: Request, cycle_id: int, user: User, session: SessionDep,
                notice: str | None = None) -> Response:
    """Show the survey: its window, who has answered, the averages, and the form for whom the viewer answers."""
    return show_survey(request, session, user, cycle_id, notice=notice if notice in ("answered", "window") else None)


@router.post("/cycles/{cycle_id}/survey")
def answer_survey(work: WorkDep, request: Request, cycle_id: int, user: User, session: SessionDep,
                  posted: Annotated[SurveyPost, Form()]) -> Response:
    """Store the council's answer; a new answer is a new version that replaces the earlier one."""
    form = posted.form()
    body = read_survey_form(form)
    council = form.get("organisation") or None
    state = survey_state(session, user, cycle_id, today_of(request))
    if council is not None and council not in {k for k, _n in state.answers_for}:
        form.fail("organisation", "survey.error.council")
    if council is None and len(state.answers_for) > 1:
        form.fail("organisation", "survey.error.council")
    if body is None or form.errors:
        return show_survey(request, session, user, cycle_id, form, status=422)
    replaces = int(posted.replaces) if posted.replaces.isdigit() else None
    runner = runs_cycle(cycle_row(session, cycle_id), user.actor)
    try:
        work.run(lambda uow: reports.answer_survey(
            uow, cycle_id, body, user.actor, council if runner else None, replaces))
    except Conflict as exc:
        if exc.message_id == "cycle.error.survey_version":  # sent twice, or answered by someone else meanwhile
            return show_survey(request, session, user, cycle_id, form, status=409,
                               refusal=refusal_text(exc, user.lang, request.app.state.ctx.registry))
        return show_survey(request, session, user, cycle_id, form, status=409, refusal="survey.error.closed")
    except InvalidInput as exc:
        refused = refusal_text(exc, user.lang, request.app.state.ctx.registry)
        form.fail("comments", f"nomination.error.refused|0|{refused}")
        return show_survey(request, session, user, cycle_id, form, status=422)
    return RedirectResponse(f"/cycles/{cycle_id}/survey?notice=answered", status_code=303)
