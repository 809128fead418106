"""The register of organisations and people: yearly CSV import, look-ups, personal API tokens."""

from __future__ import annotations

import csv
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import bindparam, select
from sqlmodel import Session, col

from engine.errors import InvalidInput, NotFound
from engine.models import ORG_KINDS, ApiToken, Organisation, Person

DATA_DIR = Path(__file__).resolve().parent / "data"
DEFAULT_ORGANISATIONS = DATA_DIR / "organisations_fi.csv"
COLUMNS = ["kind", "code", "name_fi", "name_sv", "region_code", "wellbeing_county_code"]
TOKEN_PREFIX = "vk_"  # noqa: S105 - a prefix, not a secret


@dataclass
class ImportStats:
    """What an organisation import changed."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deactivated: int = 0

    def __str__(self) -> str:
        return (f"{self.created} created, {self.updated} updated, {self.unchanged} unchanged, "
                f"{self.deactivated} deactivated")


def read_organisations(path: Path) -> list[dict[str, str]]:
    """Read and check an organisations CSV; raise InvalidInput naming the line and column."""
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise InvalidInput("header", f"{path}: missing columns {', '.join(missing)}")
        rows, seen = [], set()
        for line, row in enumerate(reader, start=2):
            kind, code = (row["kind"] or "").strip(), (row["code"] or "").strip()
            if kind not in ORG_KINDS:
                raise InvalidInput(f"line {line}.kind", f"{path}: unknown kind {kind!r}")
            if not code or not (row["name_fi"] or "").strip():
                raise InvalidInput(f"line {line}", f"{path}: code and name_fi are required")
            key = f"{kind}:{code}"
            if key in seen:
                raise InvalidInput(f"line {line}.code", f"{path}: {key} appears twice")
            seen.add(key)
            rows.append({c: (row.get(c) or "").strip() for c in COLUMNS} | {"key": key})
        return rows


def import_organisations(session: Session, path: Path, now: datetime) -> ImportStats:
    """Upsert organisations by kind:code; those missing from the file are deactivated, never deleted."""
    rows = read_organisations(path)
    existing = {o.key: o for o in session.scalars(select(Organisation))}
    stats = ImportStats()
    for row in rows:
        values = {"kind": row["kind"], "code": row["code"], "name_fi": row["name_fi"],
                  "name_sv": row["name_sv"] or None, "region_code": row["region_code"] or None,
                  "wellbeing_county_code": row["wellbeing_county_code"] or None, "active": True}
        org = existing.pop(row["key"], None)
        if org is None:
            session.add(Organisation.model_validate(values | {"key": row["key"], "updated_at": now}))
            stats.created += 1
        elif any(getattr(org, k) != v for k, v in values.items()):
            for k, v in values.items():
                setattr(org, k, v)
            org.updated_at = now
            stats.updated += 1
        else:
            stats.unchanged += 1
    for org in existing.values():
        if org.active:
            org.active = False
            org.updated_at = now
            stats.deactivated += 1
    session.flush()
    return stats


def organisation_by_key(session: Session, key: str) -> Organisation:
    """Return an organisation by kind:code or raise NotFound."""
    org = session.scalars(select(Organisation).where(col(Organisation.key) == key)).first()
    if org is None:
        raise NotFound(f"no organisation {key!r} (use kind:code, e.g. municipality:837)")
    return org


def hash_token(token: str) -> str:
    """Return the SHA-256 of a token; tokens carry 256 random bits, so a fast hash is enough."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def issue_token(session: Session, person_id: int, now: datetime, label: str = "") -> str:
    """Create a personal API token; return the plaintext once, store only its hash."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(person_id=person_id, token_hash=hash_token(token), label=label, created_at=now))
    session.flush()
    return token


# Built once: building the statement per call cost as much as running it (every API request authenticates here).
_PERSON_FOR_TOKEN = (select(Person).join(ApiToken, col(ApiToken.person_id) == col(Person.id))
                     .where(col(ApiToken.token_hash) == bindparam("token_hash"), col(ApiToken.revoked_at).is_(None),
                            col(Person.active).is_(True)))


def person_for_token(session: Session, token: str) -> Person | None:
    """Return the active person a token belongs to, or None."""
    return session.scalars(_PERSON_FOR_TOKEN, {"token_hash": hash_token(token)}).first()


def ensure_admin(session: Session, token: str | None, now: datetime, *, email: str = "admin@vuosikello.local",
                 name: str = "Administrator") -> Person:
    """Make sure a bootstrap administrator exists; attach the given token to it (stored hashed)."""
    person = session.scalars(select(Person).where(col(Person.email) == email)).first()
    if person is None:
        person = Person(name=name, email=email, language="fi", roles="admin", created_at=now)
        session.add(person)
        session.flush()
    if token:
        digest = hash_token(token)
        known = session.scalars(select(ApiToken).where(col(ApiToken.token_hash) == digest)).first()
        if known is None:
            session.add(ApiToken(person_id=person.id or 0, token_hash=digest, label="bootstrap", created_at=now))
            session.flush()
        elif known.person_id != person.id:
            raise InvalidInput("admin_token", "that token already belongs to another person")
    return person


def person_or_404(session: Session, person_id: int) -> Person:
    """Return a person or raise NotFound."""
    person = session.get(Person, person_id)
    if person is None:
        raise NotFound(f"no person with id {person_id}")
    return person
