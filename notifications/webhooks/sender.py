"""Deliver queued webhook events after the commit: in order per case, with timeouts, retries and a dead letter.

The scheduler's leader runs `WebhookSender.deliver_due` every second, beside the mail. A sweep claims the due
deliveries of active subscriptions (`sending`), posts each group of one subscription and one case in event order
(groups in parallel), and records every attempt. A 2xx is delivered; anything else (an error status, a refused
connection, a timeout, an address that became private) is retried after 5 s, 30 s, 2 min, 5 min, then every
10 min, so an endpoint that was down for an hour has every event within ten minutes of coming back; after
`RETRY_WINDOW` (and at least `MIN_ATTEMPTS` tries) a delivery is `dead` (the dead-letter list) until an
administrator replays it. While an earlier
event of the same case waits for its retry, the later ones wait too: a receiver sees a case's events in order
(the CloudEvent `sequence` attribute numbers them). A receiver that answers slowly is cut off at
`REQUEST_TIMEOUT` seconds, so it cannot hold the sweep. Delivery is at least once: a receiver deduplicates by the
`webhook-id` header, which is the same on every retry.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import func, select, tuple_, update
from sqlmodel import col

from engine.service import Engine, UnitOfWork
from notifications.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookSubscription
from notifications.webhooks.signing import InvalidToken, decrypt_secret, signed_headers
from notifications.webhooks.targets import TargetRefused, check_target

__all__ = ["BACKOFF", "REQUEST_TIMEOUT", "RETRY_WINDOW", "WebhookSender", "replay"]

log = logging.getLogger("vuosikello.webhooks")

Fence = Callable[[UnitOfWork], None]
BACKOFF = (5, 30, 120, 300, 600)  # seconds before the 2nd, 3rd ... attempt; then every 600 s
RETRY_WINDOW = timedelta(days=3)
MIN_ATTEMPTS = 10  # and at least this many tries: a service that was itself down for days does not kill its queue
REQUEST_TIMEOUT = 10.0
STALE_CLAIM = timedelta(minutes=5)
PARALLEL = 16
D = WebhookDelivery.__table__.c  # type: ignore[attr-defined]


def backoff(attempts: int) -> int:
    """Return the seconds to wait after the given number of failed attempts."""
    return BACKOFF[min(attempts, len(BACKOFF)) - 1] if attempts >= 1 else 0


@dataclass(frozen=True)
class _Row:
    id: int
    subscription_id: int
    case_id: int
    event_id: int
    message_id: str
    body: str
    attempts: int
    created_at: datetime


@dataclass(frozen=True)
class _Target:
    url: str
    secret: str | None
    allow_private: bool


class WebhookSender:
    """Sends due webhook deliveries; one per process, run by the scheduler's leader."""

    def __init__(self, engine: Engine, service_key: str, *, batch: int = 200, timeout: float = REQUEST_TIMEOUT,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.engine = engine
        self.timeout = timeout
        self.service_key = service_key
        self.batch = batch
        self.transport = transport

    # -- claiming ---------------------------------------------------------------------------------------------
    def _claim(self, now: datetime, fence: Fence | None) -> tuple[list[_Row], dict[int, _Target]]:
        def work(uow: UnitOfWork) -> tuple[list[_Row], dict[int, _Target]]:
            if fence is not None:
                fence(uow)
            uow.session.execute(update(WebhookDelivery).where(col(WebhookDelivery.status) == "sending",
                                                              col(WebhookDelivery.claimed_at) < now - STALE_CLAIM)
                                .values(status="pending", claimed_at=None))
            active = select(col(WebhookSubscription.id)).where(col(WebhookSubscription.active).is_(True))
            stmt = (select(D.id, D.subscription_id, D.case_id, D.event_id, D.message_id, D.body, D.attempts,
                           D.created_at)
                    .where(D.status == "pending", D.next_attempt_at <= now, D.subscription_id.in_(active))
                    .order_by(D.event_id).limit(self.batch))
            if not uow.db.is_sqlite:
                stmt = stmt.with_for_update(skip_locked=True)
            rows = [_Row(*r) for r in uow.session.execute(stmt).all()]
            if not rows:
                return [], {}
            groups = {(r.subscription_id, r.case_id) for r in rows}
            # a case's events go in order: a group whose earliest undelivered event is not due waits for it
            first = dict(((s, c), m) for s, c, m in uow.session.execute(
                select(D.subscription_id, D.case_id, func.min(D.event_id))
                .where(D.status.in_(("pending", "sending")), tuple_(D.subscription_id, D.case_id).in_(groups))
                .group_by(D.subscription_id, D.case_id)).all())
            head: dict[tuple[int, int], int] = {}
            for r in rows:
                head.setdefault((r.subscription_id, r.case_id), r.event_id)
            rows = [r for r in rows if first.get((r.subscription_id, r.case_id)) == head[(r.subscription_id,
                                                                                          r.case_id)]]
            if not rows:
                return [], {}
            uow.session.execute(update(WebhookDelivery).where(col(WebhookDelivery.id).in_([r.id for r in rows]))
                                .values(status="sending", claimed_at=now))
            targets = {}
            for sub in uow.session.execute(select(WebhookSubscription).where(
                    col(WebhookSubscription.id).in_({r.subscription_id for r in rows}))).scalars():
                try:
                    secret: str | None = decrypt_secret(sub.secret_encrypted, self.service_key)
                except InvalidToken:
                    secret = None
                targets[sub.id or 0] = _Target(sub.url, secret, sub.allow_private)
            return rows, targets
        return self.engine.run(work)

    # -- recording ---------------------------------------------------------------------------------------------
    def _record(self, row: _Row, now: datetime, status_code: int | None, error: str | None, ms: int,
                claimed: datetime) -> bool:
        """Record one attempt and its outcome; return whether it was delivered."""
        delivered = error is None and status_code is not None and 200 <= status_code < 300
        attempts = row.attempts + 1
        values: dict[str, Any] = {"attempts": attempts, "last_status": status_code, "claimed_at": None,
                                  "last_error": None if delivered else (error or f"HTTP {status_code}")[:1000]}
        if delivered:
            values.update(status="delivered", delivered_at=now)
        elif now - row.created_at >= RETRY_WINDOW and attempts >= MIN_ATTEMPTS:
            values.update(status="dead")
        else:
            values.update(status="pending", next_attempt_at=now + timedelta(seconds=backoff(attempts)))

        def work(uow: UnitOfWork) -> None:
            uow.session.execute(update(WebhookDelivery).where(
                col(WebhookDelivery.id) == row.id, col(WebhookDelivery.status) == "sending",
                col(WebhookDelivery.claimed_at) == claimed).values(**values))
            uow.session.add(WebhookAttempt(delivery_id=row.id, at=now, status_code=status_code,
                                           error=None if delivered else values["last_error"], duration_ms=ms))
        self.engine.run(work)
        return delivered

    def _release(self, rows: list[_Row], claimed: datetime) -> None:
        if not rows:
            return

        def work(uow: UnitOfWork) -> None:
            uow.session.execute(update(WebhookDelivery).where(
                col(WebhookDelivery.id).in_([r.id for r in rows]), col(WebhookDelivery.status) == "sending",
                col(WebhookDelivery.claimed_at) == claimed).values(status="pending", claimed_at=None))
        self.engine.run(work)

    # -- sending -----------------------------------------------------------------------------------------------
    async def _post(self, client: httpx.AsyncClient, target: _Target, row: _Row,
                    at: datetime) -> tuple[int | None, str | None]:
        if target.secret is None:
            return None, "the subscription's secret cannot be read (the service key changed): rotate it"
        try:
            await asyncio.to_thread(check_target, target.url, allow_private=target.allow_private)
        except TargetRefused as exc:
            return None, f"refused: {exc}"
        # the signature's timestamp is the wall clock's, whatever the engine's clock says: receivers compare it
        # with their own clock to refuse replays (the scheme's five-minute tolerance)
        headers = signed_headers(target.secret, row.message_id, datetime.now(UTC), row.body)
        try:
            try:
                response = await asyncio.wait_for(client.post(target.url, content=row.body.encode("utf-8"),
                                                              headers=headers), self.timeout)
            except (httpx.ReadError, httpx.RemoteProtocolError, httpx.WriteError):
                # a kept-alive connection the receiver had just closed: try once more on a fresh one at once (the
                # receiver deduplicates by webhook-id, so a second copy of an event it did read is harmless)
                response = await asyncio.wait_for(client.post(target.url, content=row.body.encode("utf-8"),
                                                              headers=headers), self.timeout)
            return response.status_code, None
        except TimeoutError:
            return None, f"no answer within {self.timeout:g} s"
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}: {exc}"[:1000]

    async def _send_group(self, client: httpx.AsyncClient, limit: asyncio.Semaphore, rows: list[_Row],
                          targets: dict[int, _Target], at: datetime) -> int:
        done = 0
        async with limit:
            for i, row in enumerate(rows):
                started = time.monotonic()
                status_code, error = await self._post(client, targets[row.subscription_id], row, at)
                ms = int((time.monotonic() - started) * 1000)
                if not await asyncio.to_thread(self._record, row, at, status_code, error, ms, at):
                    await asyncio.to_thread(self._release, rows[i + 1:], at)  # the rest waits, in order
                    return done
                done += 1
        return done

    async def deliver_due(self, now: datetime | None = None, fence: Fence | None = None) -> int:
        """Deliver every due event; return how many were delivered."""
        at = now or self.engine.clock.now()
        rows, targets = await asyncio.to_thread(self._claim, at, fence)
        if not rows:
            return 0
        groups: dict[tuple[int, int], list[_Row]] = {}
        for row in rows:
            groups.setdefault((row.subscription_id, row.case_id), []).append(row)
        limit = asyncio.Semaphore(PARALLEL)
        async with httpx.AsyncClient(transport=self.transport, follow_redirects=False,
                                     timeout=httpx.Timeout(self.timeout, connect=min(3.0, self.timeout))) as client:
            counts = await asyncio.gather(*(self._send_group(client, limit, g, targets, at)
                                            for g in groups.values()))
        return sum(counts)

    def deliver_due_sync(self, now: datetime | None = None, fence: Fence | None = None) -> int:
        """Run `deliver_due` to completion from synchronous code (the scheduler's jobs, tests)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self.deliver_due(now, fence))
        with ThreadPoolExecutor(max_workers=1) as pool:
            return pool.submit(lambda: asyncio.run(self.deliver_due(now, fence))).result()


def replay(uow: UnitOfWork, delivery_ids: list[int]) -> int:
    """Queue dead (or delivered) deliveries again, now, keeping their id and body; return how many."""
    result = uow.session.execute(update(WebhookDelivery).where(
        col(WebhookDelivery.id).in_(delivery_ids), col(WebhookDelivery.status).in_(("dead", "delivered")))
        .values(status="pending", next_attempt_at=uow.now, created_at=uow.now, claimed_at=None))
    return int(getattr(result, "rowcount", 0) or 0)


