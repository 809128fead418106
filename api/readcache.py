"""The agreement read's fast path: the reader and a fingerprint in two compiled queries, the body from a cache.

`GET /api/v1/agreements/{id}` is read far more often than an agreement changes. Building its 25-party body
(six queries, ~200 values, JSON) was half of the request's CPU; the rest was the ORM authenticating and loading
the case for the access check. Here, per request:

1. the token's person: one statement compiled once per dialect (`engine.statements.Statement`), run on the read
   session's DBAPI cursor, with the same conditions as `engine.directory.person_for_token` (its where-clause);
2. one statement returning the case's access facts (workflow, coordinator, parent, organisation) and a
   *fingerprint* of everything the body shows that can change: the agreement's and every party case's row
   (version, state, title, deadline, data, updated_at), the parties' organisations (key, both names), the signatories
   with their names, the valid decisions' and signatures' ids and dates, and the names of whom a substitute
   acted for. Each is one string aggregate, so the database does the work and Python reads one row;
3. the access check, `engine.permissions.case_access`, on those facts (deny by default: a stranger gets the
   same 404 as for an unknown id, before any ETag); then the ETag, a keyed hash of the fingerprint (so a
   renamed organisation or person changes it too), and `If-None-Match` answers 304;
4. the body: from the cache when it was built for the same (case, access level, fingerprint), else built by
   `workflows.agreement.read.agreement_json` and stored only when the fingerprint read again after building it
   is unchanged (on PostgreSQL each statement sees the newest commit: a body built across a concurrent write
   is served but not kept).

The agreement page (`api.web.views.agreement_view`) asks the same fingerprint through `current` and keeps what it
shows every reader (the read, the parties' rows in the page's language, their table drawn) in the same cache.

The body does not depend on who reads it today, but the cache key holds the reader's access level anyway: a
later change that shows a FULL reader more can never leak it to a SHARED one through the cache. The cache is
per process (each worker keeps its own) and bounded in entries and bytes; it holds one body per (case,
access level), the newest, so a changed agreement replaces its entry instead of adding one.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import JSON, String, bindparam, func, literal_column, or_, select, type_coerce
from sqlalchemy import cast as sql_cast
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

from engine.actors import Actor
from engine.directory import _PERSON_FOR_TOKEN, hash_token
from engine.errors import CaseNotFound, NotFound
from engine.models import Case, Organisation, Person, table_of
from engine.permissions import ReadAccess, case_access
from engine.statements import Statement
from workflows.agreement.cases import AGREEMENT
from workflows.agreement.models import Decision, PartySignatory, Signature
from workflows.agreement.read import agreement_json

if TYPE_CHECKING:
    from sqlalchemy.sql import ColumnElement

CASE = table_of(Case)
ORG = table_of(Organisation)
PERSON = table_of(Person)
SIGNATORY = table_of(PartySignatory)
DECISION = table_of(Decision)
SIGNATURE = table_of(Signature)
_ETAG_FORMAT = b"agreement-read-3"  # change it when the response's shape or the fingerprint changes
MAX_ENTRIES = 2048
MAX_BYTES = 64 * 1024 * 1024
# Reads in worker threads at once (this read, and the hot pages: api.web.routing.read_page). 50 clients on the anyio
# default of 40 threads fought over the GIL (p95 120-160 ms); with 2-8 the rest wait in the event loop, which costs
# nothing, and a read waits for no lock (WAL, MVCC).
READ_THREADS = 4


_NULL, _COLON, _BAR, _SEMI = (literal_column(f"'{c}'", String) for c in "~:|;")  # constants, not parameters


def _part(column: Any) -> ColumnElement[str]:
    """One column as text that cannot be confused with its neighbours: free text carries its length first.

    Every part is coalesced, NOT NULL columns too: an outer join (the agreement has no organisation) gives NULLs,
    and one NULL would make the whole row's string NULL, which the aggregate then leaves out."""
    kind = getattr(column.type, "impl", column.type)  # SQLModel's AutoString decorates String
    if isinstance(kind, (String, JSON)):  # may hold any character, the separators too
        text = sql_cast(column, String) if isinstance(kind, JSON) else type_coerce(column, String)
        return func.coalesce(type_coerce(func.length(text), String) + _COLON + text, _NULL)
    return func.coalesce(sql_cast(column, String), _NULL)  # numbers, dates, timestamps: no separator in them


def _joined(*columns: Any) -> ColumnElement[str]:
    """One row's columns as one string: no two different rows give the same string."""
    out: Any = None
    for column in columns:
        part = _part(column)
        out = part if out is None else out + _BAR + part
    return cast("ColumnElement[str]", out)


def _aggregate(dialect: Dialect, expr: ColumnElement[str], order: Any) -> Any:
    """The rows' strings joined in one (PostgreSQL in `order`: an updated row moves in its table's scan order)."""
    if dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import aggregate_order_by

        return func.string_agg(expr, aggregate_order_by(_SEMI, order))
    return func.group_concat(expr, _SEMI)  # SQLite 3.40 has no ORDER BY in an aggregate; a scan keeps its order


def fingerprint_statement(dialect: Dialect) -> Any:
    """Return the statement: the case's access facts and the fingerprint of everything its read shows."""
    aid = bindparam("aid", type_=CASE.c.id.type)
    parties = select(CASE.c.id).where(CASE.c.parent_id == aid)
    acted_for = PERSON.alias("acted_for")  # whom a substitute acted for: the body shows their name
    # a case's parent, workflow and organisation are fixed when it is made (the party's key and name are not)
    cases = (select(_aggregate(dialect, _joined(CASE.c.id, CASE.c.version, CASE.c.updated_at, CASE.c.state,
                                                CASE.c.deadline, CASE.c.coordinator_id, CASE.c.title, CASE.c.data,
                                                ORG.c.key, ORG.c.name_fi, ORG.c.name_sv), CASE.c.id))
             .select_from(CASE.outerjoin(ORG, ORG.c.id == CASE.c.organisation_id))
             .where(or_(CASE.c.id == aid, CASE.c.parent_id == aid)))
    signatories = (select(_aggregate(dialect, _joined(SIGNATORY.c.id, SIGNATORY.c.party_case_id,
                                                      SIGNATORY.c.person_id, PERSON.c.name), SIGNATORY.c.id))
                   .select_from(SIGNATORY.join(PERSON, PERSON.c.id == SIGNATORY.c.person_id))
                   .where(SIGNATORY.c.party_case_id.in_(parties)))
    decisions = (select(_aggregate(dialect, _joined(DECISION.c.id, DECISION.c.party_case_id, DECISION.c.published_on,
                                                    DECISION.c.notice_sent_on, DECISION.c.on_behalf_of_person_id,
                                                    acted_for.c.name), DECISION.c.id))
                 .select_from(DECISION.outerjoin(acted_for, acted_for.c.id == DECISION.c.on_behalf_of_person_id))
                 .where(DECISION.c.party_case_id.in_(parties), DECISION.c.voided_at.is_(None)))
    signatures = (select(_aggregate(dialect, _joined(SIGNATURE.c.id, SIGNATURE.c.party_case_id,
                                                     SIGNATURE.c.person_id, SIGNATURE.c.on_behalf_of_person_id,
                                                     SIGNATURE.c.document_sha256, acted_for.c.name), SIGNATURE.c.id))
                  .select_from(SIGNATURE.outerjoin(acted_for, acted_for.c.id == SIGNATURE.c.on_behalf_of_person_id))
                  .where(SIGNATURE.c.party_case_id.in_(parties), SIGNATURE.c.voided_at.is_(None)))
    return select(CASE.c.workflow, CASE.c.coordinator_id, CASE.c.parent_id, CASE.c.organisation_id,
                  *(q.scalar_subquery() for q in (cases, signatories, decisions, signatures))
                  ).where(CASE.c.id == aid)


@dataclass(frozen=True)
class CaseFacts:
    """What `case_access` reads of a case (the attributes of `engine.models.Case` it uses)."""

    id: int
    workflow: str
    coordinator_id: int | None
    parent_id: int | None
    organisation_id: int | None


class _Statements:
    def __init__(self, dialect: Dialect) -> None:
        self.dbapi_error: type[Exception] = dialect.loaded_dbapi.Error
        person = _PERSON_FOR_TOKEN.with_only_columns(
            PERSON.c.id, PERSON.c.name, PERSON.c.roles, PERSON.c.organisation_id, maintain_column_froms=True)
        self.person = Statement(person, dialect)
        self.fingerprint = Statement(fingerprint_statement(dialect), dialect)


class BodyCache:
    """A bounded, thread-safe LRU: one body per (case, access level), with the fingerprint it was built for.

    `lookup`/`store` keep any other value under a key of its own beside them, with the size it counts for: the
    agreement page keeps what it shows every reader there (`api.web.views`, keyed by case, access level and
    language; its digest is the fingerprint's with the day). A cached value is shared by every request that
    finds it: nobody may change it."""

    def __init__(self, max_entries: int = MAX_ENTRIES, max_bytes: int = MAX_BYTES) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: OrderedDict[Hashable, tuple[bytes, Any, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, case_id: int, access: int, digest: bytes) -> bytes | None:
        """Return the body built for this fingerprint, or None."""
        return cast("bytes | None", self.lookup((case_id, access), digest))

    def put(self, case_id: int, access: int, digest: bytes, body: bytes) -> None:
        """Keep a body (replacing the case's older one), evicting the least recently used beyond the bounds."""
        self.store((case_id, access), digest, body, len(body))

    def lookup(self, key: Hashable, digest: bytes) -> Any:
        """Return the value kept under a key for this digest, or None."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry[0] != digest:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return entry[1]

    def store(self, key: Hashable, digest: bytes, value: Any, size: int) -> None:
        """Keep a value counted as `size` bytes (replacing the key's older one), evicting beyond the bounds."""
        if size > self.max_bytes:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old[2]
            self._entries[key] = (digest, value, size)
            self._bytes += size
            while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
                _key, (_digest, _dropped, dropped_size) = self._entries.popitem(last=False)
                self._bytes -= dropped_size

    def __len__(self) -> int:
        return len(self._entries)


@dataclass(frozen=True)
class AgreementResponse:
    """What the route answers: the ETag, and the body unless `If-None-Match` named the current ETag."""

    etag: str
    body: bytes | None


class AgreementReads:
    """The agreement read's fast path for one database (see the module's docstring)."""

    def __init__(self, dialect: Dialect, secret_key: str, cache: BodyCache | None = None) -> None:
        self._sql = _Statements(dialect)
        self._key = hashlib.sha256(secret_key.encode()).digest()
        self.cache = cache or BodyCache()
        self._limiter: Any = None

    @property
    def limiter(self) -> Any:
        """Return the threads the reads may run on at once (made in the event loop, on first use)."""
        if self._limiter is None:
            import anyio

            self._limiter = anyio.CapacityLimiter(READ_THREADS)
        return self._limiter

    def _run(self, cursor: Any, stmt: Statement, values: dict[str, Any]) -> Any:
        params = stmt.params(values)
        try:
            cursor.execute(stmt.sql, params)
        except self._sql.dbapi_error as exc:
            raise DBAPIError.instance(stmt.sql, params, exc, self._sql.dbapi_error) from exc
        return cursor.fetchone()

    def person_for_token(self, cursor: Any, token: str) -> Actor | None:
        """Return the actor an API token authenticates (active person, token not revoked), or None."""
        row = self._run(cursor, self._sql.person, {"token_hash": hash_token(token)})
        if row is None:
            return None
        person_id, name, roles, organisation_id = row
        return Actor(person_id=person_id, name=name, roles=frozenset(r for r in roles.split(",") if r),
                     organisation_id=organisation_id)

    def fingerprint(self, cursor: Any, agreement_id: int) -> tuple[CaseFacts, bytes] | None:
        """Return the case's access facts and the digest of its read's fingerprint (None: no such case)."""
        row = self._run(cursor, self._sql.fingerprint, {"aid": agreement_id})
        if row is None:
            return None
        facts = CaseFacts(agreement_id, row[0], row[1], row[2], row[3])
        digest = hashlib.blake2b("\x1e".join("~" if v is None else str(v) for v in row[4:]).encode(),
                                 digest_size=16, key=self._key, person=_ETAG_FORMAT[:16]).digest()
        return facts, digest

    def prepare(self, engine: Any, agreement_id: int, connections: int) -> None:
        """Run both statements once on each of `connections` pooled connections held at once (start-up): a new
        connection and SQLite's per-connection statement cache otherwise cost the first reads a few ms each."""
        held = [engine.raw_connection() for _ in range(connections)]
        try:
            for connection in held:
                cursor = connection.cursor()
                try:
                    self.person_for_token(cursor, "warm-up: no such token")
                    self.fingerprint(cursor, agreement_id)
                finally:
                    cursor.close()
        finally:
            for connection in held:
                connection.close()

    def current(self, session: Session, agreement_id: int) -> tuple[CaseFacts, bytes] | None:
        """Return `fingerprint` read on the session's own connection (the agreement page asks this)."""
        cursor = session.connection().connection.cursor()
        try:
            return self.fingerprint(cursor, agreement_id)
        finally:
            cursor.close()

    def etag(self, session: Session, agreement_id: int) -> str | None:
        """Return the agreement's current ETag (None: no such case); no access check, for tests and tools."""
        found = self.current(session, agreement_id)
        return f'W/"{found[1].hex()}"' if found is not None else None

    def keep(self, session: Session, agreement_id: int, levels: tuple[ReadAccess, ...]) -> bool:
        """Build an agreement's body and keep it for readers at `levels` (start-up, `api.warmup`): the first read
        of it then costs what later ones do. No reader, so no check: each read still checks its own reader first.
        Return whether it was kept (not an agreement, or changed while it was built: not kept)."""
        found = self.current(session, agreement_id)
        if found is None or found[0].workflow != AGREEMENT:
            return False
        return self._build(session, agreement_id, found[1], levels, lambda: self.current(session, agreement_id))[1]

    def _build(self, session: Session, agreement_id: int, digest: bytes, levels: tuple[int, ...],
               read_again: Any) -> tuple[bytes, bool]:
        """Build the body every reader is given and keep it at `levels` if the fingerprint, read again afterwards,
        has not moved; return it and whether it was kept."""
        body = agreement_json(session, agreement_id)
        again = read_again()
        kept = again is not None and again[1] == digest
        if kept:
            for level in levels:
                self.cache.put(agreement_id, int(level), digest, body)
        return body, kept

    def read(self, session: Session, actor: Actor | None, agreement_id: int, cursor: Any,
             if_none_match: str | None, matches: Any) -> AgreementResponse:
        """Check access, then answer with the ETag and the (cached) body; raise 404 as `readable` does."""
        found = self.fingerprint(cursor, agreement_id)
        access = (case_access(session, actor, cast(Case, found[0])) if found is not None else ReadAccess.NONE)
        if found is None or access < ReadAccess.SHARED:
            raise CaseNotFound(f"no case with id {agreement_id}", message_id="error.case_not_found",
                               params={"id": agreement_id})
        facts, digest = found
        if facts.workflow != AGREEMENT:
            raise NotFound(f"no agreement with id {agreement_id}")
        etag = f'W/"{digest.hex()}"'
        if matches(if_none_match, etag):
            return AgreementResponse(etag, None)
        body = self.cache.get(agreement_id, int(access), digest)
        if body is None:
            body, _kept = self._build(session, agreement_id, digest, (access,),
                                      lambda: self.fingerprint(cursor, agreement_id))
        return AgreementResponse(etag, body)


__all__ = ["AgreementReads", "AgreementResponse", "BodyCache", "CaseFacts", "fingerprint_statement"]
