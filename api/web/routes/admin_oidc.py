"""Administrators' page of identity providers: issuer, client id and secret, the domains and organisations served.

The client secret is typed into a password field, stored encrypted, and never shown again (the form keeps it
blank: leaving it blank on a change keeps the stored one). Validation is `api.web.oidc.validate_provider`, the
same as the REST API's: an https issuer whose discovery document is reachable, known organisations, a domain
served by one provider only.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Request
from sqlalchemy import select
from sqlmodel import col
from starlette.responses import RedirectResponse, Response

from api.deps import SessionDep, WorkDep
from api.web.forms import Form as WebForm
from api.web.oidc import OidcProvider, ProviderFields, redirect_uri, save_provider, validate_provider
from api.web.render import render
from api.web.routes.admin import require_admin
from api.web.routing import User, WebUser, web_router
from engine.errors import InvalidInput, NotFound
from engine.service import UnitOfWork

router = web_router()
NOTICES = {"saved"}


def _lines(text: str) -> list[str]:
    return [part.strip() for line in text.splitlines() for part in line.split(",") if part.strip()]


def _page(request: Request, session: SessionDep, user: WebUser, *, form: WebForm | None = None,
          editing: OidcProvider | None = None, notice: str | None = None, status: int = 200) -> Response:
    providers = list(session.execute(select(OidcProvider).order_by(col(OidcProvider.name))).scalars())
    if form is None:
        values = {"active": "1"}
        if editing is not None:
            values = {"name": editing.name, "issuer": editing.issuer, "client_id": editing.client_id,
                      "domains": "\n".join(editing.domains), "organisations": "\n".join(editing.organisations),
                      "active": "1" if editing.active else ""}
        form = WebForm(values)
    form.values.pop("client_secret", None)  # never shown back, not even what was just typed
    return render(request, "admin_oidc.html", user.lang, status=status, user=user, providers=providers, form=form,
                  editing=editing, notice=notice if notice in NOTICES else None,
                  redirect_uri=redirect_uri(request.app.state.ctx.settings.base_url))


@router.get("/admin/oidc")
def oidc_index(request: Request, session: SessionDep, user: User, notice: str | None = None) -> Response:
    """The providers and a form for a new one."""
    require_admin(user)
    return _page(request, session, user, notice=notice)


@router.get("/admin/oidc/{provider_id}")
def oidc_edit(request: Request, session: SessionDep, user: User, provider_id: int) -> Response:
    """One provider's form (the secret blank)."""
    require_admin(user)
    provider = session.get(OidcProvider, provider_id)
    if provider is None:
        raise NotFound(f"no identity provider {provider_id}")
    return _page(request, session, user, editing=provider)


FormText = Annotated[str, Form()]


def _form(name: str, issuer: str, client_id: str, client_secret: str, domains: str, organisations: str,
          active: str) -> WebForm:
    return WebForm({"name": name, "issuer": issuer, "client_id": client_id, "client_secret": client_secret,
                    "domains": domains, "organisations": organisations, "active": active})


def _save(request: Request, session: SessionDep, work: WorkDep, user: WebUser, form: WebForm,
          provider: OidcProvider | None) -> Response:
    ctx = request.app.state.ctx
    fields = ProviderFields(name=form.get("name"), issuer=form.get("issuer"), client_id=form.get("client_id"),
                            client_secret=form.values.get("client_secret", ""), domains=_lines(form.get("domains")),
                            organisations=_lines(form.get("organisations")),
                            active=provider is None or form.get("active") == "1")
    try:
        clean = validate_provider(session, fields, provider=provider)
    except InvalidInput as exc:
        name = exc.field.split("[")[0]
        value = str(exc.params.get("value", ""))
        form.fail(name, f"{exc.message_id}||{value}" if value else str(exc.message_id))
        return _page(request, session, user, form=form, editing=provider, status=422)

    def write(uow: UnitOfWork) -> OidcProvider:
        return save_provider(uow.session, clean, ctx.settings.secret_key, uow.now, provider, user.id)
    work.run(write)
    return RedirectResponse("/admin/oidc?notice=saved", status_code=303)


@router.post("/admin/oidc")
def oidc_create(request: Request, session: SessionDep, work: WorkDep, user: User, name: FormText = "",
                issuer: FormText = "", client_id: FormText = "", client_secret: FormText = "",
                domains: FormText = "", organisations: FormText = "") -> Response:
    """Add a provider."""
    require_admin(user)
    form = _form(name, issuer, client_id, client_secret, domains, organisations, "1")
    return _save(request, session, work, user, form, None)


@router.post("/admin/oidc/{provider_id}")
def oidc_update(request: Request, session: SessionDep, work: WorkDep, user: User, provider_id: int,
                name: FormText = "", issuer: FormText = "", client_id: FormText = "", client_secret: FormText = "",
                domains: FormText = "", organisations: FormText = "", active: FormText = "") -> Response:
    """Change a provider (a blank secret keeps the stored one; unticking "in use" pauses it)."""
    require_admin(user)
    provider = session.get(OidcProvider, provider_id)
    if provider is None:
        raise NotFound(f"no identity provider {provider_id}")
    form = _form(name, issuer, client_id, client_secret, domains, organisations, active)
    return _save(request, session, work, user, form, provider)
