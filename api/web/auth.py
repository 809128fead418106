"""Credentials of the web: argon2 passwords for coordinators and administrators, and the bad-attempt limiter.

The limiter counts bad link tokens and bad passwords per client address in the database (`sign_in_failure`),
so it holds across worker processes and restarts. It also counts bad passwords and link requests per account
(the email address typed, known or not, so the limit tells nothing about who is registered): an attacker with
many addresses still gets only `account_failure_limit` guesses per account per window. Those rows carry
`account:<hash of the address>` where an address row carries the IP (the table keeps no address in clear).
The client address is the connection's peer; `X-Forwarded-For` counts only when the peer is one of the
configured trusted proxies (`VUOSIKELLO_TRUSTED_PROXIES`, see `client_address`).
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache
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


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=16)
def _networks(trusted: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(t, strict=False) for t in trusted)


def _is_trusted(address: str, trusted: tuple[str, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    return any(ip in network for network in _networks(trusted))


def client_address(peer: str, forwarded_for: str | None, trusted: Sequence[str]) -> str:
    """Return the client's address: the peer, unless the peer is a trusted proxy; then the nearest address in
    `X-Forwarded-For` that is not itself a trusted proxy (the left part of the header is the client's to write)."""
    proxies = tuple(trusted)
    if not proxies or not forwarded_for or not _is_trusted(peer, proxies):
        return peer
    for hop in reversed([h.strip() for h in forwarded_for.split(",") if h.strip()]):
        if not _is_trusted(hop, proxies):
            return hop[:64]
    return peer


def account_key(email: str) -> str:
    """Return the limiter's key of an account: a hash of the address as typed, trimmed and lower-cased."""
    return "account:" + hashlib.sha256(email.strip().lower().encode("utf-8")).hexdigest()[:40]


def _count(session: Session, key: str, since: datetime) -> int:
    return int(session.execute(select(func.count()).select_from(SignInFailure).where(
        col(SignInFailure.ip) == key, col(SignInFailure.at) > since)).scalar_one())


def is_throttled(session: Session, config: WebConfig, ip: str, now: datetime, account: str | None = None) -> bool:
    """Tell whether an address, or the account being signed in to, has too many bad attempts within the window."""
    since = now - config.failure_window
    if _count(session, ip[:64], since) >= config.failure_limit:
        return True
    return bool(account) and _count(session, account_key(account or ""), since) >= config.account_failure_limit


def record_failure(session: Session, config: WebConfig, ip: str, kind: str, now: datetime,
                   account: str | None = None) -> None:
    """Count one bad attempt from an address (and against an account), forgetting attempts older than the window."""
    session.execute(delete(SignInFailure).where(col(SignInFailure.at) <= now - config.failure_window))
    session.add(SignInFailure(ip=ip[:64], kind=kind, at=now))
    if account:
        session.add(SignInFailure(ip=account_key(account), kind=kind, at=now))
