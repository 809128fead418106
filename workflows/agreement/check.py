"""The public check: is this SHA-256 a sealed record or an agreement text this service issued, and of what.

Anyone may ask, signed in or not, so the answer is small on purpose. It names only what the agreement itself
makes public once it is in force: which agreement (its title), which version of the text, since when it has been
in force (and its end date, once terminated), the agreement's state, and its parties by name. Nothing else: no
people, no addresses, no decisions or their minutes, no ids.

Only texts that have been in force are recognised. A draft, a text sent round for decision, or a version a party
declined is not public: asking with its hash gets the same "not recognised" as a random hash, so the check cannot
be used to learn that an unpublished text exists. A text is taken to have been in force when the agreement
recorded it as its text in force (`in_force_sha256`, as the agreement page shows) or its audit log has the
`AgreementEnteredIntoForce` event for that text (which also covers an earlier version that a later one replaced).
A sealed record is recognised by the exact SHA-256 of its PDF bytes (`find_sealed_by_sha256`); a changed byte is a
different hash and is not recognised.
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import BinaryIO, Literal

from sqlalchemy import select
from sqlmodel import Session, col

from engine.models import Case, Event, Organisation
from workflows.agreement.models import DocumentVersion
from workflows.agreement.sealed import find_sealed_by_sha256
from workflows.common.pdf import outside_event_loop

log = logging.getLogger("vuosikello.check")
SHA256 = re.compile(r"[0-9a-f]{64}")
IN_FORCE_EVENT = "AgreementEnteredIntoForce"  # the event both ways into force record (v1.yaml)
CHUNK = 64 * 1024

Kind = Literal["sealed_record", "agreement_text"]


class TooLarge(Exception):
    """The upload passed the check's size limit while it was being read."""


@dataclass(frozen=True)
class Party:
    """A party of the agreement, by name in Finnish and Swedish (the organisation register's names)."""

    name_fi: str
    name_sv: str | None

    def name(self, lang: str) -> str:
        """Return the name in a language (Swedish when the register has one, else Finnish)."""
        return (self.name_sv if lang == "sv" and self.name_sv else None) or self.name_fi


@dataclass(frozen=True)
class SealCheck:
    """The PAdES seal of a sealed record, validated by pyHanko: what a relying party would check itself."""

    valid: bool  # the signature covers the whole file, the bytes are unchanged, the signature verifies
    by_this_service: bool  # ... and it was made with this service's seal certificate
    signer: str  # the certificate's subject
    certificate_sha256: str  # the SHA-256 fingerprint of the DER certificate (as `vuosikello seal show` prints it)
    signed_at: datetime | None


@dataclass(frozen=True)
class Match:
    """One thing the hash is: a sealed record or a text version of an agreement that has been in force."""

    kind: Kind
    version: int
    title: str
    workflow: str
    state: str
    in_force_since: datetime | None
    ended_on: date | None
    current: bool  # the text the agreement has in force now (not one a later version replaced)
    parties: list[Party] = field(default_factory=list)
    seal: SealCheck | None = None  # a sealed record's seal (None for a text, or a record without a signature)


def normalise(sha256: str) -> str | None:
    """Return a SHA-256 as 64 lower-case hex digits, or None when it is not one (spaces around are allowed)."""
    value = sha256.strip().lower()
    return value if SHA256.fullmatch(value) else None


def hash_stream(stream: BinaryIO, limit: int) -> tuple[str, int]:
    """Hash a file as it is read, a chunk at a time; raise TooLarge past `limit` bytes. Return (sha256, size)."""
    digest = hashlib.sha256()
    size = 0
    while chunk := stream.read(CHUNK):
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"the file is larger than {limit} bytes")
        digest.update(chunk)
    return digest.hexdigest(), size


def seal_check(pdf: bytes, service_cert_pem: bytes | None) -> SealCheck | None:
    """Validate the last PAdES signature of a PDF with pyHanko, trusting only this service's seal certificate."""
    from pyhanko.keys import load_certs_from_pemder_data
    from pyhanko.pdf_utils.misc import PdfError
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko.sign.validation.errors import SignatureValidationError
    from pyhanko.sign.validation.status import SignatureCoverageLevel
    from pyhanko_certvalidator import ValidationContext

    try:
        signatures = PdfFileReader(io.BytesIO(pdf)).embedded_signatures
        if not signatures:
            return None
        signature = signatures[-1]
        cert = signature.signer_cert
        roots = list(load_certs_from_pemder_data(service_cert_pem)) if service_cert_pem else []
        context = ValidationContext(trust_roots=roots)
        status = outside_event_loop(lambda: validate_pdf_signature(signature, context))
    except (SignatureValidationError, PdfError, ValueError, KeyError, TypeError) as exc:
        log.warning("sealed record: its signature cannot be validated: %s", exc)
        return None
    whole = status.coverage == SignatureCoverageLevel.ENTIRE_FILE
    valid = bool(status.intact and status.valid and whole)
    ours = bool(roots) and cert.dump() == roots[0].dump() and valid and bool(status.trusted)
    return SealCheck(
        valid=valid,
        by_this_service=ours,
        signer=cert.subject.human_friendly,
        certificate_sha256=hashlib.sha256(cert.dump()).hexdigest(),
        signed_at=status.signer_reported_dt,
    )


def _entered(session: Session, case_ids: Iterable[int]) -> dict[tuple[int, str], datetime]:
    """Return when each (agreement, text hash) first entered into force, from the audit log."""
    out: dict[tuple[int, str], datetime] = {}
    ids = sorted(set(case_ids))
    if not ids:
        return out
    rows = session.execute(
        select(col(Event.case_id), col(Event.document_hash), col(Event.at))
        .where(col(Event.case_id).in_(ids), col(Event.name) == IN_FORCE_EVENT)
        .order_by(col(Event.seq))
    )
    for case_id, digest, at in rows:
        if digest:
            out.setdefault((case_id, digest), at)
    return out


def _parties(session: Session, case_ids: Iterable[int]) -> dict[int, list[Party]]:
    out: dict[int, list[Party]] = {}
    ids = sorted(set(case_ids))
    if not ids:
        return out
    rows = session.execute(
        select(col(Case.parent_id), col(Organisation.name_fi), col(Organisation.name_sv))
        .join(Organisation, col(Organisation.id) == col(Case.organisation_id))
        .where(col(Case.parent_id).in_(ids))
        .order_by(col(Organisation.name_fi))
    )
    for parent_id, name_fi, name_sv in rows:
        out.setdefault(parent_id, []).append(Party(name_fi=name_fi, name_sv=name_sv))
    return out


def _since(case: Case, digest: str, entered: dict[tuple[int, str], datetime]) -> datetime | None:
    """Return since when a text was in force, or None when it never was (then it is not revealed)."""
    at = entered.get((case.id or 0, digest))
    if at is not None:
        return at
    if case.data.get("in_force_sha256") == digest and case.data.get("in_force_at"):
        return datetime.fromisoformat(str(case.data["in_force_at"]))
    return None


def _ended(case: Case) -> date | None:
    value = case.data.get("end_date")
    try:
        return date.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def check(session: Session, sha256: str, service_cert_pem: bytes | None = None) -> list[Match]:
    """Return what a SHA-256 (64 hex digits) is: a sealed record, an agreement text in force, both, or nothing.

    A sealed record's seal is validated too (`seal_check`), against this service's certificate when given."""
    digest = normalise(sha256)
    if digest is None:
        raise ValueError("not a SHA-256")
    found: list[tuple[Kind, int, Case, str]] = []  # kind, version, agreement, the text's hash
    record = find_sealed_by_sha256(session, digest)
    if record is not None:
        case = session.get(Case, record.case_id)
        if case is not None:
            found.append(("sealed_record", record.version_number, case, record.text_sha256))
    versions = session.execute(
        select(DocumentVersion, Case)
        .join(Case, col(Case.id) == col(DocumentVersion.case_id))
        .where(col(DocumentVersion.sha256) == digest)
        .order_by(col(DocumentVersion.case_id), col(DocumentVersion.number))
    ).all()
    found += [("agreement_text", v.number, c, v.sha256) for v, c in versions]
    if not found:
        return []
    ids = [c.id or 0 for _k, _n, c, _d in found]
    entered, parties = _entered(session, ids), _parties(session, ids)
    out = []
    for kind, number, case, text_digest in found:
        since = _since(case, text_digest, entered)
        if since is None and kind == "agreement_text":
            continue  # never in force: a draft or a text under decision is not public
        out.append(
            Match(
                kind=kind,
                version=number,
                title=case.title,
                workflow=case.workflow,
                state=case.state,
                in_force_since=since,
                ended_on=_ended(case),
                current=case.data.get("in_force_sha256") == text_digest,
                parties=parties.get(case.id or 0, []),
                seal=seal_check(record.pdf, service_cert_pem)
                if kind == "sealed_record" and record is not None and record.pdf
                else None,
            )
        )
    return out
