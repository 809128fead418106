"""Earlier versions of an agreement's text: the list with each revision's note, one version, and a comparison.

Whoever may read the agreement may read every version of its text (a party asked again after a revision wants to
see what changed before deciding again). The comparison is `api.web.diff` over the stored texts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from fastapi import Request
from sqlalchemy import select
from sqlmodel import Session, col
from starlette.responses import Response

from api.deps import SessionDep
from api.web.diff import compare
from api.web.render import render, render_markdown
from api.web.routing import User, WebUser, web_router
from api.web.views import AgreementView, agreement_view
from engine.errors import CaseNotFound
from engine.models import Person
from workflows.agreement.models import DocumentVersion

router = web_router()


@dataclass(frozen=True)
class VersionRow:
    """One version of the text as the list shows it."""

    number: int
    sha256: str
    note: str | None
    created_at: datetime
    author: str | None
    current: bool


def _view(request: Request, session: Session, user: WebUser, agreement_id: int) -> AgreementView:
    ctx = request.app.state.ctx
    return agreement_view(session, ctx.registry, user, agreement_id, ctx.clock.now(), user.lang)


def versions_of(session: Session, agreement_id: int, current: int) -> list[VersionRow]:
    """Return every version of an agreement's text, newest first, with who stored it."""
    rows = session.execute(select(DocumentVersion, col(Person.name))
                           .outerjoin(Person, col(Person.id) == col(DocumentVersion.created_by))
                           .where(col(DocumentVersion.case_id) == agreement_id)
                           .order_by(col(DocumentVersion.number).desc())).all()
    return [VersionRow(d.number, d.sha256, d.note, d.created_at, name, d.number == current) for d, name in rows]


def _text(session: Session, agreement_id: int, number: int) -> DocumentVersion:
    doc: DocumentVersion | None = session.execute(select(DocumentVersion).where(
        col(DocumentVersion.case_id) == agreement_id, col(DocumentVersion.number) == number)).scalars().first()
    if doc is None:
        raise CaseNotFound(f"agreement {agreement_id} has no version {number}")
    return doc


@router.get("/agreements/{agreement_id}/versions")
def versions_page(request: Request, agreement_id: int, user: User, session: SessionDep) -> Response:
    """List the versions of the text, each with its revision note, to read or compare with the current one."""
    view = _view(request, session, user, agreement_id)
    rows = versions_of(session, agreement_id, view.agreement.document_version)
    return render(request, "agreement_versions.html", user.lang, user=user, view=view, versions=rows)


@router.get("/agreements/{agreement_id}/versions/{number}")
def version_page(request: Request, agreement_id: int, number: int, user: User, session: SessionDep) -> Response:
    """Show one version of the text as it was."""
    view = _view(request, session, user, agreement_id)
    doc = _text(session, agreement_id, number)
    return render(request, "agreement_version.html", user.lang, user=user, view=view, doc=doc,
                  document=render_markdown(doc.text))


@router.get("/agreements/{agreement_id}/versions/{number}/diff")
def diff_page(request: Request, agreement_id: int, number: int, user: User, session: SessionDep,
              to: int | None = None) -> Response:
    """Compare a version with another one (the current one unless `to` names it), line by line."""
    view = _view(request, session, user, agreement_id)
    newer = to if to is not None else view.agreement.document_version
    old, new = _text(session, agreement_id, number), _text(session, agreement_id, newer)
    return render(request, "agreement_diff.html", user.lang, user=user, view=view, old=old, new=new,
                  comparison=compare(old.text, new.text),
                  versions=versions_of(session, agreement_id, view.agreement.document_version))
