"""Queue case events for the webhook subscriptions that want them, inside the transition's own transaction.

`on_transition` is a registry listener: it runs in the unit of work that fires the trigger, so a delivery row is
committed exactly when the event is, and rolled back with it. The body is the CloudEvent 1.0 in structured JSON
(the `cloudevents` package), written once: every retry sends the same bytes, with the same `webhook-id`.
"""

from __future__ import annotations

import json
from typing import Any

from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from sqlalchemy import or_, select
from sqlmodel import col

from engine.models import Case, Organisation, Person, table_of
from engine.records import TransitionRecord
from engine.registry import Registry
from engine.service import UnitOfWork
from notifications.webhooks.models import WebhookDelivery, WebhookSubscription

__all__ = ["EVENT_TYPE_PREFIX", "cloud_event", "install", "on_transition"]

EVENT_TYPE_PREFIX = "fi.vuosikello."
_CACHE = "webhook_subscriptions"
_FORMAT = JSONFormat()
_SUBSCRIPTION = table_of(WebhookSubscription)
# built once, run on the connection: on every transition, where building it and the ORM's loading cost more than
# SQLite's answer (none, on most installations)
_ACTIVE = select(_SUBSCRIPTION.c.id, _SUBSCRIPTION.c.workflows, _SUBSCRIPTION.c.organisations,
                 _SUBSCRIPTION.c.events).where(_SUBSCRIPTION.c.active.is_(True))


def _subscriptions(uow: UnitOfWork) -> list[tuple[int, list[str], list[str], list[str]]]:
    # read once per transaction (a 25-party approval fires several triggers, the subscriptions do not change),
    # on PostgreSQL with the transaction's first statement (`install`), on the transaction's cursor elsewhere: an
    # approval then opens no ORM session at all
    cached = uow.info.get(_CACHE)
    if cached is None:
        cached = [(int(i), list(w or ()), list(o or ()), list(e or ()))
                  for i, w, o, e in uow.prefetched(_CACHE)]
        uow.info[_CACHE] = cached
    return cached


def install(registry: Registry) -> None:
    """Queue webhook deliveries from every transition; the active subscriptions are read with the transaction's
    first statement on PostgreSQL (no round trip of their own)."""
    registry.read_first(_CACHE, _ACTIVE)
    registry.on_transition(on_transition)


def _organisations(uow: UnitOfWork, record: TransitionRecord) -> set[str]:
    """The organisations an event concerns: the case's, its parent's or children's, and the coordinator's."""
    case = record.case
    ids = [case.id] + ([case.parent_id] if case.parent_id else [])
    org_ids = set(uow.session.execute(select(col(Case.organisation_id)).where(
        or_(col(Case.id).in_(ids), col(Case.parent_id) == case.id), col(Case.organisation_id).is_not(None)))
        .scalars())
    if case.coordinator_id:
        org_ids |= set(uow.session.execute(select(col(Person.organisation_id)).where(
            col(Person.id) == case.coordinator_id)).scalars())
    if not org_ids:
        return set()
    return set(uow.session.execute(select(col(Organisation.key)).where(
        col(Organisation.id).in_([i for i in org_ids if i is not None]))).scalars())


def cloud_event(record: TransitionRecord, base_url: str, organisation: str | None) -> tuple[str, str, str]:
    """Return (message id, event type, structured JSON) of the CloudEvent for one transition."""
    case = record.case
    message_id = f"evt_{record.event_id}"
    event_type = f"{EVENT_TYPE_PREFIX}{case.workflow}.{record.event_name}"
    data: dict[str, Any] = {
        "case_id": case.id, "workflow": case.workflow, "parent_id": case.parent_id, "organisation": organisation,
        "title": case.title, "event": record.event_name, "trigger": record.trigger, "from_state": record.from_state,
        "to_state": record.to_state, "seq": record.seq, "document_sha256": record.document_hash,
        "actor": {"person_id": record.actor.person_id, "on_behalf_of_person_id": record.actor.on_behalf_of_person_id},
        "payload": json.loads(json.dumps(record.payload, default=str)),
    }
    event = CloudEvent({"specversion": "1.0", "id": message_id, "type": event_type,
                        "source": f"{base_url.rstrip('/')}/cases/{case.id}", "subject": f"{case.workflow}/{case.id}",
                        "time": record.at, "datacontenttype": "application/json",
                        "sequence": f"{record.seq:010d}"}, data)  # CloudEvents sequence extension: per case
    return message_id, event_type, _FORMAT.write(event).decode("utf-8")


def on_transition(uow: UnitOfWork, record: TransitionRecord) -> None:
    """Registry listener: queue one delivery per active subscription whose filters match the event."""
    subscriptions = _subscriptions(uow)
    if not subscriptions:
        return
    orgs: set[str] | None = None
    matched: list[int] = []
    for sub_id, workflows, organisations, events in subscriptions:
        if workflows and record.case.workflow not in workflows:
            continue
        if events and record.event_name not in events:
            continue
        if organisations:
            orgs = _organisations(uow, record) if orgs is None else orgs
            if not orgs & set(organisations):
                continue
        matched.append(sub_id)
    if not matched:
        return
    own = None
    if record.case.organisation_id is not None:
        own = uow.session.execute(select(col(Organisation.key)).where(
            col(Organisation.id) == record.case.organisation_id)).scalar_one_or_none()
    mail = uow.registry.services.get("mail")
    message_id, event_type, body = cloud_event(record, getattr(mail, "base_url", "http://localhost"), own)
    uow.session.add_all([WebhookDelivery(subscription_id=sub_id, event_id=record.event_id, case_id=record.case.id,
                                         message_id=message_id, event_type=event_type, body=body,
                                         next_attempt_at=uow.now, created_at=uow.now) for sub_id in matched])
