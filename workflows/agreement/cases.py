"""The agreement's and its parties' cases and rows as the acts, the claims and the guards read them.

The statements of a decision and a signature are built once (building one costs more than SQLite running it) and
compiled per dialect, run on the transaction's own cursor as the engine's are (engine/statements.py), with the
ORM's pending rows flushed first. The lookups (an agreement, a party, a party's valid decision, its signatures)
are shared by the acts (service.py) and the claims on a decision (claims.py), which build on this module.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any, TypeVar

from sqlalchemy import and_, bindparam, func, insert, select
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import configure_mappers, make_transient_to_detached
from sqlmodel import col

from engine.errors import NotFound
from engine.models import table_of
from engine.permissions import CaseReader
from engine.records import CaseRow
from engine.service import UnitOfWork
from engine.statements import Cursor, Statement
from workflows.agreement.models import Decision, PartySignatory, Signature

AGREEMENT = "agreement"
PARTY = "agreement_party"

# The statements of a decision, a signature and its mail, built once (building one costs more than SQLite running
# it). Those of the recipients run on the unit of work's connection; those of a decision and a signature, on the
# hot path of every approval, are compiled once per dialect and run on the transaction's own cursor (as the
# engine's are: engine/statements.py), with the ORM's pending rows flushed first.
SIGNATORY = table_of(PartySignatory)
SIGNATURE = table_of(Signature)
DECISION = table_of(Decision)
LISTED = (select(SIGNATORY.c.party_case_id, SIGNATORY.c.person_id)
           .where(SIGNATORY.c.party_case_id.in_(bindparam("parties", expanding=True))).order_by(SIGNATORY.c.id))
SIGNED = (select(SIGNATURE.c.party_case_id, SIGNATURE.c.person_id)
           .where(SIGNATURE.c.party_case_id.in_(bindparam("parties", expanding=True)),
                  SIGNATURE.c.voided_at.is_(None)))
DECISION_FIELDS = ("party_case_id", "outcome", "body", "decided_on", "section", "minutes_url", "published_on",
                    "notice_sent_on", "note", "document_version_id", "document_sha256", "recorded_by",
                    "on_behalf_of_person_id", "recorded_at")
SIGNATURE_FIELDS = ("party_case_id", "person_id", "on_behalf_of_person_id", "document_version_id",
                     "document_sha256", "signed_at")
CURRENT_DECISION = (select(Decision).where(col(Decision.party_case_id) == bindparam("party"),
                                            col(Decision.voided_at).is_(None))
                     .order_by(col(Decision.id).desc()).limit(1))
# what a repeated decision is compared on (the stored decision itself is loaded only when it is one)
REPEAT_COLS = [DECISION.c[n] for n in ("id", "outcome", "body", "decided_on", "section", "minutes_url", "note")]


def _param(column: Any) -> Any:
    return bindparam(column.name, type_=column.type)


class Statements:
    """The statements of a decision and a signature, compiled for one dialect."""

    def __init__(self, dialect: Dialect) -> None:
        party = bindparam("party", type_=SIGNATURE.c.party_case_id.type)
        version = bindparam("version", type_=SIGNATURE.c.document_version_id.type)
        # the party's valid decisions, newest first (one, unless a claim is being settled): no LIMIT bind to fill
        self.current_decision = Statement(
            select(*REPEAT_COLS).where(DECISION.c.party_case_id == bindparam("party", type_=DECISION.c.id.type),
                                        DECISION.c.voided_at.is_(None)).order_by(DECISION.c.id.desc()),
            dialect, REPEAT_COLS)
        self.decision = Statement(insert(DECISION).values({n: _param(DECISION.c[n]) for n in DECISION_FIELDS}),
                                  dialect, returns_id=True)
        self.count_signatures = Statement(
            select(func.count()).select_from(SIGNATURE).where(
                SIGNATURE.c.party_case_id == party, SIGNATURE.c.document_version_id == version,
                SIGNATURE.c.voided_at.is_(None)),
            dialect)
        # is the signer listed for the party, have they signed this version already, and how many valid
        # signatures has the party on it (the guard's count, known then without a query): one statement
        self.listed = Statement(
            select(SIGNATORY.c.id, SIGNATURE.c.id, signature_count(party, version))
            .select_from(SIGNATORY.outerjoin(SIGNATURE, and_(
                SIGNATURE.c.party_case_id == SIGNATORY.c.party_case_id,
                SIGNATURE.c.person_id == SIGNATORY.c.person_id,
                SIGNATURE.c.document_version_id == version, SIGNATURE.c.voided_at.is_(None))))
            .where(SIGNATORY.c.party_case_id == party,
                   SIGNATORY.c.person_id == bindparam("person", type_=SIGNATORY.c.person_id.type)),
            dialect)
        self.signature = Statement(
            insert(SIGNATURE).values({n: _param(SIGNATURE.c[n]) for n in SIGNATURE_FIELDS}), dialect,
            returns_id=True)


def signature_count(party: Any, version: Any) -> Any:
    """The number of a party's valid signatures on a version, as a scalar subquery."""
    counted = SIGNATURE.alias("counted")
    return (select(func.count()).select_from(counted)
            .where(counted.c.party_case_id == party, counted.c.document_version_id == version,
                   counted.c.voided_at.is_(None)).scalar_subquery())


COMPILED: dict[str, Statements] = {}


def hot(uow: UnitOfWork) -> tuple[Statements, Cursor]:
    """Return the compiled statements and the transaction's cursor, the ORM's pending rows written first."""
    dialect = uow.db.engine.dialect
    compiled = COMPILED.get(dialect.name)
    if compiled is None:
        configure_mappers()  # detached builds instances the way the ORM loads them
        compiled = COMPILED[dialect.name] = Statements(dialect)
    session = uow.open_session
    if session is not None and (session.new or session.dirty or session.deleted):
        session.flush()
    return compiled, uow.cursor


M = TypeVar("M", Decision, Signature)


def detached(model: type[M], values: dict[str, Any]) -> M:
    """Return the row just inserted as a detached ORM instance (as a load gives it, ~6 µs against ~55 µs for
    the constructor and its validation): adding it to a session attaches it, it never inserts it again."""
    obj: M = model._sa_class_manager.new_instance()  # type: ignore[attr-defined]
    obj.__dict__.update(values)
    make_transient_to_detached(obj)
    return obj


def has_tag(uow: UnitOfWork | CaseReader, case: CaseRow, tag: str) -> bool:
    """Tell whether a case's state carries a tag in its definition (the YAML says what counts as signed)."""
    return uow.machine_of(case).definition.has_tag(case.state, tag)


# (party case id, document version id, valid signatures): what `sign` counted in its own statement, for the
# guard of the one trigger it fires next (read once, then forgotten: any other count is read from the database)
COUNTED: ContextVar[tuple[int, int, int] | None] = ContextVar("agreement_signatures_counted", default=None)


def count_signatures(uow: UnitOfWork, party: CaseRow) -> int:
    """Count valid signatures of a party on the agreement's current version."""
    version_id = uow.case(party.parent_id or 0).data["document_version_id"]
    counted = COUNTED.get()
    if counted is not None:
        COUNTED.set(None)
        if counted[:2] == (party.id, version_id):
            return counted[2]
    if not hasattr(uow, "db"):  # a read-side CaseReader (the page's buttons): no transaction cursor, its session
        return int(uow.session.execute(select(signature_count(party.id, version_id))).scalar_one())
    compiled, cursor = hot(uow)
    return int(cursor.rows(compiled.count_signatures, {"party": party.id, "version": version_id})[0][0])


def agreement_case(uow: UnitOfWork, agreement_id: int) -> CaseRow:
    """Return a locked agreement case or raise NotFound."""
    case = uow.case(agreement_id)
    if case.workflow != AGREEMENT:
        raise NotFound(f"case {agreement_id} is not an agreement")
    return case


def party_case(uow: UnitOfWork, agreement_id: int, organisation_key: str) -> CaseRow:
    """Return the locked approval case of one party, or raise NotFound."""
    child = uow.child(agreement_id, organisation_key)  # with the agreement: the one row a decision needs
    agreement_case(uow, agreement_id)  # read above
    if child is not None and child.data.get("organisation_key") == organisation_key:
        return child
    raise NotFound(f"{organisation_key!r} is not a party of agreement {agreement_id}")


def current_decision(uow: UnitOfWork, party: CaseRow) -> Decision | None:
    """Return a party's valid decision as an ORM row (claims and finality read it whole)."""
    return uow.session.execute(CURRENT_DECISION, {"party": party.id}).scalars().first()
