"""The sealed record of an agreement in force: gather it, print it as a tagged PDF, seal it (PAdES), keep it.

1. In the transaction in which an agreement enters into force, `queue_on_entry` (a registry listener on the
   agreement's transitions) adds a `pending` row to `sealed_record`; `request_record` does the same on demand for an
   agreement already in force. Nothing is printed inside the committing transaction.
2. After the commit, the scheduler leader's sweep (`RecordMaker.make_pending`) reads the agreement on a plain
   session, renders `templates/sealed_record.html.j2` in the coordinator's language, prints it with WeasyPrint
   as PDF/UA-1 in the bundled DejaVu Sans (`workflows/common/pdf.py`) and seals it with pyHanko: a PAdES
   (ETSI.CAdES.detached) signature by the service's own certificate (settings `seal_*`). Only then it takes the
   write lock, briefly, to store the bytes and their SHA-256. A process that dies in between leaves the row
   pending and the next sweep makes it; a failure is retried up to `MAX_ATTEMPTS` times, then the row is `failed`.
3. The record holds: the text of the version in force exactly as hashed, its version number and SHA-256; a page
   per party (organisation by its registered name, the decision with body, date, §, minutes address and note,
   each signature with its time, for a substitute on whose behalf, and the hash it was made on; the finality line);
   the history of the agreement's own chain and the signed audit checkpoint that covers the entry into force.
"""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from sqlalchemy import bindparam, func, insert, select
from sqlmodel import Session, col

from engine.actors import Actor
from engine.calendar import HELSINKI, format_date, format_datetime
from engine.errors import Conflict, NotFound, NotPermitted
from engine.models import AuditCheckpoint, Event, Person, table_of
from engine.records import TransitionRecord
from engine.service import Engine, UnitOfWork
from engine.settings import Settings
from workflows.agreement.read import document_text, read_agreement
from workflows.agreement.sealed import FAILED, MADE, PENDING, SealedRecord, latest_made
from workflows.common.pdf import html_to_pdf, outside_event_loop
from workflows.i18n import has_message, template_helpers, translate

log = logging.getLogger("vuosikello.record")
TEMPLATES = Path(__file__).resolve().parent / "templates"
IN_FORCE_EVENT = "AgreementEnteredIntoForce"
MAX_ATTEMPTS = 3
SEAL_FIELD = "VuosikelloSeal"


# -- the seal: the service's own key and certificate ----------------------------------------------------------


class SealConfigError(ValueError):
    """The configured seal key or certificate cannot be read."""


@dataclass(frozen=True)
class Seal:
    """The service's signer and what a relying party needs to know of its certificate."""

    signer: Any  # pyhanko.sign.signers.SimpleSigner (pyHanko's own types are loose here)
    subject: str
    fingerprint_sha256: str  # of the DER certificate, lower-case hex (as `pyhanko sign validate` prints it)
    cert_pem: bytes


def _fingerprint(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()


def load_seal(settings: Settings) -> Seal | None:
    """Return the seal from `seal_pkcs12_file` or `seal_key_file` + `seal_cert_file`, or None when unset."""
    from cryptography.hazmat.primitives.serialization import Encoding
    from pyhanko.sign import signers

    password = settings.seal_password.get_secret_value().encode() if settings.seal_password else None
    try:
        if settings.seal_pkcs12_file is not None:
            signer = signers.SimpleSigner.load_pkcs12(  # type: ignore[no-untyped-call]
                str(settings.seal_pkcs12_file), passphrase=password)
        elif settings.seal_key_file is not None and settings.seal_cert_file is not None:
            signer = signers.SimpleSigner.load(  # type: ignore[no-untyped-call]
                str(settings.seal_key_file), str(settings.seal_cert_file), key_passphrase=password)
        elif settings.seal_key_file is not None or settings.seal_cert_file is not None:
            raise SealConfigError("VUOSIKELLO_SEAL_KEY_FILE and VUOSIKELLO_SEAL_CERT_FILE are set together")
        else:
            return None
    except OSError as exc:
        raise SealConfigError(f"the seal key or certificate cannot be read: {exc.strerror}") from None
    if signer is None:
        raise SealConfigError("the seal key or certificate cannot be read (wrong file or password)")
    from cryptography import x509

    cert = x509.load_der_x509_certificate(signer.signing_cert.dump())
    return Seal(signer=signer, subject=cert.subject.rfc4514_string(), fingerprint_sha256=_fingerprint(
        cert.public_bytes(Encoding.DER)), cert_pem=cert.public_bytes(Encoding.PEM))


def generate_self_signed(key_file: Path, cert_file: Path, common_name: str = "Vuosikello demo seal",
                         days: int = 3650) -> None:
    """Write a new EC P-256 key and a self-signed certificate for it (the demo's and the tests' seal)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Vuosikello")])
    now = datetime.now(UTC)
    usage = x509.KeyUsage(digital_signature=True, content_commitment=True, key_encipherment=False,
                          data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=False,
                          encipher_only=False, decipher_only=False)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(usage, critical=True).sign(key, hashes.SHA256()))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_file.chmod(0o600)
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def seal_pdf(pdf: bytes, seal: Seal, reason: str) -> bytes:
    """Sign a PDF with the seal as a PAdES baseline signature (an incremental update; the content is unchanged)."""
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import signers
    from pyhanko.sign.fields import InvisSigSettings, SigFieldSpec, SigSeedSubFilter

    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    meta = signers.PdfSignatureMetadata(field_name=SEAL_FIELD, subfilter=SigSeedSubFilter.PADES,
                                        reason=reason[:200], location="Vuosikello")
    # an invisible seal: its widget is hidden, so PDF/UA does not ask for it in the structure tree
    field = SigFieldSpec(SEAL_FIELD, invis_sig_settings=InvisSigSettings(set_print_flag=False, set_hidden_flag=True))
    # pyHanko's sign_pdf calls asyncio.run(): outside_event_loop keeps it working where a loop runs (a test tool)
    out = outside_event_loop(lambda: signers.sign_pdf(writer, meta, signer=seal.signer, new_field_spec=field))
    return bytes(out.getvalue())


# -- what the record says -------------------------------------------------------------------------------------


def _version_in_force(session: Session, agreement_id: int, sha256: str) -> int:
    rows = session.execute(_entry_statements()[0], {"case": agreement_id, "sha": sha256}).all()
    return _found_version(rows, agreement_id, sha256)


def _found_version(rows: Sequence[Sequence[Any]], agreement_id: int, sha256: str) -> int:
    """Return the version number `_entry_statements`' query found, or refuse: no version has that text."""
    if not rows:
        raise NotFound(f"agreement {agreement_id} has no version with SHA-256 {sha256}")
    return int(rows[0][0])


def _checkpoint(session: Session, last_event_id: int) -> dict[str, Any] | None:
    """Return the first signed checkpoint whose log state includes this event (it covers the entry into force)."""
    cp = session.execute(select(AuditCheckpoint).where(col(AuditCheckpoint.last_event_id) >= last_event_id)
                         .order_by(col(AuditCheckpoint.seq)).limit(1)).scalars().first()
    if cp is None:
        return None
    return {"seq": cp.seq, "created_at": cp.created_at, "reason": cp.reason, "last_event_id": cp.last_event_id,
            "cases": cp.cases, "events": cp.events, "root": cp.root, "key_id": cp.key_id, "mac": cp.mac}


def _finality(decision: Any, today: date) -> dict[str, Any] | None:
    """The finality of a party's decision on the day the record is made (`workflows/agreement/finality.py`).

    `key` names the sentence: final (from `on`), counting (becomes final on `on` unless a claim for rectification
    is made by `deadline`), contested (a claim is pending), unpublished (the minutes' publication not recorded),
    void (a claim was upheld).
    """
    if decision is None:
        return None
    key = decision.finality
    if key == "counting" and decision.final_on is not None and today >= decision.final_on:
        key = "final"
    return {"key": key, "on": decision.final_on, "deadline": decision.claim_deadline,
            "published_on": decision.published_on}


def record_data(session: Session, agreement_id: int, version_number: int | None = None,
                today: date | None = None) -> dict[str, Any]:
    """Gather what the record of an agreement in force shows (a plain session: reads only).

    `today` (a Helsinki date, by default the day it entered into force) is the day each decision's finality is told.
    """
    agreement = read_agreement(session, agreement_id)
    sha256 = agreement.in_force_sha256
    if sha256 is None:
        raise Conflict(f"agreement {agreement_id} has not entered into force", message_id="record.not_in_force")
    number = version_number or _version_in_force(session, agreement_id, sha256)
    text, text_sha256 = document_text(session, agreement_id, number)
    coordinator = session.get(Person, agreement.coordinator_id) if agreement.coordinator_id else None
    events = session.execute(select(Event).where(col(Event.case_id) == agreement_id)
                             .order_by(col(Event.seq))).scalars().all()
    party_ids = [p.case_id for p in agreement.parties]
    party_events = int(session.execute(select(func.count()).select_from(Event).where(
        col(Event.case_id).in_(party_ids))).scalar_one()) if party_ids else 0
    in_force = [e for e in events if e.name == IN_FORCE_EVENT]
    covered = in_force[-1].id if in_force else (events[-1].id if events else 0)
    if today is None:
        today = (agreement.in_force_at or datetime.now(UTC)).astimezone(HELSINKI).date()
    parties = []
    for p in agreement.parties:
        d = p.decision
        signatures = [{"name": s.person_name, "substitute": s.substitute_name, "at": s.signed_at,
                       "sha256": s.document_sha256} for s in p.signatures]
        parties.append({"name": p.organisation_name, "key": p.organisation, "signatures": signatures,
                        "decision": d.model_dump() if d else None, "finality": _finality(d, today)})
    return {"id": agreement.id, "title": agreement.title, "version": number, "text": text, "today": today,
            "sha256": text_sha256, "in_force_at": agreement.in_force_at,
            "coordinator": coordinator.name if coordinator else None,
            "lang": coordinator.language if coordinator else "fi", "parties": parties,
            "history": [{"seq": e.seq, "at": e.at, "name": e.name, "hash": e.hash} for e in events],
            "party_events": party_events, "head": events[-1].hash if events else None,
            "checkpoint": _checkpoint(session, covered or 0)}


@lru_cache(maxsize=1)
def _env() -> Environment:
    return Environment(loader=FileSystemLoader(TEMPLATES), undefined=StrictUndefined,
                       autoescape=select_autoescape(["html.j2"]), trim_blocks=True, lstrip_blocks=True)


def render_html(data: dict[str, Any], seal: Seal | None, lang: str | None = None) -> str:
    """Render the record as an accessible HTML document (the PDF is printed from exactly this)."""
    helpers = template_helpers(lang or data["lang"])
    code = helpers["lang"]
    return _env().get_template("sealed_record.html.j2").render({
        **data, **helpers, "seal": seal,
        "d": lambda value: format_date(value, code) if value else "",
        "when": lambda value: format_datetime(value, code) if value else "",
        "event": lambda name: translate(code, f"record.event.{name}") if has_message(
            f"record.event.{name}") else name})


def make_pdf(session: Session, agreement_id: int, version_number: int | None, seal: Seal,
             today: date | None = None) -> bytes:
    """Print and seal the record of an agreement in force; return the sealed PDF's bytes."""
    data = record_data(session, agreement_id, version_number, today)
    pdf = html_to_pdf(render_html(data, seal), extra_css=RECORD_CSS)
    return seal_pdf(pdf, seal, translate(data["lang"], "record.seal.reason", title=data["title"]))


RECORD_CSS = ".party { break-before: page; } pre.text { white-space: pre-wrap; font-size: 9pt; }"


# -- the pending row, written in the transaction -------------------------------------------------------------


def _queue(uow: UnitOfWork, case_id: int, sha256: str) -> SealedRecord:
    version = _version_in_force(uow.session, case_id, sha256)
    row = SealedRecord(case_id=case_id, version_number=version, text_sha256=sha256, status=PENDING,
                       created_at=uow.now)
    uow.session.add(row)
    uow.session.flush()
    return row


@lru_cache(maxsize=1)
def _entry_statements() -> tuple[Any, Any]:
    """The version in force and the pending row, built once (for `UnitOfWork.select` and `execute`)."""
    from workflows.agreement.models import DocumentVersion

    document, sealed = table_of(DocumentVersion), table_of(SealedRecord)
    version = (select(document.c.number)
               .where(document.c.case_id == bindparam("case"), document.c.sha256 == bindparam("sha"))
               .order_by(document.c.number.desc()).limit(1))
    # every column as `_queue`'s ORM row writes it: pdf_sha256, made_at, pdf and error NULL, attempts 0
    pending = insert(sealed).values(case_id=bindparam("case"), version_number=bindparam("version"),
                                    text_sha256=bindparam("sha"), status=PENDING, created_at=bindparam("at"),
                                    attempts=0)
    return version, pending


def queue_on_entry(uow: UnitOfWork, record: TransitionRecord) -> None:
    """Listener: when an agreement enters into force, add the pending row its record is made from after the commit.

    The same row `_queue` adds, with prebuilt statements on the transaction's cursor instead of an ORM query and
    flush (on the last signature of an agreement, the one that puts it into force).
    """
    if record.event_name != IN_FORCE_EVENT:
        return
    sha256 = record.payload.get("sha256") or record.case.data.get("sha256")
    if sha256:
        version, pending = _entry_statements()
        number = _found_version(uow.select(version, {"case": record.case.id, "sha": str(sha256)}),
                                record.case.id, str(sha256))
        uow.execute(pending, {"case": record.case.id, "version": number, "sha": str(sha256), "at": uow.now})


def request_record(uow: UnitOfWork, agreement_id: int, actor: Actor) -> SealedRecord:
    """Ask for a new record of an agreement in force (its coordinator or an administrator); made by the sweep."""
    case = uow.case(agreement_id)
    if case.workflow != "agreement":
        raise NotFound(f"no agreement with id {agreement_id}")
    if not (actor.is_admin or (actor.person_id is not None and case.coordinator_id == actor.person_id)):
        raise NotPermitted("only the agreement's coordinator or an administrator may ask for its record")
    sha256 = case.data.get("in_force_sha256")
    if not sha256 or uow.machine_of(case).definition.is_final(case.state):  # never entered, or terminated
        raise Conflict("the agreement is not in force", message_id="record.not_in_force")
    pending = uow.session.execute(select(SealedRecord).where(
        col(SealedRecord.case_id) == agreement_id, col(SealedRecord.status) == PENDING)).scalars().first()
    return pending or _queue(uow, agreement_id, str(sha256))


def record_to_download(session: Session, agreement_id: int) -> SealedRecord:
    """Return the newest made record of an agreement (the caller has checked the reader may see the agreement)."""
    row = latest_made(session, agreement_id)
    if row is not None:
        return row
    pending = session.execute(select(col(SealedRecord.id)).where(
        col(SealedRecord.case_id) == agreement_id, col(SealedRecord.status) == PENDING).limit(1)).scalar()
    if pending is not None:
        raise NotFound(f"the sealed record of agreement {agreement_id} is being made", message_id="record.pending")
    raise NotFound(f"agreement {agreement_id} has no sealed record", message_id="record.none")


def download_name(row: SealedRecord) -> str:
    """The file name a downloaded record gets."""
    return f"agreement-{row.case_id}-v{row.version_number}-sealed-record.pdf"


# -- the sweep, after the commit --------------------------------------------------------------------------------


class RecordMaker:
    """Makes the pending records (the scheduler leader's job), each outside any write transaction."""

    def __init__(self, engine: Engine, seal: Seal | None) -> None:
        self.engine = engine
        self.seal = seal

    def make_pending(self, fence: Callable[[UnitOfWork], None] | None = None, limit: int = 5) -> int:
        """Make up to `limit` pending records; return how many were made."""
        if self.seal is None:
            return 0
        with Session(self.engine.db.engine) as session:
            rows = session.execute(select(col(SealedRecord.id), col(SealedRecord.case_id),
                                          col(SealedRecord.version_number))
                                   .where(col(SealedRecord.status) == PENDING)
                                   .order_by(col(SealedRecord.id)).limit(limit)).all()
        made = 0
        for row_id, case_id, version in rows:
            made += self.make_one(row_id, case_id, version, fence)
        return made

    def make_one(self, row_id: int, case_id: int, version: int,
                 fence: Callable[[UnitOfWork], None] | None = None) -> int:
        """Print and seal one record, then store it if it is still pending; return 1 if stored."""
        assert self.seal is not None
        try:
            with Session(self.engine.db.engine) as session:
                today = self.engine.clock.now().astimezone(HELSINKI).date()
                pdf = make_pdf(session, case_id, version, self.seal, today)
        except Exception as exc:  # noqa: BLE001 - kept on the row and retried; the agreement stays in force
            log.exception("making the sealed record %s of agreement %s failed", row_id, case_id)
            error = f"{type(exc).__name__}: {exc}"[:1000]
            self.engine.run(lambda uow: self._failed(uow, row_id, error, fence))
            return 0
        return self.engine.run(lambda uow: self._store(uow, row_id, pdf, fence))

    @staticmethod
    def _store(uow: UnitOfWork, row_id: int, pdf: bytes, fence: Callable[[UnitOfWork], None] | None) -> int:
        if fence is not None:
            fence(uow)
        row = uow.session.get(SealedRecord, row_id)
        if row is None or row.status != PENDING:  # another leader made it meanwhile
            return 0
        row.pdf = pdf
        row.pdf_sha256 = hashlib.sha256(pdf).hexdigest()
        row.status = MADE
        row.made_at = uow.now
        row.attempts += 1
        row.error = None
        uow.session.add(row)
        return 1

    @staticmethod
    def _failed(uow: UnitOfWork, row_id: int, error: str, fence: Callable[[UnitOfWork], None] | None) -> None:
        if fence is not None:
            fence(uow)
        row = uow.session.get(SealedRecord, row_id)
        if row is None or row.status != PENDING:
            return
        row.attempts += 1
        row.error = error
        if row.attempts >= MAX_ATTEMPTS:
            row.status = FAILED
        uow.session.add(row)
