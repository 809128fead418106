"""Reading the annual cycle's forms (measure, note, report request, report, survey window, closing), field by field.

Each problem is recorded on its field with a message id, as `api.web.forms` does for agreements; a form that
passes becomes the workflow's own request (`workflows.cycle.schemas`), so the page and the API check alike.
"""

from __future__ import annotations

from datetime import date
from typing import get_args

from pydantic import BaseModel, ValidationError

from api.web.forms import Form
from workflows.cycle.models import CycleReport, Measure
from workflows.cycle.schemas import MeasureIn, NoteIn, ReportIn, ReportMeasure, Status, Theme

THEMES: tuple[str, ...] = get_args(Theme)
STATUSES: tuple[str, ...] = get_args(Status)
# where a service's InvalidInput field is shown on the forms
FIELDS = {"measures[0].responsible": "responsible", "measures[0].due_date": "due_date", "measures": "title",
          "survey_opens": "survey_opens", "survey_closes": "survey_closes", "responsible": "responsible",
          "deadline": "deadline", "due_date": "due_date", "noted_on": "noted_on", "summary": "summary"}


def field_of(name: str, default: str) -> str:
    """Return the form field a service's InvalidInput names (a report's measure fields as status_<id>)."""
    return FIELDS.get(name, default)


class MeasureFormIn(BaseModel):
    """The measure form as posted (every field text)."""

    measure: str = ""
    action: str = "save"
    title: str = ""
    theme: str = ""
    responsible: str = ""
    due_date: str = ""
    version: str = ""

    def form(self) -> Form:
        """Return the values as a web form."""
        return Form(self.model_dump())


def version_of(form: Form, name: str = "version") -> int | None:
    """Return the version a form was shown with (None when missing: an API-like post, checked by the service)."""
    text = form.get(name)
    return int(text) if text.isdigit() else None


def read_measure(form: Form, responsibles: set[str]) -> MeasureIn | None:
    """Check a measure: title, theme, responsible and due date."""
    title = form.text("title", min_length=2, max_length=300)
    theme = form.get("theme")
    if theme not in THEMES:
        form.fail("theme", "cycle.error.theme")
    responsible = form.get("responsible")
    if responsible not in responsibles:
        form.fail("responsible", "cycle.error.responsible")
    due = form.date("due_date")
    if form.errors:
        return None
    try:
        return MeasureIn.model_validate({"title": title, "theme": theme, "responsible": responsible,
                                         "due_date": due})
    except ValidationError as exc:
        form.fail(str(exc.errors()[0]["loc"][0]), "form.error.invalid")
        return None


def read_note(form: Form, today: date) -> NoteIn | None:
    """Check a dated note: status, text, the day it tells of (not in the future)."""
    status = form.get("status")
    if status not in STATUSES:
        form.fail("status", "cycle.error.status")
    text = form.text("text", max_length=4000)
    noted_on = form.date("noted_on", required=False)
    if noted_on and noted_on > today:
        form.fail("noted_on", "cycle.error.future")
    if form.errors:
        return None
    return NoteIn.model_validate({"status": status, "text": text, "noted_on": noted_on})


def read_request(form: Form, responsibles: set[str], today: date) -> tuple[str, date] | None:
    """Check a report request: to whom, by when (not in the past)."""
    responsible = form.get("responsible")
    if responsible not in responsibles:
        form.fail("responsible", "cycle.error.responsible")
    deadline = form.date("deadline")
    if deadline and deadline < today:
        form.fail("deadline", "agreement.error.deadline_past")
    if form.errors or deadline is None:
        return None
    return responsible, deadline


def report_values(measures: list[Measure], latest: CycleReport | None) -> dict[str, str]:
    """Return the report form's starting values: the latest version's summary and what it said of each measure."""
    said = {int(m["measure_id"]): m for m in (latest.measures if latest else [])}
    values = {"summary": latest.summary if latest else ""}
    for m in measures:
        item = said.get(m.id or 0)
        values[f"status_{m.id}"] = str(item["status"]) if item else ""
        values[f"note_{m.id}"] = str(item["note"]) if item else ""
    return values


def read_report(form: Form, measures: list[Measure]) -> ReportIn | None:
    """Check a report: a summary, and for each measure given a status, a note saying what was done."""
    summary = form.text("summary", max_length=20000)
    items = []
    for m in measures:
        status, note = form.get(f"status_{m.id}"), form.get(f"note_{m.id}")
        if not status:
            if note:
                form.fail(f"status_{m.id}", "cycle.error.status")
            continue
        if status not in STATUSES:
            form.fail(f"status_{m.id}", "cycle.error.status")
            continue
        text = form.text(f"note_{m.id}", max_length=4000)
        if text:
            items.append(ReportMeasure.model_validate({"measure_id": m.id, "status": status, "note": text}))
    if form.errors or summary is None:
        return None
    return ReportIn(summary=summary, measures=items)


def read_window(form: Form) -> tuple[date, date] | None:
    """Check the survey window: opening and closing days, the closing not before the opening."""
    opens, closes = form.date("survey_opens"), form.date("survey_closes")
    if opens and closes and closes < opens:
        form.fail("survey_closes", "cycle.error.window_order")
    if form.errors or opens is None or closes is None:
        return None
    return opens, closes
