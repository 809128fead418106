"""The webhook tables: subscriptions, queued deliveries (one per subscription and event) and delivery attempts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from engine.models import utc_column

__all__ = ["WebhookAttempt", "WebhookDelivery", "WebhookSubscription"]


class WebhookSubscription(SQLModel, table=True):
    """An endpoint that receives case events, filtered by workflow, organisation and event name (empty: all)."""

    __tablename__ = "webhook_subscription"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    url: str = Field(max_length=2000)
    secret_encrypted: str = Field(max_length=500)  # Fernet token of the whsec_ secret (signing.py)
    workflows: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    organisations: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    events: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    active: bool = True
    allow_private: bool = False  # an administrator's explicit permission to deliver to a private address
    created_by: int | None = Field(default=None, foreign_key="person.id")
    created_at: datetime = Field(sa_column=utc_column())


class WebhookDelivery(SQLModel, table=True):
    """One event for one subscription: queued with the transition, delivered after the commit."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (
        UniqueConstraint("subscription_id", "event_id", name="uq_webhook_delivery_event"),
        Index("ix_webhook_delivery_due", "status", "next_attempt_at"),
        Index("ix_webhook_delivery_order", "subscription_id", "case_id", "event_id"),
    )
    id: int | None = Field(default=None, primary_key=True)
    subscription_id: int = Field(foreign_key="webhook_subscription.id", index=True)
    event_id: int = Field(foreign_key="event.id")
    case_id: int = Field(foreign_key="case.id")
    message_id: str = Field(max_length=100)  # the webhook-id header and the CloudEvent id: stable across retries
    event_type: str = Field(max_length=200)
    body: str  # the CloudEvent, structured JSON, exactly as signed
    status: str = Field(default="pending", max_length=20)  # pending | sending | delivered | dead
    attempts: int = 0
    next_attempt_at: datetime = Field(sa_column=utc_column())
    claimed_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    last_status: int | None = None
    last_error: str | None = Field(default=None, max_length=1000)
    created_at: datetime = Field(sa_column=utc_column())
    delivered_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))


class WebhookAttempt(SQLModel, table=True):
    """One try to deliver: when, the HTTP status or the error, and how long it took."""

    __tablename__ = "webhook_attempt"
    id: int | None = Field(default=None, primary_key=True)
    delivery_id: int = Field(foreign_key="webhook_delivery.id", index=True)
    at: datetime = Field(sa_column=utc_column())
    status_code: int | None = None
    error: str | None = Field(default=None, max_length=1000)
    duration_ms: int = 0
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
