"""Everything a running service shares: settings, database, definitions, engine, clock, sweeps and scheduler."""

from __future__ import annotations

from dataclasses import dataclass, field

from engine import timers
from engine.anchor import Anchor, audit_key
from engine.clock import Clock, SystemClock
from engine.db import Database, make_database
from engine.registry import Registry
from engine.scheduler import Scheduler
from engine.service import Engine
from engine.settings import Settings
from engine.timers import TimerSweep
from notifications import reminders
from notifications.delivery import Delivery, smtp_config_from
from notifications.digest import send_digests
from notifications.outbox import MailConfig
from notifications.webhooks import events as webhook_events
from notifications.webhooks.sender import WebhookSender
from workflows.agreement.record import RecordMaker, load_seal
from workflows.registry import build_registry


@dataclass
class AppContext:
    """The service's shared objects, built once per process."""

    settings: Settings
    db: Database
    registry: Registry
    engine: Engine
    clock: Clock
    sweep: TimerSweep
    delivery: Delivery
    scheduler: Scheduler | None = field(default=None)
    webhooks: WebhookSender | None = field(default=None)  # delivers the queued webhook events
    anchor: Anchor | None = field(default=None)  # signed audit checkpoints (None: no key configured)
    records: RecordMaker | None = field(default=None)  # makes the pending sealed records of agreements in force

    def run_timers(self, fence: object = None) -> int:
        """Fire every due timer (the emails they queue are rendered by `run_mail`)."""
        return self.sweep.run_due(fence=fence)  # type: ignore[arg-type]

    def run_mail(self, fence: object = None) -> int:
        """Render what is queued, compose the digests that are due, then send: the scheduler's mail job."""
        n = send_digests(self.engine, fence)  # type: ignore[arg-type]  # renders first: a reminder is held once rendered
        return n + self.delivery.deliver_due_sync(fence=fence)  # type: ignore[arg-type]

    def tick(self) -> int:
        """Fire every due timer, then deliver due mail, at the clock's current time (tests call this)."""
        n = self.run_timers()
        n += self.anchor.catch_up() if self.anchor is not None else 0  # before the record that cites it
        n += self.records.make_pending() if self.records is not None else 0
        n += self.webhooks.deliver_due_sync() if self.webhooks is not None else 0
        return n + self.run_mail()

    def scheduler_jobs(self) -> list:  # type: ignore[type-arg]
        """Return the jobs the scheduler runs each second."""
        def timers_job(fence: object) -> int:
            return self.run_timers(fence)

        def mail_job(fence: object) -> int:
            return self.run_mail(fence)

        def webhook_job(fence: object) -> int:
            return self.webhooks.deliver_due_sync(fence=fence) if self.webhooks else 0  # type: ignore[arg-type]

        def checkpoint_job(fence: object) -> int:  # entries into force anchored; a signed checkpoint once a day
            return self.anchor.daily(fence) if self.anchor is not None else 0  # type: ignore[arg-type]

        def record_job(fence: object) -> int:  # sealed records, made before the in-force mail that links to them
            return self.records.make_pending(fence) if self.records is not None else 0  # type: ignore[arg-type]
        # the checkpoint before the sealed record that cites it, the record before the in-force mail that links it
        return [timers_job, checkpoint_job, record_job, mail_job, webhook_job]

    def start_scheduler(self) -> Scheduler:
        """Start the background scheduler (raises SchedulerLocked on a SQLite file already served)."""
        # on taking the lead, mail a crashed or deposed leader had claimed is released at once, not after 5 minutes
        self.scheduler = Scheduler(self.engine, self.scheduler_jobs(), self.settings.scheduler_interval_seconds,
                                   on_lead=[self.delivery.release_claims])
        self.scheduler.start()
        return self.scheduler


def _wire(registry: Registry, settings: Settings) -> None:
    registry.on_transition(timers.on_transition)
    registry.on_transition(reminders.on_transition)
    webhook_events.install(registry)  # queued in the transition's transaction
    registry.services["mail"] = MailConfig(base_url=settings.base_url, sender=settings.mail_from,
                                           domain=settings.mail_domain)


def build_context(settings: Settings, *, clock: Clock | None = None, db: Database | None = None) -> AppContext:
    """Build the shared objects from settings."""
    db = db or make_database(settings.database_url, busy_timeout_ms=settings.sqlite_busy_timeout_ms)
    registry = build_registry()
    _wire(registry, settings)
    clock = clock or SystemClock()
    engine = Engine(db, registry, clock)
    key = audit_key(settings)
    anchor = Anchor(engine, key) if key is not None else None  # entries into force anchored by the leader's job
    sweep = TimerSweep(engine, {"reminder": reminders.send_reminder, "escalation": reminders.send_reminder})
    delivery = Delivery(engine, smtp_config_from(settings), sender=settings.mail_from, domain=settings.mail_domain)
    return AppContext(settings=settings, db=db, registry=registry, engine=engine, clock=clock, sweep=sweep,
                      delivery=delivery, anchor=anchor, webhooks=WebhookSender(engine, settings.secret_key),
                      records=RecordMaker(engine, load_seal(settings)))


