"""Identity providers for administrators: the OpenID Connect providers people of some organisations sign in with.

The client secret is written, never read: it is stored encrypted (`api.web.oidc`) and no answer carries it.
Validation is the admin page's (`api.web.oidc.validate_provider`): an https issuer (http only on loopback) whose
discovery document is reachable, known organisations, a domain served by one provider only; a refusal is a 422
naming the field, in the caller's language.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlmodel import col

from api.deps import AdminDep, CtxDep, SessionDep, WorkDep
from api.schemas import ERROR_RESPONSES
from api.unit import UnitOfWorkRoute
from api.web.oidc import OidcProvider, ProviderFields, redirect_uri, save_provider, validate_provider
from engine.errors import NotFound
from engine.service import UnitOfWork

router = APIRouter(prefix="/oidc-providers", tags=["sign-in"], responses=ERROR_RESPONSES,
                   route_class=UnitOfWorkRoute)


class ProviderIn(BaseModel):
    """A new provider: its issuer, the client Vuosikello is registered as, and whom it signs in."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200, examples=["Tampereen kaupunki (Entra ID)"])
    issuer: str = Field(min_length=1, max_length=500,
                        examples=["https://login.microsoftonline.com/00000000-0000-0000-0000-000000000000/v2.0"])
    client_id: str = Field(min_length=1, max_length=300)
    client_secret: str = Field(min_length=1, max_length=1000, description="stored encrypted, never returned")
    domains: list[str] = Field(default_factory=list, max_length=100, examples=[["tampere.fi"]])
    organisations: list[str] = Field(default_factory=list, max_length=500, examples=[["municipality:837"]])
    active: bool = True


class ProviderPatch(BaseModel):
    """A change to a provider; fields left out stay as they are."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, min_length=1, max_length=200)
    issuer: str | None = Field(default=None, min_length=1, max_length=500)
    client_id: str | None = Field(default=None, min_length=1, max_length=300)
    client_secret: str | None = Field(default=None, min_length=1, max_length=1000)
    domains: list[str] | None = Field(default=None, max_length=100)
    organisations: list[str] | None = Field(default=None, max_length=500)
    active: bool | None = None


class ProviderRead(BaseModel):
    """A provider as configured (never its secret), and the redirect URI to register at it."""

    id: int
    name: str
    issuer: str
    client_id: str
    domains: list[str]
    organisations: list[str]
    active: bool
    created_at: datetime
    redirect_uri: str


def _read(provider: OidcProvider, base_url: str) -> ProviderRead:
    return ProviderRead(id=provider.id or 0, name=provider.name, issuer=provider.issuer,
                        client_id=provider.client_id, domains=provider.domains,
                        organisations=provider.organisations, active=provider.active,
                        created_at=provider.created_at, redirect_uri=redirect_uri(base_url))


def _provider(session: SessionDep, provider_id: int) -> OidcProvider:
    provider = session.get(OidcProvider, provider_id)
    if provider is None:
        raise NotFound(f"no identity provider {provider_id}")
    return provider


@router.post("", response_model=ProviderRead, status_code=status.HTTP_201_CREATED, operation_id="oidc-create")
def create(body: ProviderIn, work: WorkDep, session: SessionDep, ctx: CtxDep, admin: AdminDep) -> ProviderRead:
    """Add a provider; its discovery document must be reachable."""
    clean = validate_provider(session, ProviderFields(**body.model_dump()), provider=None)

    def make(uow: UnitOfWork) -> OidcProvider:
        return save_provider(uow.session, clean, ctx.settings.secret_key, uow.now, created_by=admin.person_id)
    return _read(work.run(make), ctx.settings.base_url)


@router.get("", response_model=list[ProviderRead], operation_id="oidc-list")
def list_providers(session: SessionDep, ctx: CtxDep, admin: AdminDep) -> list[ProviderRead]:
    """Every provider, by name."""
    rows = session.execute(select(OidcProvider).order_by(col(OidcProvider.name))).scalars()
    return [_read(p, ctx.settings.base_url) for p in rows]


@router.get("/{provider_id}", response_model=ProviderRead, operation_id="oidc-get")
def get(provider_id: int, session: SessionDep, ctx: CtxDep, admin: AdminDep) -> ProviderRead:
    """One provider (never its secret)."""
    return _read(_provider(session, provider_id), ctx.settings.base_url)


@router.patch("/{provider_id}", response_model=ProviderRead, operation_id="oidc-update")
def update(provider_id: int, body: ProviderPatch, work: WorkDep, session: SessionDep, ctx: CtxDep,
           admin: AdminDep) -> ProviderRead:
    """Change a provider, or pause it (`active: false`); a new secret replaces the stored one."""
    provider = _provider(session, provider_id)
    given = body.model_dump(exclude_none=True)
    fields = ProviderFields(name=given.get("name", provider.name), issuer=given.get("issuer", provider.issuer),
                            client_id=given.get("client_id", provider.client_id),
                            client_secret=given.get("client_secret", ""),
                            domains=given.get("domains", provider.domains),
                            organisations=given.get("organisations", provider.organisations),
                            active=given.get("active", provider.active))
    clean = validate_provider(session, fields, provider=provider)

    def change(uow: UnitOfWork) -> OidcProvider:
        return save_provider(uow.session, clean, ctx.settings.secret_key, uow.now, provider)
    return _read(work.run(change), ctx.settings.base_url)
