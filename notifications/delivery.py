"""Deliver the outbox after commits: claim due rows, send over one SMTP connection, record the outcome.

Temporary failures retry with exponential backoff and jitter for 24 hours; permanent ones are recorded on the
message and on its case. Without SMTP settings mail is captured: marked `captured` and shown at /mail.
A row is claimed (status `sending`) in its own short transaction before the SMTP exchange; a crash between the
server's acceptance and the commit of `sent` is the only way to deliver twice, and the Message-ID stays the same.
Claims left by a crashed or deposed scheduler leader go back to the queue when the next leader starts
(`release_claims`); a sender checks its claims while it sends and stops once they were taken from it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

from sqlalchemy import Row, select, update

from engine.actors import SYSTEM
from engine.db import rowcount
from engine.models import OutboxMessage, table_of
from engine.service import Engine, UnitOfWork
from engine.settings import Settings
from notifications.mime import MailSpec, build_message
from notifications.smtp import (
    RETRY_WINDOW,
    DeliveryError,
    PermanentDeliveryError,
    SmtpConfig,
    SmtpSender,
    TemporaryDeliveryError,
    backoff_delay,
)

log = logging.getLogger("vuosikello.delivery")
OUTBOX = table_of(OutboxMessage)
STALE_CLAIM = timedelta(minutes=5)
CLAIM_RECHECK = 1.0  # seconds of sending after which a batch checks that its claims still stand
OutboxRow = Row[Any]  # a row of OUTBOX, read through Core: attribute access is untyped
Fence = Callable[[UnitOfWork], None]


def to_message(row: OutboxRow, sender: str, domain: str) -> EmailMessage:
    """Build the EmailMessage of an outbox row."""
    spec = MailSpec(sender=sender, to=[row.to_address], cc=list(row.cc or []), subject=row.subject, text=row.text,
                    html=row.html, message_key=row.dedupe_key, list_id=row.list_id or f"vuosikello.{domain}",
                    domain=domain, ics=row.ics.encode("utf-8") if row.ics else None, lang=row.language,
                    date=row.created_at)
    return build_message(spec)


class Delivery:
    """Sends due outbox rows; one instance per process, used by the scheduler's leader."""

    def __init__(self, engine: Engine, smtp: SmtpConfig | None, *, sender: str, domain: str, batch: int = 100) -> None:
        self.engine = engine
        self.smtp = smtp
        self.sender = sender
        self.domain = domain
        self.batch = batch

    # -- claiming ------------------------------------------------------------------------------------------
    def release_claims(self, fence: Fence | None = None) -> int:
        """Put every claimed row back in the queue; the scheduler calls this when this process starts leading.

        Only the leader sends, so rows still `sending` then were claimed by a leader that crashed or was deposed:
        they go out again now instead of after STALE_CLAIM (a row the server had accepted is sent twice, with
        the same Message-ID, which is the one duplicate the outbox allows).
        """
        def work(uow: UnitOfWork) -> int:
            if fence is not None:
                fence(uow)
            return rowcount(uow.session.execute(update(OUTBOX).where(OUTBOX.c.status == "sending")
                                                .values(status="pending", claimed_at=None)))
        count = self.engine.run(work)
        if count:
            log.warning("%s outbox claims of a previous scheduler leader released", count)
        return count

    def _claim(self, now: datetime, fence: Fence | None = None) -> list[OutboxRow]:
        def work(uow: UnitOfWork) -> list[OutboxRow]:
            if fence is not None:  # a deposed leader stops here; the live one renews its heartbeat
                fence(uow)
            # claims left by a crashed sender go back to the queue
            uow.session.execute(update(OUTBOX).where(OUTBOX.c.status == "sending",
                                                     OUTBOX.c.claimed_at < now - STALE_CLAIM)
                                .values(status="pending"))
            stmt = (select(OUTBOX).where(OUTBOX.c.status == "pending", OUTBOX.c.next_attempt_at <= now)
                    .order_by(OUTBOX.c.next_attempt_at, OUTBOX.c.id).limit(self.batch))
            if not uow.db.is_sqlite:
                stmt = stmt.with_for_update(skip_locked=True)
            rows = uow.session.execute(stmt).all()
            if rows:
                uow.session.execute(update(OUTBOX).where(OUTBOX.c.id.in_([r.id for r in rows]))
                                    .values(status="sending", claimed_at=now))
            return list(rows)
        return self.engine.run(work)

    def _still_claimed(self, row_id: int, claimed: datetime) -> bool:
        with self.engine.db.read_session() as session:
            found = session.execute(select(OUTBOX.c.id).where(OUTBOX.c.id == row_id, OUTBOX.c.status == "sending",
                                                              OUTBOX.c.claimed_at == claimed)).first()
        return found is not None

    # -- recording ------------------------------------------------------------------------------------------
    def _mark(self, row_id: int, claimed: datetime, **values: Any) -> None:
        """Record an outcome while the claim stands: a released and reclaimed row is no longer ours to mark."""
        with self.engine.db.write_engine.begin() as conn:  # a bare connection: a Session costs twice as much
            conn.execute(update(OUTBOX).where(OUTBOX.c.id == row_id, OUTBOX.c.status == "sending",
                                              OUTBOX.c.claimed_at == claimed).values(**values))

    def _failed_permanently(self, row: OutboxRow, error: str, now: datetime, status: str) -> None:
        def work(uow: UnitOfWork) -> None:
            uow.session.execute(update(OUTBOX).where(OUTBOX.c.id == row.id).values(
                status=status, last_error=error[:2000], attempts=row.attempts + 1, claimed_at=None))
            if row.case_id is not None:
                case = uow.case(row.case_id)
                uow._record(case, "delivery_failed", "DeliveryFailed", case.state, case.state, SYSTEM,
                            {"outbox_id": row.id, "to": row.to_address, "error": error[:500]}, None)
        self.engine.run(work)

    def _outcome(self, row: OutboxRow, now: datetime, exc: DeliveryError | None, refused: dict[str, str]) -> None:
        if exc is None:
            self._mark(row.id, now, status="sent", sent_at=now, attempts=row.attempts + 1, refused=refused,
                       last_error=None, claimed_at=None)
            if refused:
                self._failed_note(row, refused)
            return
        if isinstance(exc, PermanentDeliveryError):
            self._failed_permanently(row, str(exc), now, "failed")
            return
        attempts = row.attempts + 1
        if now - row.created_at >= RETRY_WINDOW:
            self._failed_permanently(row, f"gave up after 24 hours: {exc}", now, "dead")
            return
        self._mark(row.id, now, status="pending", attempts=attempts, last_error=str(exc)[:2000], claimed_at=None,
                   next_attempt_at=now + timedelta(seconds=backoff_delay(attempts)))

    def _failed_note(self, row: OutboxRow, refused: dict[str, str]) -> None:
        if row.case_id is None:
            return

        def work(uow: UnitOfWork) -> None:
            case = uow.case(row.case_id)
            uow._record(case, "delivery_failed", "DeliveryFailed", case.state, case.state, SYSTEM,
                        {"outbox_id": row.id, "refused": refused}, None)
        self.engine.run(work)

    # -- sending ---------------------------------------------------------------------------------------------
    async def deliver_due(self, now: datetime | None = None, fence: Fence | None = None) -> int:
        """Send every due row (each claim checked by the scheduler's `fence`); return how many were handled."""
        handled = 0
        sender = SmtpSender(self.smtp) if self.smtp else None
        try:
            while True:
                at = now or self.engine.clock.now()
                rows = await asyncio.to_thread(self._claim, at, fence)
                sent = await self._send_claimed(sender, rows, at)
                handled += sent
                if sent < len(rows):  # our claims were released: a new leader sends the rest
                    return handled
                if len(rows) < self.batch:
                    return handled
        finally:
            if sender is not None:
                await sender.close()

    async def _send_claimed(self, sender: SmtpSender | None, rows: list[OutboxRow], at: datetime) -> int:
        """Send claimed rows in order while the claims stand; return how many were handled."""
        checked = time.monotonic()
        for i, row in enumerate(rows):
            if time.monotonic() - checked > CLAIM_RECHECK:  # slow, or frozen and woken up
                if not await asyncio.to_thread(self._still_claimed, row.id, at):
                    log.warning("outbox claims released by a new scheduler leader; %s left", len(rows) - i)
                    return i
                checked = time.monotonic()
            await self._send_one(sender, row, at)
        return len(rows)

    async def _send_one(self, sender: SmtpSender | None, row: OutboxRow, now: datetime) -> None:
        if sender is None:  # captured locally
            await asyncio.to_thread(self._mark, row.id, now, status="captured", sent_at=now, attempts=row.attempts + 1,
                                    claimed_at=None)
            return
        error: DeliveryError | None = None
        refused: dict[str, str] = {}
        try:
            result = await sender.send(to_message(row, self.sender, self.domain))
            refused = dict(result.refused)
        except (TemporaryDeliveryError, PermanentDeliveryError) as exc:
            error = exc
        except Exception as exc:  # noqa: BLE001 - a malformed row must not stop the queue
            log.exception("building or sending outbox %s failed", row.id)
            error = PermanentDeliveryError(f"{type(exc).__name__}: {exc}")
        await asyncio.to_thread(self._outcome, row, now, error, refused)

    def deliver_due_sync(self, now: datetime | None = None, fence: Fence | None = None) -> int:
        """Run `deliver_due` to completion from synchronous code."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self.deliver_due(now, fence))
        # called from inside a running loop (e.g. a test driving a browser): run on a thread of its own
        with ThreadPoolExecutor(max_workers=1) as pool:
            return pool.submit(lambda: asyncio.run(self.deliver_due(now, fence))).result()


def smtp_config_from(settings: Settings) -> SmtpConfig | None:
    """Return the SMTP configuration, or None when mail is captured locally."""
    if not settings.smtp_host:
        return None
    return SmtpConfig(host=settings.smtp_host, port=settings.smtp_port, username=settings.smtp_username,
                      password=settings.smtp_password, use_tls=settings.smtp_tls, start_tls=settings.smtp_starttls,
                      timeout=settings.smtp_timeout)
