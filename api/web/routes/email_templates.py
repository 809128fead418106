"""Administrators' email template editor: each language's parts, a sandboxed preview, saving and reverting.

The template sandbox refuses anything but plain data access; its refusals are shown on the form.
"""

from __future__ import annotations

from typing import Annotated

import nh3
from fastapi import Form, Request
from markupsafe import Markup
from sqlalchemy import select
from sqlmodel import Session, col
from starlette.responses import RedirectResponse, Response

from api.deps import SessionDep
from api.web.forms import Form as WebForm
from api.web.render import render
from api.web.routes.admin import require_admin
from api.web.routing import User, WebUser, web_router
from engine.errors import InvalidInput
from notifications import template_store
from notifications.render import LANGUAGES, template_names
from notifications.template_store import PARTS, EmailTemplate

router = web_router()
LIMITS = {"subject": 2000, "txt": 100_000, "html": 200_000}
# the HTML part is shown inline, sanitised: the page's CSP forbids framing it and blocks its inline styles anyway
PREVIEW_TAGS = {"a", "b", "blockquote", "br", "code", "em", "h2", "h3", "h4", "hr", "i", "li", "ol", "p", "pre",
                "strong", "table", "tbody", "td", "th", "thead", "tr", "ul"}
NOTICES = {"saved", "reverted", "unchanged"}


def _lang(value: str) -> str:
    if value not in LANGUAGES:
        raise InvalidInput("lang", f"must be one of {', '.join(LANGUAGES)}")
    return value


@router.get("/admin/templates")
def templates_page(request: Request, user: User, session: SessionDep) -> Response:
    """List the email templates and which languages an administrator has edited."""
    require_admin(user)
    edited: dict[str, set[str]] = {}
    for name, lang in session.execute(select(col(EmailTemplate.name), col(EmailTemplate.lang)).distinct()).all():
        edited.setdefault(name, set()).add(lang)
    return render(request, "admin_templates.html", user.lang, user=user, names=template_names(), edited=edited)


def _preview(name: str, lang: str, form: WebForm) -> dict[str, str] | None:
    try:
        return template_store.check(name, lang, {p: form.values[p] for p in PARTS})
    except InvalidInput as exc:
        detail = exc.detail.removeprefix(f"{exc.field}: ")
        field = exc.field if exc.field in PARTS else "template"
        if exc.message_id and exc.message_id.startswith("templates.error."):
            # over a limit, a control character, a placeholder the template must keep: said in the page's words
            value = exc.params.get("char") or exc.params.get("placeholder") or ""
            form.fail(field, f"{exc.message_id}|0|{value}")
            return None
        refused = detail.startswith("not allowed")
        form.fail(field, f"templates.error.{'refused' if refused else 'invalid'}|0|{detail}")
        return None


def preview_html(html: str) -> Markup:
    """Return a rendered HTML part as sanitised markup to show inside the page."""
    return Markup(nh3.clean(html, tags=PREVIEW_TAGS, clean_content_tags={"head", "title", "style", "script"},  # noqa: S704
                            attributes={"a": {"href"}}, url_schemes={"http", "https", "mailto"},
                            link_rel="noopener noreferrer nofollow"))


def _editor(request: Request, session: Session, user: WebUser, name: str, lang: str, form: WebForm | None = None,
            preview: dict[str, str] | None = None, notice: str | None = None) -> Response:
    current = template_store.sources(session, name)
    if form is None:
        form = WebForm({p: current[lang][p]["source"] for p in PARTS})
        preview = _preview(name, lang, form)
    status = 422 if form.errors else 200
    return render(request, "admin_template.html", user.lang, status=status, user=user, name=name, edit_lang=lang,
                  form=form, preview=preview, preview_html=preview_html(preview["html"]) if preview else None,
                  edited={p for p in PARTS if current[lang][p]["edited"]},
                  notice=notice if notice in NOTICES else None)


@router.get("/admin/templates/{name}")
def template_page(request: Request, name: str, user: User, session: SessionDep, lang: str = "fi",
                  notice: str | None = None) -> Response:
    """Show one language of a template for editing, with its preview on sample data."""
    require_admin(user)
    return _editor(request, session, user, name, _lang(lang), notice=notice)


@router.post("/admin/templates/{name}")
def edit_template(request: Request, name: str, user: User, session: SessionDep, lang: Annotated[str, Form()] = "",
                  subject: Annotated[str, Form()] = "", txt: Annotated[str, Form()] = "",
                  html: Annotated[str, Form()] = "", action: Annotated[str, Form()] = "preview") -> Response:
    """Preview the edited parts (nothing is stored), or save the parts that changed."""
    require_admin(user)
    lang = _lang(lang)
    current = template_store.sources(session, name)[lang]
    form = WebForm({p: v.replace("\r\n", "\n") for p, v in (("subject", subject), ("txt", txt), ("html", html))})
    for part in PARTS:
        form.text(part, max_length=LIMITS[part])
    preview = None if form.errors else _preview(name, lang, form)
    if preview is None or action != "save":
        return _editor(request, session, user, name, lang, form, preview)
    changed = {p: form.values[p] for p in PARTS if form.values[p] != current[p]["source"]}
    if not changed:
        return RedirectResponse(f"/admin/templates/{name}?lang={lang}&notice=unchanged", status_code=303)
    ctx = request.app.state.ctx
    template_store.save(session, ctx.registry, name, lang, changed, actor_id=user.id, now=ctx.clock.now())
    session.flush()
    return RedirectResponse(f"/admin/templates/{name}?lang={lang}&notice=saved", status_code=303)


@router.post("/admin/templates/{name}/revert")
def revert_template(request: Request, name: str, user: User, session: SessionDep,
                    lang: Annotated[str, Form()] = "") -> Response:
    """Go back to the shipped text of one language."""
    require_admin(user)
    lang = _lang(lang)
    template_store.sources(session, name)  # 404 for an unknown template
    ctx = request.app.state.ctx
    template_store.revert(session, ctx.registry, name, lang)
    session.flush()
    return RedirectResponse(f"/admin/templates/{name}?lang={lang}&notice=reverted", status_code=303)
