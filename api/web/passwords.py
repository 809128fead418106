"""Passwords of coordinators and administrators: set one (the CLI), reset one by an emailed link, and end every
session of the person when it changes (a password someone else learned stops working everywhere at once).

A reset link is single use and valid for an hour; the table holds the token's SHA-256 only. Opening it (GET)
shows a form and changes nothing; the new password is set by the form's POST. Asking for a link never tells
whether the address is registered.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlmodel import Session, col, select

from api.web.auth import PASSWORD_ROLES, set_password
from api.web.models import PasswordReset, WebSession
from engine.models import Person
from engine.service import UnitOfWork
from notifications.outbox import mail_config, queue_email

__all__ = ["RESET_TEMPLATE", "RESET_VALIDITY", "change_password", "end_all_sessions", "open_reset", "send_reset",
           "use_reset"]

RESET_TEMPLATE = "password_reset"
RESET_VALIDITY = timedelta(hours=1)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def end_all_sessions(session: Session, person_id: int, now: datetime) -> int:
    """End every open web session of a person; return how many."""
    result = session.execute(update(WebSession).where(col(WebSession.person_id) == person_id,
                                                      col(WebSession.ended_at).is_(None)).values(ended_at=now))
    return int(getattr(result, "rowcount", 0) or 0)


def change_password(session: Session, person_id: int, password: str, now: datetime) -> int:
    """Set a new password (argon2id) and end every session of the person; return how many sessions ended."""
    set_password(session, person_id, password)
    return end_all_sessions(session, person_id, now)


def send_reset(uow: UnitOfWork, person: Person) -> bool:
    """Queue a reset link to a coordinator's or administrator's own address; False (silently) for anyone else."""
    if not person.role_set & PASSWORD_ROLES or not person.active:
        return False
    token = secrets.token_urlsafe(32)
    expires = uow.now + RESET_VALIDITY
    uow.session.add(PasswordReset(token_hash=_hash(token), person_id=person.id or 0, created_at=uow.now,
                                  expires_at=expires))
    link = f"{mail_config(uow).base_url.rstrip('/')}/signin/reset/{token}"
    queue_email(uow, template=RESET_TEMPLATE, key=f"password-reset:{person.id}:{_hash(token)[:16]}",
                person_id=person.id, context={"link": link, "expires_at": expires})
    return True


def open_reset(session: Session, token: str, now: datetime) -> PasswordReset | None:
    """Return the unused, unexpired reset a token names, or None (changes nothing)."""
    if not token or len(token) > 200:
        return None
    row: PasswordReset | None = session.execute(select(PasswordReset).where(
        col(PasswordReset.token_hash) == _hash(token))).scalars().first()
    if row is None or row.used_at is not None or row.expires_at <= now:
        return None
    return row


def use_reset(session: Session, token: str, password: str, now: datetime) -> int | None:
    """Set the password a valid reset allows, use the link up and end the person's sessions; the person id."""
    row = open_reset(session, token, now)
    if row is None:
        return None
    used = session.execute(update(PasswordReset).where(col(PasswordReset.id) == row.id,
                                                       col(PasswordReset.used_at).is_(None)).values(used_at=now))
    if not getattr(used, "rowcount", 0):  # a second, simultaneous use lost the race
        return None
    change_password(session, row.person_id, password, now)
    return row.person_id
