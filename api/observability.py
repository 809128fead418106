"""Operations: a request id on every log line and error response, structured JSON logs, Prometheus metrics.

- `RequestIdMiddleware` (pure ASGI) takes the caller's `X-Request-ID` when it is a sane token (letters, digits,
  `-_.:`, at most 64) or makes one, keeps it in a context variable for the request, and returns it in the
  `X-Request-ID` response header; `api.errors` puts it in every error body, so a person reporting a problem can
  quote it and an operator finds every log line of that request.
- `RequestIdFilter` adds `request_id` to every log record; `JsonFormatter` writes one JSON object per line
  (`VUOSIKELLO_LOG_FORMAT=json`). Written by hand: it is fifteen lines over the standard library's Formatter, and
  the one library for it (python-json-logger) would add a dependency for less than it saves.
- `metrics_text` renders the Prometheus exposition format with `prometheus_client`: timers due and late, outbox
  depth by status, mail deliveries failed, webhook backlog and dead letters, read from the database at scrape time.
"""

from __future__ import annotations

import copy
import json
import logging
import re
import secrets
from contextvars import ContextVar
from datetime import datetime, timedelta
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, generate_latest
from sqlalchemy import func, select
from sqlmodel import Session, col
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engine.models import OutboxMessage, Timer, timer_pending
from notifications.webhooks.models import WebhookDelivery

__all__ = ["JsonFormatter", "RequestIdFilter", "RequestIdMiddleware", "configure_logging", "current_request_id",
           "metrics_text"]

_REQUEST_ID: ContextVar[str | None] = ContextVar("vuosikello_request_id", default=None)
_SANE = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
LATE_AFTER = timedelta(seconds=60)  # a timer still pending a minute after it fell due counts as late


def current_request_id() -> str | None:
    """Return the id of the request being handled, if any."""
    return _REQUEST_ID.get()


class RequestIdMiddleware:
    """Give every HTTP request an id: the caller's sane `X-Request-ID`, else a new one; echo it in the response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers") or ()).get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _SANE.match(given) else secrets.token_hex(8)
        token = _REQUEST_ID.set(request_id)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode("ascii"))]
            await send(message)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            _REQUEST_ID.reset(token)


class RequestIdFilter(logging.Filter):
    """Add `request_id` (or "-") to every record, for formats and JSON lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Annotate the record and let it through."""
        record.request_id = _REQUEST_ID.get() or "-"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id, and the exception if any."""

    def format(self, record: logging.LogRecord) -> str:
        """Return the record as a JSON line."""
        out: dict[str, Any] = {"time": datetime.fromtimestamp(record.created).astimezone().isoformat(),
                               "level": record.levelname, "logger": record.name, "message": record.getMessage(),
                               "request_id": getattr(record, "request_id", None) or _REQUEST_ID.get() or "-"}
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def configure_logging(fmt: str) -> None:
    """Put the request-id filter on the root handlers and, for `json`, the JSON formatter (plain otherwise)."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=logging.INFO)
    for name in ("", "uvicorn", "uvicorn.access", "uvicorn.error"):
        for handler in logging.getLogger(name).handlers:
            if not any(isinstance(f, RequestIdFilter) for f in handler.filters):
                handler.addFilter(RequestIdFilter())
            if fmt == "json":
                handler.setFormatter(JsonFormatter())


def metrics_text(session: Session, now: datetime) -> bytes:
    """Return the service's metrics in the Prometheus text format, counted now."""
    registry = CollectorRegistry()
    due = Gauge("vuosikello_timers_due", "Timers pending whose time has come", registry=registry)
    late = Gauge("vuosikello_timers_late", "Timers pending more than a minute after they fell due", registry=registry)
    pending = Gauge("vuosikello_timers_pending", "Timers pending in all", registry=registry)
    outbox = Gauge("vuosikello_outbox_messages", "Outbox messages by status", ["status"], registry=registry)
    failed = Gauge("vuosikello_mail_deliveries_failed", "Mail that failed for good (failed or dead)",
                   registry=registry)
    hooks = Gauge("vuosikello_webhook_deliveries", "Webhook deliveries by status", ["status"], registry=registry)
    backlog = Gauge("vuosikello_webhook_backlog", "Webhook deliveries waiting to be delivered", registry=registry)
    pending_timers = timer_pending()  # the partial index ix_timer_pending_due answers all three counts
    pending.set(session.execute(select(func.count()).select_from(Timer).where(pending_timers)).scalar_one())
    due.set(session.execute(select(func.count()).select_from(Timer).where(
        pending_timers, col(Timer.due_at) <= now)).scalar_one())
    late.set(session.execute(select(func.count()).select_from(Timer).where(
        pending_timers, col(Timer.due_at) <= now - LATE_AFTER)).scalar_one())
    by_status = dict(session.execute(select(col(OutboxMessage.status), func.count())
                                     .group_by(col(OutboxMessage.status))).all())
    for status in ("queued", "pending", "sending", "sent", "captured", "failed", "dead", "held", "digested"):
        outbox.labels(status).set(by_status.get(status, 0))
    failed.set(by_status.get("failed", 0) + by_status.get("dead", 0))
    counts = dict(session.execute(select(col(WebhookDelivery.status), func.count())
                                  .group_by(col(WebhookDelivery.status))).all())
    for status in ("pending", "sending", "delivered", "dead"):
        hooks.labels(status).set(counts.get(status, 0))
    backlog.set(counts.get("pending", 0) + counts.get("sending", 0))
    return generate_latest(registry)


def uvicorn_log_config(fmt: str) -> dict[str, Any]:
    """Return uvicorn's logging configuration with the request id (and the secret scrubber) on every handler,
    JSON lines for `json`, and the service's own `vuosikello.*` loggers writing through the same handler."""
    from uvicorn.config import LOGGING_CONFIG

    config: dict[str, Any] = copy.deepcopy(LOGGING_CONFIG)
    config["filters"] = {"request_id": {"()": "api.observability.RequestIdFilter"},
                         "scrub": {"()": "api.logscrub.ScrubSecrets"}}
    for handler in config["handlers"].values():
        handler["filters"] = ["request_id", "scrub"]
    if fmt == "json":
        config["formatters"] = {name: {"()": "api.observability.JsonFormatter"} for name in config["formatters"]}
    else:
        access = config["formatters"]["access"]
        access["fmt"] = access["fmt"].replace("%(levelprefix)s", "%(levelprefix)s [%(request_id)s]")
    config["loggers"]["vuosikello"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config
