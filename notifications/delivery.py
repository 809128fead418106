"""Deliver the outbox after commits: claim due rows, send over a few pooled SMTP connections, record the outcome.

Temporary failures retry with exponential backoff and jitter for 24 hours; permanent ones are recorded on the
message and on its case. Without SMTP settings mail is captured: marked `captured` and shown at /mail.

Each message is serialised once (`build_wire`: the same bytes serve every connection and a reconnect) and sent
over one of `connections` SMTP sessions (default 4) working through the claimed batch side by side. `sent` is
recorded by group commit: one UPDATE names every message accepted since the last one, however many connections
they came over, so the commits per message fall as the connections share them; nothing waits for a batch to fill.

What holds across kill -9 and leader changes (at least once, never lost):
- A row is claimed (status `sending`) in its own short transaction before any SMTP exchange; claims left by a
  crashed or deposed leader go back to the queue when the next leader starts (`release_claims`), or after
  STALE_CLAIM. So a message is never lost: until `sent` is committed it is sent again.
- A message can be delivered twice only when the process dies after the server accepted it (its reply to DATA)
  and before the commit recording `sent`. A connection sends its next DATA only after the commit recording its
  previous message (it overlaps MAIL FROM / RCPT TO with that commit, which deliver nothing), so at any moment
  each connection has at most one accepted message not yet recorded, the last one its SMTP session carried, and
  that message is in the commit under way or the next one. A crash therefore re-sends at most `connections`
  messages (with `connections=1` at most one, exactly as before pooling and batching); batching does not widen
  the window of any connection, since no accepted message waits for others to make up a batch.
- Every copy carries the same Message-ID (from the row's dedupe key), so a receiver can drop the second.
- Each group commit updates only rows still `sending` under this claim: when it finds fewer, a new leader took
  them and every connection stops before its next DATA; a sender idle for CLAIM_RECHECK checks its claim first,
  and with it the scheduler's lease (a leader frozen and deposed finds its claims standing for the moment between
  the new leader's takeover and its `release_claims`). A failure recorded on a claim no longer ours stops it too.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

from sqlalchemy import Row, bindparam, select, update

from engine.actors import SYSTEM
from engine.db import rowcount
from engine.models import OutboxMessage, table_of
from engine.scheduler import LostLeadership
from engine.service import Engine, UnitOfWork
from engine.settings import Settings
from notifications.deferred import render_queued
from notifications.mime import MailSpec, build_message, build_wire
from notifications.smtp import (
    RETRY_WINDOW,
    DeliveryError,
    Outgoing,
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
# Built once: constructing and keying the statement cost more CPU than the commit itself (~0.5 ms a call).
_RECORD_SENT = (update(OUTBOX)
                .where(OUTBOX.c.id.in_(bindparam("ids", expanding=True)), OUTBOX.c.status == "sending",
                       OUTBOX.c.claimed_at == bindparam("claimed", type_=OUTBOX.c.claimed_at.type))
                .values(status=bindparam("outcome"), sent_at=bindparam("claimed", type_=OUTBOX.c.sent_at.type),
                        attempts=OUTBOX.c.attempts + 1, refused={}, last_error=None, claimed_at=None))


def _claimed(row_id: int, claimed: datetime) -> Any:
    """An UPDATE of one row while the claim made at `claimed` stands (still `sending`, not released or reclaimed)."""
    return update(OUTBOX).where(OUTBOX.c.id == row_id, OUTBOX.c.status == "sending", OUTBOX.c.claimed_at == claimed)


def mail_spec(row: OutboxRow, sender: str, domain: str) -> MailSpec:
    """The MailSpec of an outbox row."""
    return MailSpec(sender=sender, to=[row.to_address], cc=list(row.cc or []), subject=row.subject, text=row.text,
                    html=row.html, message_key=row.dedupe_key, list_id=row.list_id or f"vuosikello.{domain}",
                    domain=domain, ics=row.ics.encode("utf-8") if row.ics else None, lang=row.language,
                    date=row.created_at)


def to_message(row: OutboxRow, sender: str, domain: str) -> EmailMessage:
    """Build the EmailMessage of an outbox row."""
    return build_message(mail_spec(row, sender, domain))


def to_outgoing(row: OutboxRow, sender: str, domain: str) -> Outgoing:
    """The row serialised once (`build_wire`), or as an EmailMessage when only the email package can write it."""
    spec = mail_spec(row, sender, domain)
    return build_wire(spec) or build_message(spec)


class _Stop(Exception):
    """A connection stops before its next DATA."""


class _ClaimsLost(_Stop):
    """A new scheduler leader took this sender's claims."""


class _RecordFailed(_Stop):
    """The commit recording `sent` failed (the cause is chained): what it named is sent again later."""


class _SentRecorder:
    """Group commit of `sent`: every message accepted since the last commit is recorded by the next one.

    `add` returns a future that resolves once the row's `sent` is committed: True while the claim stands, False
    when a new leader took the claims (the UPDATE found the row no longer ours). One commit runs at a time (in a
    thread); rows accepted while it runs go into the next. A failed commit fails the futures of its rows.
    """

    def __init__(self, delivery: Delivery, claimed: datetime, confirmed: float) -> None:
        self.delivery = delivery
        self.claimed = claimed
        self.lost = False
        self.broken: Exception | None = None  # a commit failed: every connection stops
        # when the claims were last known to stand: first, when the claim began (not when sending began: a process
        # frozen in between, and deposed, must check before its first message, not send for CLAIM_RECHECK first)
        self.confirmed = confirmed
        self._rows: list[tuple[int, asyncio.Future[bool]]] = []
        self._task: asyncio.Task[None] | None = None

    def add(self, row_id: int) -> asyncio.Future[bool]:
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._rows.append((row_id, done))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run())
        return done

    async def _run(self) -> None:
        while self._rows:
            rows, self._rows = self._rows, []
            try:
                count = await asyncio.to_thread(self.delivery._mark_sent, [row_id for row_id, _ in rows], self.claimed)
            except Exception as exc:  # noqa: BLE001 - the waiting connections raise it
                self.broken = exc
                for _, done in rows:
                    done.set_exception(exc)
                continue
            standing = count == len(rows)
            if standing:
                self.confirmed = time.monotonic()
            else:
                self.lost = True
            for _, done in rows:
                done.set_result(standing)


class Delivery:
    """Sends due outbox rows; one instance per process, used by the scheduler's leader."""

    def __init__(self, engine: Engine, smtp: SmtpConfig | None, *, sender: str, domain: str, batch: int = 100,
                 connections: int | None = None) -> None:
        self.engine = engine
        self.smtp = smtp
        self.sender = sender
        self.domain = domain
        self.batch = batch
        self.connections = max(1, connections or (smtp.connections if smtp else 4))
        self._autocommit = engine.db.engine.execution_options(isolation_level="AUTOCOMMIT")
        self.jitter: Callable[[], float] = random.random  # the backoff's full jitter; a test may fix it

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

    def _still_claimed(self, row_id: int, claimed: datetime, fence: Fence | None = None) -> bool:
        """Tell whether the claim on the row stands and, given the scheduler's `fence`, whether this process still
        leads: a leader deposed while frozen finds its claims standing until the new leader's `release_claims`
        runs, a moment after it took the lease, and a message sent in that moment went out twice."""
        stmt = select(OUTBOX.c.id).where(OUTBOX.c.id == row_id, OUTBOX.c.status == "sending",
                                         OUTBOX.c.claimed_at == claimed)
        if fence is None:
            with self.engine.db.read_session() as session:
                return session.execute(stmt).first() is not None

        def work(uow: UnitOfWork) -> bool:
            fence(uow)
            return uow.session.execute(stmt).first() is not None
        try:
            return self.engine.run(work)
        except LostLeadership:
            return False

    # -- recording ------------------------------------------------------------------------------------------
    def _mark(self, row_id: int, claimed: datetime, **values: Any) -> bool:
        """Record an outcome while the claim stands: a released and reclaimed row is no longer ours to mark.
        Return whether it was still ours."""
        with self.engine.db.write_engine.begin() as conn:  # a bare connection: a Session costs twice as much
            return rowcount(conn.execute(_claimed(row_id, claimed).values(**values))) == 1

    def _mark_sent(self, row_ids: list[int], claimed: datetime, status: str = "sent") -> int:
        """Record `sent` (or `captured`) for rows accepted without refusals, in one commit; return how many
        were still ours (a row released and reclaimed by a new leader is not)."""
        params = {"ids": row_ids, "claimed": claimed, "outcome": status}
        db = self.engine.db
        if db.is_sqlite:
            with db.write_engine.begin() as conn:  # BEGIN IMMEDIATE: SQLite's one writer
                return rowcount(conn.execute(_RECORD_SENT, params))
        # PostgreSQL: one statement is atomic on its own; autocommit spares the BEGIN and COMMIT round trips
        # (a commit took 8.0 ms with them, 5.4-6.1 ms without, on the loaded development VM)
        with self._autocommit.connect() as conn:
            return rowcount(conn.execute(_RECORD_SENT, params))

    def _failed_permanently(self, row: OutboxRow, error: str, now: datetime, status: str) -> bool:
        """Mark the row failed or dead and note it on its case, in one commit, only while the claim stands: a
        sender deposed while frozen must not fail (nor note as failed) a row a new leader has taken over."""
        def work(uow: UnitOfWork) -> bool:
            marked = rowcount(uow.session.execute(_claimed(row.id, now).values(
                status=status, last_error=error[:2000], attempts=row.attempts + 1, claimed_at=None)))
            if marked and row.case_id is not None:
                case = uow.case(row.case_id)
                uow._record(case, "delivery_failed", "DeliveryFailed", case.state, case.state, SYSTEM,
                            {"outbox_id": row.id, "to": row.to_address, "error": error[:500]}, None)
            return marked == 1
        return self.engine.run(work)

    def _outcome(self, row: OutboxRow, now: datetime, exc: DeliveryError | None, refused: dict[str, str]) -> bool:
        """Record one message's outcome on its own: a failure, or an acceptance with refused recipients.
        Return whether the claim stood (when not, a new leader has the row and this sender must stop)."""
        if exc is None:
            ours = self._mark(row.id, now, status="sent", sent_at=now, attempts=row.attempts + 1, refused=refused,
                              last_error=None, claimed_at=None)
            if refused and ours:
                self._failed_note(row, refused)
            return ours
        if isinstance(exc, PermanentDeliveryError):
            return self._failed_permanently(row, str(exc), now, "failed")
        attempts = row.attempts + 1
        if now - row.created_at >= RETRY_WINDOW:
            return self._failed_permanently(row, f"gave up after 24 hours: {exc}", now, "dead")
        # this was try number `attempts`, so the wait is before retry number `attempts - 1` (0-based): 0-30 s first
        return self._mark(row.id, now, status="pending", attempts=attempts, last_error=str(exc)[:2000],
                          claimed_at=None,
                          next_attempt_at=now + timedelta(seconds=backoff_delay(attempts - 1, rng=self.jitter)))

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
        """Render what is queued, then send every due row (each claim checked by the scheduler's `fence`); return
        how many were sent (or captured, or failed)."""
        await asyncio.to_thread(render_queued, self.engine, fence)
        handled = 0
        senders = [SmtpSender(self.smtp) for _ in range(self.connections)] if self.smtp else []
        try:
            while True:
                at = now or self.engine.clock.now()
                claiming = time.monotonic()
                rows = await asyncio.to_thread(self._claim, at, fence)
                if not rows:
                    return handled
                if senders:
                    sent = await self._send_claimed(senders, rows, at, claiming, fence)
                else:  # captured locally
                    sent = await asyncio.to_thread(self._mark_sent, [row.id for row in rows], at, "captured")
                handled += sent
                if sent < len(rows):  # our claims were released: a new leader sends the rest
                    return handled
                if len(rows) < self.batch:
                    return handled
        finally:
            await asyncio.gather(*(sender.close() for sender in senders))

    async def _send_claimed(self, senders: list[SmtpSender], rows: list[OutboxRow], at: datetime,
                            claiming: float, fence: Fence | None = None) -> int:
        """Send claimed rows over the pooled connections while the claims stand; return how many were handled.

        Rows are taken in claim order by whichever connection is free; a connection is opened only when it takes
        its first row, so a batch of one opens one.
        """
        queue = deque(rows)
        recorder = _SentRecorder(self, at, claiming)
        results = await asyncio.gather(*(self._connection_loop(sender, queue, recorder, at, fence)
                                         for sender in senders[:len(rows)]), return_exceptions=True)
        for result in results:  # every connection has stopped: now a failure may propagate
            if isinstance(result, BaseException):
                raise result
        return sum(result for result in results if isinstance(result, int))

    async def _connection_loop(self, sender: SmtpSender, queue: deque[OutboxRow], recorder: _SentRecorder,
                               at: datetime, fence: Fence | None = None) -> int:
        """One connection's share of a batch; returns how many of its rows were recorded while claimed."""
        handled = 0
        previous: asyncio.Future[bool] | None = None  # the commit recording this connection's previous message

        async def settle_previous() -> None:
            """Wait until this connection's previous message is recorded; raise if the claims were lost."""
            nonlocal handled, previous
            if previous is not None:
                try:
                    standing = await previous
                except Exception as exc:
                    raise _RecordFailed from exc
                finally:
                    previous = None
                if not standing:
                    raise _ClaimsLost
                handled += 1
            if recorder.lost:
                raise _ClaimsLost
            if recorder.broken is not None:
                raise _RecordFailed from recorder.broken

        async def before_data() -> None:
            await settle_previous()
            if time.monotonic() - recorder.confirmed > CLAIM_RECHECK:  # slow, or frozen and woken up
                if not await asyncio.to_thread(self._still_claimed, row.id, at, fence):
                    recorder.lost = True
                    raise _ClaimsLost
                recorder.confirmed = time.monotonic()

        try:
            while queue and not recorder.lost and recorder.broken is None:
                row = queue.popleft()
                error: DeliveryError | None = None
                try:
                    result = await sender.send(to_outgoing(row, self.sender, self.domain), before_data=before_data)
                except (TemporaryDeliveryError, PermanentDeliveryError) as exc:
                    error, result = exc, None
                except _Stop:
                    raise
                except Exception as exc:  # noqa: BLE001 - a malformed row must not stop the queue
                    log.exception("building or sending outbox %s failed", row.id)
                    error, result = PermanentDeliveryError(f"{type(exc).__name__}: {exc}"), None
                if result is not None and not result.refused:
                    previous = recorder.add(row.id)
                    continue
                await settle_previous()  # failures are rare: recorded one by one, in order
                refused = dict(result.refused) if result is not None else {}
                if not await asyncio.to_thread(self._outcome, row, at, error, refused):
                    recorder.lost = True  # the row was released: a new leader sends it, and the rest
                    raise _ClaimsLost
                handled += 1
            await settle_previous()
        except _ClaimsLost:
            log.warning("outbox claims released by a new scheduler leader; %s left", len(queue))
        except _RecordFailed as exc:
            assert exc.__cause__ is not None
            raise exc.__cause__ from None
        return handled

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
                      timeout=settings.smtp_timeout, connections=settings.smtp_connections)
