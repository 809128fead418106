"""Credentials of the web: argon2 passwords for coordinators and administrators, and the bad-attempt limiter.

The limiter counts bad link tokens and bad passwords per client address in the database (`sign_in_failure`),
so it holds across worker processes and restarts. Behind a reverse proxy run uvicorn with `--proxy-headers`,
or every client shares the proxy's address.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select
from sqlmodel import Session, col

from api.web.config import WebConfig
from api.web.models import SignInFailure
from engine.errors import InvalidInput, NotFound
from engine.models import Person

if TYPE_CHECKING:
    pass

PASSWORD_ROLES = frozenset({"coordinator", "admin"})
MIN_PASSWORD_LENGTH = 12
_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("not-a-real-password-used-to-even-out-timing")


def hash_password(password: str) -> str:
    """Return the argon2id hash of a password."""
    return _hasher.hash(password)


def set_password(session: Session, person_id: int, password: str) -> None:
    """Give a coordinator or administrator a password (stored as argon2id)."""
    person = session.get(Person, person_id)
    if person is None:
        raise NotFound(f"no person with id {person_id}")
    if not person.role_set & PASSWORD_ROLES:
        raise InvalidInput("person_id", "only coordinators and administrators sign in with a password")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput("password", f"must be at least {MIN_PASSWORD_LENGTH} characters")
    person.password_hash = hash_password(password)
    session.add(person)
    session.flush()


def person_by_email(session: Session, email: str) -> Person | None:
    """Return the active person with an email address (case-insensitive), or None."""
    return session.execute(select(Person).where(func.lower(Person.email) == email.strip().lower(),
                                                col(Person.active).is_(True))).scalars().first()


def check_password(session: Session, email: str, password: str) -> Person | None:
    """Return the coordinator or administrator these credentials belong to, or None (in constant-ish time)."""
    person = person_by_email(session, email) if email and len(email) <= 320 else None
    stored = person.password_hash if person is not None and person.role_set & PASSWORD_ROLES else None
    try:
        _hasher.verify(stored or _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    if stored is None or person is None:
        return None
    if _hasher.check_needs_rehash(stored):
        person.password_hash = hash_password(password)
        session.add(person)
    return person


def is_throttled(session: Session, config: WebConfig, ip: str, now: datetime) -> bool:
    """Tell whether an address has made too many bad attempts within the window."""
    count = session.execute(select(func.count()).select_from(SignInFailure).where(
        col(SignInFailure.ip) == ip[:64], col(SignInFailure.at) > now - config.failure_window)).scalar_one()
    return int(count) >= config.failure_limit


def record_failure(session: Session, config: WebConfig, ip: str, kind: str, now: datetime) -> None:
    """Count one bad attempt from an address, forgetting attempts older than the window."""
    session.execute(delete(SignInFailure).where(col(SignInFailure.at) <= now - config.failure_window))
    session.add(SignInFailure(ip=ip[:64], kind=kind, at=now))
