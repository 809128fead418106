"""Emails rendered when they are delivered, not inside the transaction of the transition that caused them.

A transition's notices (`notify:` in the definition) and a fired reminder timer's emails are queued in their own
transaction as outbox rows in status `queued`: the recipient, the language, the dedupe key and `render_context`,
the template's data exactly as the case was at the transition (the reader's name, the case, the deadline, what
they are asked to do, the payload). Nothing is rendered while the transaction holds its locks, nor in the request
or the sweep that caused it (26 emails when a 25-party agreement enters into force: a quarter of the approval's
time when they were rendered right after its commit). The scheduler leader's mail job renders what is queued just
before it sends (`render_queued`, called by `Delivery.deliver_due`), in batches of `BATCH` rows, each batch one
short transaction: the template in the reader's language, their single-use sign-in link, the .ics; the row
becomes `pending` (or `held` for a digest reader, which the digest renders first) and only then can be sent. The
job runs every second, so an email is rendered and sent within about a second of the commit. A process killed
while rendering leaves rows `queued` for the next run. A row is rendered exactly once: only a transaction that
finds it still `queued` renders it (SQLite: one writer at a time; PostgreSQL: FOR UPDATE SKIP LOCKED), and its
link rows commit with its text.

Written by hand rather than with a task queue: the outbox table already is the durable queue, and a second one
would need its own exactly-once bridge to it.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import BindParameter, bindparam, insert, null, select, update

from engine.i18n import translate
from engine.models import OutboxMessage, Person, table_of
from engine.service import Engine, UnitOfWork
from notifications.mime import deadline_ics, message_id
from notifications.outbox import list_id, mail_config
from notifications.render import NotPlainData, RenderLimitExceeded, plain, render

log = logging.getLogger("notifications.outbox")  # where a contained render failure has always been logged
QUEUED = "queued"
BATCH = 100
OUTBOX = table_of(OutboxMessage)
PERSON = table_of(Person)
Fence = Callable[[UnitOfWork], None]

# The keys are rendered into the statement (literal_execute), so each is planned with its values. With them as
# parameters psycopg prepared the statement after five runs and PostgreSQL kept a generic plan made while the
# outbox was small: a scan comparing every row with 200 parameters, 2 ms a batch of reminders at first, 50-100 ms
# once the table held 5,000 rows (half the sweep's time for 10,000 reminders).
_KEYS: BindParameter[Any] = bindparam("keys", expanding=True, literal_execute=True)
_EXISTING = select(OUTBOX.c.dedupe_key).where(OUTBOX.c.dedupe_key.in_(_KEYS))
_PEOPLE = select(PERSON.c.id, PERSON.c.name, PERSON.c.email, PERSON.c.language, PERSON.c.active,
                 PERSON.c.digest).where(PERSON.c.id.in_(bindparam("ids", expanding=True)))
_RENDERED = (update(OUTBOX).where(OUTBOX.c.id == bindparam("b_id"), OUTBOX.c.status == QUEUED)
             .values(subject=bindparam("b_subject"), text=bindparam("b_text"), html=bindparam("b_html"),
                     ics=bindparam("b_ics"), status=bindparam("b_status"), last_error=bindparam("b_error"),
                     render_context=null()))  # SQL NULL, not JSON's null: nothing left to render
_QUEUE = insert(OUTBOX)  # built once: the statement's construction and cache key cost more than its lookup


@dataclass(frozen=True)
class Mail:
    """One email to queue: to whom, which template, and the template's data as it is now."""

    template: str
    key: str
    person_id: int
    context: dict[str, Any]
    case_id: int | None = None
    timer_id: int | None = None
    digestible: bool = False
    # the reader's single-use sign-in link to this case, valid until its deadline (issued when rendered); without
    # it `context["link"]` is used as it is
    link_case: int | None = None
    link_deadline: date | None = None
    # the .ics of a deadline: (uid, title for the summary in the reader's language, description, deadline date)
    ics: tuple[str, str, str, date] | None = None


# -- dates through JSON, both ways ---------------------------------------------------------------------------------


def _encode(value: Any) -> Any:
    """Return plain template data as JSON values (a date or datetime kept as what it was)."""
    if isinstance(value, datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, date):
        return {"$date": value.isoformat()}
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_encode(v) for v in value]
    return value


_JSON_SCALARS = frozenset({str, int, float, bool, type(None)})


def _plain_json(value: Any, depth: int) -> Any:
    """`_encode(plain(value, depth))` in one pass over what an email's context holds (dicts, lists, strings,
    numbers, dates); anything else, and anything `plain` refuses, takes that path itself.

    The two passes were a fifth of a 10,000-reminder sweep's time on PostgreSQL (cProfile, CPU): every reminder
    has a context of its own.
    """
    kind = type(value)
    if kind in _JSON_SCALARS:
        return value
    if kind is datetime:
        return {"$datetime": value.isoformat()}
    if kind is date:
        return {"$date": value.isoformat()}
    if kind is dict and depth <= 20:
        out = {}
        for key, item in value.items():
            if type(key) is not str:
                break  # refused by plain() below
            out[key] = _plain_json(item, depth + 1)
        else:
            return out
    elif (kind is list or kind is tuple) and depth <= 20:
        return [_plain_json(item, depth + 1) for item in value]
    return _encode(plain(value, depth))


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if len(value) == 1 and "$datetime" in value:
            return datetime.fromisoformat(value["$datetime"])
        if len(value) == 1 and "$date" in value:
            return date.fromisoformat(value["$date"])
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def _checked(context: dict[str, Any], seen: dict[int, tuple[Any, Any]]) -> dict[str, Any]:
    """Return an email's context checked to be plain (`plain`) and encoded for JSON (`_encode`).

    The same as encoding `plain(context)`, but a value several emails of one `queue` share (the case, the
    agreement, the deadline: one `_Mails`' shared part, 26 readers when an agreement enters into force) is checked
    and encoded once; `seen` keeps it (with the value itself, so its id stays its own) for the other emails.
    """
    if any(type(key) is not str for key in context):
        plain(context)  # raises NotPlainData, as for any other key
    out = {}
    for key, value in context.items():
        done = seen.get(id(value))
        if done is None or done[0] is not value:
            done = seen[id(value)] = (value, _plain_json(value, 1))  # depth 1: a value of the context dict
        out[key] = done[1]
    return out


# -- in the transition's transaction -------------------------------------------------------------------------------


def queue(uow: UnitOfWork, mails: Sequence[Mail]) -> int:
    """Queue emails for rendering on delivery; a key already queued is skipped. Return how many were queued.

    Two statements whatever the number of emails (the keys already there, the readers) and one multi-row insert.
    The data is checked to be plain here, in the transaction, so a caller's mistake fails the change that made it.
    """
    if not mails:
        return 0
    conn = uow.session.connection()
    existing = set(conn.execute(_EXISTING, {"keys": [m.key for m in mails]}).scalars().all())
    people = {row.id: row for row in conn.execute(_PEOPLE, {"ids": sorted({m.person_id for m in mails})}).all()}
    config = mail_config(uow)
    checked: dict[int, tuple[Any, Any]] = {}
    rows: list[dict[str, Any]] = []
    for mail in mails:
        if mail.key in existing:
            continue
        existing.add(mail.key)
        person = people.get(mail.person_id)
        if person is None:
            raise ValueError(f"email {mail.key!r} has no recipient")
        if not person.active:
            continue
        if not person.email:
            raise ValueError(f"email {mail.key!r} has no recipient")
        render_context = {
            "context": {"person": {"name": person.name}, "base_url": config.base_url,
                        **_checked(mail.context, checked)},
            "status": "held" if mail.digestible and person.digest else "pending",
            "at": uow.now.isoformat(),
            "link": ({"case_id": mail.link_case, "deadline": mail.link_deadline.isoformat()}
                     if mail.link_case is not None and mail.link_deadline is not None else None),
            "ics": (dict(zip(("uid", "title", "description", "deadline"), mail.ics[:3] + (mail.ics[3].isoformat(),),
                             strict=True)) if mail.ics is not None else None),
        }
        rows.append(dict(
            case_id=mail.case_id, person_id=mail.person_id, timer_id=mail.timer_id, template=mail.template,
            language=person.language or "fi", to_address=person.email, cc=[], subject="", text="", html="",
            ics=None, message_id=message_id(mail.key, config.domain), list_id=list_id(mail.case_id, config.domain),
            dedupe_key=mail.key, status=QUEUED, attempts=0, next_attempt_at=uow.now, refused={},
            created_at=uow.now, render_context=render_context))
    if not rows:
        return 0
    conn.execute(_QUEUE, rows)
    return len(rows)


# -- in the leader's mail job, before it sends ---------------------------------------------------------------------


def render_queued(engine: Engine, fence: Fence | None = None) -> int:
    """Render every row still `queued`, oldest first; return how many."""
    total = 0
    while True:
        def work(uow: UnitOfWork) -> int:
            if fence is not None:
                fence(uow)
            return render_rows(uow)

        done = engine.run(work)
        total += done
        if done < BATCH:
            return total


def _to_render(locked: bool) -> Any:
    stmt = (select(OUTBOX.c.id, OUTBOX.c.template, OUTBOX.c.language, OUTBOX.c.person_id, OUTBOX.c.dedupe_key,
                   OUTBOX.c.render_context)
            .where(OUTBOX.c.status == QUEUED).order_by(OUTBOX.c.id).limit(BATCH))
    if locked:
        stmt = stmt.with_for_update(skip_locked=True)  # PostgreSQL: another process rendering them now: theirs
    return stmt


# What `render_rows` reads (locked on PostgreSQL), built once.
_TO_RENDER = {locked: _to_render(locked) for locked in (False, True)}


def render_rows(uow: UnitOfWork) -> int:
    """Render up to BATCH of the oldest queued rows; return how many were rendered."""
    conn = uow.session.connection()
    rows = conn.execute(_TO_RENDER[not uow.db.is_sqlite]).all()
    if not rows:
        return 0
    base = mail_config(uow).base_url
    overrides = uow.registry.services.get("template_overrides", ())
    links = _links(uow, rows, base)
    updates = []
    for row in rows:
        spec = row.render_context or {}
        context = _decode(spec.get("context") or {})
        if row.id in links:
            context["link"] = links[row.id]
        at = datetime.fromisoformat(spec["at"]) if spec.get("at") else uow.now
        ics = None
        if spec.get("ics"):
            i = spec["ics"]
            ics = deadline_ics(uid=i["uid"], summary=translate(row.language, "calendar.deadline", title=i["title"]),
                               description=i["description"], deadline_date=date.fromisoformat(i["deadline"]),
                               url=context.get("link", ""), dtstamp=at).decode("utf-8")
        status, error = spec.get("status", "pending"), None
        try:
            rendered = render(row.template, row.language, context, overrides)
            subject, text, html = rendered.subject[:500], rendered.text, rendered.html
        except NotPlainData:
            raise  # checked when queued; cannot happen for a row written by `queue`
        except Exception as exc:  # noqa: BLE001 - an administrator's template must not block the other emails
            kind = exc.kind if isinstance(exc, RenderLimitExceeded) else type(exc).__name__
            error = f"rendering template {row.template!r} ({row.language}) failed: {kind}: {exc}"[:2000]
            log.error("outbox %s: %s", row.dedupe_key, error)
            subject, text, html, status = f"({row.template})", "", "", "failed"
        updates.append({"b_id": row.id, "b_subject": subject, "b_text": text, "b_html": html, "b_ics": ics,
                        "b_status": status, "b_error": error})
    conn.execute(_RENDERED, updates)
    return len(rows)


def _links(uow: UnitOfWork, rows: Sequence[Any], base: str) -> dict[int, str]:
    """Issue the batch's single-use sign-in links in one insert; return each row's link."""
    wanted: list[tuple[Any, dict[str, Any]]] = []
    for row in rows:
        spec = (row.render_context or {}).get("link")
        if spec and row.person_id is not None:
            wanted.append((row, spec))
    if not wanted:
        return {}
    from engine import links  # built with the web interface (as notifications.reminders imports it)
    from engine.directory import hash_token

    out: dict[int, str] = {}
    values = []
    for row, spec in wanted:
        token = secrets.token_urlsafe(links.TOKEN_BYTES)  # as links.issue_link, one insert for the batch
        values.append(dict(token_hash=hash_token(token), person_id=row.person_id, case_id=spec["case_id"],
                           created_at=uow.now,
                           expires_at=links.link_expiry(date.fromisoformat(spec["deadline"]), uow.now)))
        out[row.id] = str(links.link_url(base, token))
    uow.session.connection().execute(insert(table_of(links.SignInLink)), values)
    return out
