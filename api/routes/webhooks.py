"""Webhook subscriptions for administrators: endpoints, filters, secrets, the delivery log, dead letters, replay.

A subscription receives the case events that match its filters (workflow, organisation, event name; empty means
all) as CloudEvents signed the Standard Webhooks way (`notifications/webhooks/`). Its secret is shown once, when
the subscription is made or the secret rotated; it is stored encrypted and never returned again.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Query, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select
from sqlmodel import Session, col

from api.deps import AdminDep, CtxDep, SessionDep, WorkDep
from api.schemas import ERROR_RESPONSES
from api.unit import UnitOfWorkRoute
from engine.errors import InvalidInput, NotFound
from engine.models import Organisation
from engine.registry import Registry
from engine.service import UnitOfWork
from notifications.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookSubscription
from notifications.webhooks.sender import replay
from notifications.webhooks.signing import encrypt_secret, new_secret
from notifications.webhooks.targets import TargetRefused, check_target

router = APIRouter(prefix="/webhooks", tags=["webhooks"], responses=ERROR_RESPONSES, route_class=UnitOfWorkRoute)


class SubscriptionIn(BaseModel):
    """A new subscription: where to deliver, and which events (an empty list means every one)."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200, examples=["Tampereen asianhallinta"])
    url: str = Field(min_length=8, max_length=2000, examples=["https://asianhallinta.tampere.fi/vuosikello"])
    workflows: list[str] = Field(default_factory=list, max_length=50, examples=[["agreement", "agreement_party"]])
    organisations: list[str] = Field(default_factory=list, max_length=500, examples=[["municipality:837"]])
    events: list[str] = Field(default_factory=list, max_length=200, examples=[["AgreementEnteredIntoForce"]])
    allow_private: bool = Field(default=False, description="deliver to a private or loopback address (SSRF risk)")


class SubscriptionPatch(BaseModel):
    """A change to a subscription; fields left out stay as they are."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, min_length=1, max_length=200)
    url: str | None = Field(default=None, min_length=8, max_length=2000)
    workflows: list[str] | None = Field(default=None, max_length=50)
    organisations: list[str] | None = Field(default=None, max_length=500)
    events: list[str] | None = Field(default=None, max_length=200)
    allow_private: bool | None = None
    active: bool | None = None


class SubscriptionRead(BaseModel):
    """A subscription and its queue: how many deliveries wait, were delivered, or are dead letters."""

    id: int
    name: str
    url: str
    workflows: list[str]
    organisations: list[str]
    events: list[str]
    allow_private: bool
    active: bool
    created_at: datetime
    pending: int
    delivered: int
    dead: int


class SubscriptionCreated(SubscriptionRead):
    """A new subscription with its signing secret, shown this once."""

    secret: str


class DeliveryRead(BaseModel):
    """One queued event for one subscription."""

    id: int
    message_id: str
    event_type: str
    case_id: int
    status: str
    attempts: int
    last_status: int | None
    last_error: str | None
    next_attempt_at: datetime
    created_at: datetime
    delivered_at: datetime | None


class AttemptRead(BaseModel):
    """One try to deliver."""

    at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int


class ReplayIn(BaseModel):
    """Deliveries to send again (dead letters, or delivered ones a receiver lost)."""

    model_config = ConfigDict(extra="forbid")
    delivery_ids: list[int] = Field(min_length=1, max_length=1000)


class ReplayResult(BaseModel):
    """How many deliveries were queued again."""

    queued: int


def _check_filters(registry: Registry, session: Session, workflows: list[str] | None, organisations: list[str] | None,
                   events: list[str] | None) -> None:
    known_workflows = {name for name, _ in registry.machines}
    for i, name in enumerate(workflows or []):
        if name not in known_workflows:
            listed = ", ".join(sorted(known_workflows))
            raise InvalidInput(f"workflows[{i}]", f"unknown workflow {name!r}; known: {listed}")
    if organisations:
        known = set(session.execute(select(col(Organisation.key)).where(
            col(Organisation.key).in_(organisations))).scalars())
        for i, key in enumerate(organisations):
            if key not in known:
                raise InvalidInput(f"organisations[{i}]", f"unknown organisation {key!r}")
    if events:
        names = {t.event_name for m in registry.machines.values() for t in m.definition.transitions}
        for i, name in enumerate(events):
            if name not in names:
                raise InvalidInput(f"events[{i}]", f"unknown event {name!r}")


def _check_url(url: str, allow_private: bool) -> None:
    try:
        check_target(url, allow_private=allow_private)
    except TargetRefused as exc:
        raise InvalidInput("url", str(exc), message_id=f"webhook.error.{exc.reason}") from None


def _read(session: Session, sub: WebhookSubscription) -> SubscriptionRead:
    counts = dict(session.execute(select(col(WebhookDelivery.status), func.count()).where(
        col(WebhookDelivery.subscription_id) == sub.id).group_by(col(WebhookDelivery.status))).all())
    return SubscriptionRead(id=sub.id or 0, name=sub.name, url=sub.url, workflows=sub.workflows,
                            organisations=sub.organisations, events=sub.events, allow_private=sub.allow_private,
                            active=sub.active, created_at=sub.created_at,
                            pending=counts.get("pending", 0) + counts.get("sending", 0),
                            delivered=counts.get("delivered", 0), dead=counts.get("dead", 0))


def _subscription(session: Session, subscription_id: int) -> WebhookSubscription:
    sub = session.get(WebhookSubscription, subscription_id)
    if sub is None:
        raise NotFound(f"no webhook subscription {subscription_id}")
    return sub


@router.post("", response_model=SubscriptionCreated, status_code=status.HTTP_201_CREATED,
             operation_id="webhooks-create")
def create(body: SubscriptionIn, work: WorkDep, session: SessionDep, ctx: CtxDep,
           admin: AdminDep) -> SubscriptionCreated:
    """Subscribe an endpoint; the answer carries the signing secret, shown only this once."""
    _check_url(body.url, body.allow_private)
    _check_filters(ctx.registry, session, body.workflows, body.organisations, body.events)
    secret = new_secret()

    def make(uow: UnitOfWork) -> WebhookSubscription:
        sub = WebhookSubscription(name=body.name, url=body.url, workflows=body.workflows,
                                  organisations=body.organisations, events=body.events,
                                  allow_private=body.allow_private, created_by=admin.person_id, created_at=uow.now,
                                  secret_encrypted=encrypt_secret(secret, ctx.settings.secret_key))
        uow.session.add(sub)
        uow.session.flush()
        return sub
    sub = work.run(make)
    return SubscriptionCreated(**_read(session, sub).model_dump(), secret=secret)


@router.get("", response_model=list[SubscriptionRead], operation_id="webhooks-list")
def list_subscriptions(session: SessionDep, admin: AdminDep) -> list[SubscriptionRead]:
    """Every subscription with its queue counts."""
    subs = session.execute(select(WebhookSubscription).order_by(col(WebhookSubscription.id))).scalars()
    return [_read(session, s) for s in subs]


@router.get("/{subscription_id}", response_model=SubscriptionRead, operation_id="webhooks-get")
def get(subscription_id: int, session: SessionDep, admin: AdminDep) -> SubscriptionRead:
    """One subscription (never its secret)."""
    return _read(session, _subscription(session, subscription_id))


@router.patch("/{subscription_id}", response_model=SubscriptionRead, operation_id="webhooks-update")
def update(subscription_id: int, body: SubscriptionPatch, work: WorkDep, session: SessionDep, ctx: CtxDep,
           admin: AdminDep) -> SubscriptionRead:
    """Change the endpoint, the filters, or pause (`active: false`) and resume a subscription."""
    sub = _subscription(session, subscription_id)
    url = body.url if body.url is not None else sub.url
    allow = body.allow_private if body.allow_private is not None else sub.allow_private
    if body.url is not None or body.allow_private is not None:
        _check_url(url, allow)
    _check_filters(ctx.registry, session, body.workflows, body.organisations, body.events)

    def change(uow: UnitOfWork) -> None:
        for name, value in body.model_dump(exclude_none=True).items():
            setattr(sub, name, value)
        uow.session.add(sub)
    work.run(change)
    return _read(session, sub)


@router.post("/{subscription_id}/secret", response_model=SubscriptionCreated, operation_id="webhooks-rotate-secret")
def rotate_secret(subscription_id: int, work: WorkDep, session: SessionDep, ctx: CtxDep,
                  admin: AdminDep) -> SubscriptionCreated:
    """Replace the signing secret; the new one is shown only this once, and signs every later attempt."""
    sub = _subscription(session, subscription_id)
    secret = new_secret()

    def rotate(uow: UnitOfWork) -> None:
        sub.secret_encrypted = encrypt_secret(secret, ctx.settings.secret_key)
        uow.session.add(sub)
    work.run(rotate)
    return SubscriptionCreated(**_read(session, sub).model_dump(), secret=secret)


@router.get("/{subscription_id}/deliveries", response_model=list[DeliveryRead], operation_id="webhooks-deliveries")
def deliveries(subscription_id: int, session: SessionDep, admin: AdminDep,
               status_is: Literal["pending", "sending", "delivered", "dead"] | None = Query(default=None,
                                                                                             alias="status"),
               limit: int = Query(default=100, ge=1, le=1000)) -> list[DeliveryRead]:
    """The subscription's deliveries, newest first; `?status=dead` is the dead-letter list."""
    _subscription(session, subscription_id)
    stmt = select(WebhookDelivery).where(col(WebhookDelivery.subscription_id) == subscription_id)
    if status_is is not None:
        stmt = stmt.where(col(WebhookDelivery.status) == status_is)
    rows = session.execute(stmt.order_by(col(WebhookDelivery.id).desc()).limit(limit)).scalars()
    return [DeliveryRead.model_validate(r, from_attributes=True) for r in rows]


@router.get("/{subscription_id}/deliveries/{delivery_id}/attempts", response_model=list[AttemptRead],
            operation_id="webhooks-attempts")
def attempts(subscription_id: int, delivery_id: int, session: SessionDep, admin: AdminDep) -> list[AttemptRead]:
    """Every attempt to deliver one event, oldest first."""
    delivery = session.get(WebhookDelivery, delivery_id)
    if delivery is None or delivery.subscription_id != subscription_id:
        raise NotFound(f"no delivery {delivery_id} of subscription {subscription_id}")
    rows = session.execute(select(WebhookAttempt).where(col(WebhookAttempt.delivery_id) == delivery_id)
                           .order_by(col(WebhookAttempt.id))).scalars()
    return [AttemptRead.model_validate(r, from_attributes=True) for r in rows]


@router.post("/{subscription_id}/replay", response_model=ReplayResult, operation_id="webhooks-replay")
def replay_deliveries(subscription_id: int, body: ReplayIn, work: WorkDep, session: SessionDep,
                      admin: AdminDep) -> ReplayResult:
    """Send dead letters (or delivered events) again, with their original id and body."""
    _subscription(session, subscription_id)
    ids = list(session.execute(select(col(WebhookDelivery.id)).where(
        col(WebhookDelivery.subscription_id) == subscription_id,
        col(WebhookDelivery.id).in_(body.delivery_ids))).scalars())
    missing = sorted(set(body.delivery_ids) - set(ids))
    if missing:
        raise InvalidInput("delivery_ids", f"not deliveries of this subscription: {missing[:10]}")
    return ReplayResult(queued=work.run(lambda uow: replay(uow, ids)))
