"""Sign-in links sent by email: single-use tokens bound to a recipient and a case, stored only as SHA-256.

A link is issued inside the transaction that queues its email (`issue_link`), shown by the web page without any
effect on GET, and used up only by an explicit POST (`consume_link`). The plaintext token exists only in the email.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum

from sqlalchemy import select, update
from sqlmodel import Field, Session, SQLModel, col

from engine.calendar import deadline_instant
from engine.db import rowcount
from engine.directory import hash_token
from engine.errors import InvalidInput
from engine.models import utc_column

TOKEN_BYTES = 32  # 256 bits of randomness; a sign-in link needs at least 128 to stay unguessable
LINK_PATH = "/link/"
# A link sent after its case's deadline (an overdue reminder) still needs time to be used.
MIN_VALIDITY = timedelta(days=7)
# A link asked for from the sign-in page, without a case, is short-lived.
CASELESS_VALIDITY = timedelta(hours=1)


class SignInLink(SQLModel, table=True):
    """One emailed sign-in link: who it is for, which case it opens, until when, and whether it was used."""

    __tablename__ = "sign_in_link"
    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(unique=True, index=True, max_length=64)
    person_id: int = Field(foreign_key="person.id", index=True)
    case_id: int | None = Field(default=None, foreign_key="case.id", index=True)
    created_at: datetime = Field(sa_column=utc_column())
    expires_at: datetime = Field(sa_column=utc_column())
    used_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))


class LinkStatus(StrEnum):
    """What a presented token turned out to be."""

    VALID = "valid"
    USED = "used"
    EXPIRED = "expired"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class LinkCheck:
    """The result of looking a token up: its status and, unless unknown, the stored link."""

    status: LinkStatus
    link: SignInLink | None = None


def link_expiry(deadline: date | None, now: datetime) -> datetime:
    """Return when a link for a case should expire: the end of its deadline; a week on if that has passed."""
    end = deadline_instant(deadline) if deadline is not None else now
    return end if end > now else now + MIN_VALIDITY


def issue_link(session: Session, *, person_id: int, case_id: int | None, expires_at: datetime,
               now: datetime) -> str:
    """Create a single-use link for a person and a case; return the plaintext token (stored only hashed)."""
    if expires_at <= now:
        raise InvalidInput("expires_at", f"{expires_at.isoformat()} is not after {now.isoformat()}")
    token = secrets.token_urlsafe(TOKEN_BYTES)
    session.add(SignInLink(token_hash=hash_token(token), person_id=person_id, case_id=case_id,
                           created_at=now, expires_at=expires_at))
    session.flush()
    return token


def link_url(base_url: str, token: str) -> str:
    """Return the address a link's email points to."""
    return base_url.rstrip("/") + LINK_PATH + token


def check_link(session: Session, token: str, now: datetime) -> LinkCheck:
    """Look a token up without changing anything."""
    if not token or len(token) > 200:
        return LinkCheck(LinkStatus.UNKNOWN)
    link = session.scalars(select(SignInLink).where(col(SignInLink.token_hash) == hash_token(token))).first()
    if link is None:
        return LinkCheck(LinkStatus.UNKNOWN)
    if link.used_at is not None:
        return LinkCheck(LinkStatus.USED, link)
    if link.expires_at <= now:
        return LinkCheck(LinkStatus.EXPIRED, link)
    return LinkCheck(LinkStatus.VALID, link)


def consume_link(session: Session, token: str, now: datetime) -> LinkCheck:
    """Use a link up; exactly one of any number of concurrent callers gets VALID ("losers see 0 rows")."""
    found = check_link(session, token, now)
    if found.status is not LinkStatus.VALID or found.link is None:
        return found
    result = session.execute(
        update(SignInLink).where(col(SignInLink.id) == found.link.id, col(SignInLink.used_at).is_(None),
                                 col(SignInLink.expires_at) > now)
        .values(used_at=now)
    )
    if rowcount(result) != 1:
        return LinkCheck(LinkStatus.USED, found.link)
    return found
