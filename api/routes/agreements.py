"""The framework-agreement API: create, read, circulate, revise, decide, sign, withdraw, terminate."""

from __future__ import annotations

import base64
from typing import Annotated, Any, cast

import anyio
from fastapi import APIRouter, Depends, Header, Request, Response, status
from fastapi.security import HTTPAuthorizationCredentials
from sqlmodel import Session

from api.access import readable_case
from api.deps import BEARER, ActorDep, ExpectedVersion, SessionDep, WorkDep, current_actor
from api.readcache import AgreementReads
from api.schemas import ERROR_RESPONSES
from api.unit import RequestWork, UnitOfWorkRoute, get_work
from engine.actors import Actor
from engine.errors import Unauthenticated
from engine.models import Person
from workflows.agreement import service
from workflows.agreement.read import (
    decision_read,
    document_text,
    document_versions,
    etag_matches,
    read_agreement,
)
from workflows.agreement.record import download_name, record_to_download, request_record
from workflows.agreement.schemas import (
    AgreementCreate,
    AgreementRead,
    DecisionIn,
    DecisionResult,
    DocumentIn,
    DocumentVersionRead,
    SignatureRead,
    SignatureResult,
    SignIn,
    TerminateIn,
    WithdrawIn,
)

router = APIRouter(prefix="/agreements", tags=["agreements"], responses=ERROR_RESPONSES,
                   route_class=UnitOfWorkRoute)


def _read(session: Session, actor: Actor, agreement_id: int) -> AgreementRead:
    readable_case(session, actor, agreement_id)
    return read_agreement(session, agreement_id)


@router.post("", response_model=AgreementRead, status_code=status.HTTP_201_CREATED)
def create(body: AgreementCreate, work: WorkDep, session: SessionDep, actor: ActorDep,
           response: Response) -> AgreementRead:
    """Create an agreement in draft, with its parties and their signatories."""
    case = work.run(lambda uow: service.create_agreement(uow, body, actor))
    response.headers["Location"] = f"/api/v1/agreements/{case.id}"
    return _read(session, actor, case.id)


class _OnDemand:
    """The request's read session, made only when something asks for it: a SHARED reader's membership check, a
    web-session caller, a body not in the cache. A coordinator's or an administrator's cached read needs none."""

    def __init__(self, work: RequestWork) -> None:
        self._work = work

    def __getattr__(self, name: str) -> Any:
        return getattr(self._work.session, name)


def _get(request: Request, agreement_id: int, credentials: HTTPAuthorizationCredentials | None,
         if_none_match: str | None) -> Response:
    work = get_work(request)
    session = cast(Session, _OnDemand(work))
    reads: AgreementReads = request.app.state.agreement_reads
    # the reader and the fingerprint on a pooled DBAPI connection of their own (no ORM Session: its set-up and
    # teardown cost as much as both statements); a body built on the session is kept only if the fingerprint,
    # read again here afterwards, has not moved (api.readcache)
    connection = request.app.state.ctx.db.engine.raw_connection()
    try:
        cursor = connection.cursor()
        try:
            if credentials is not None and credentials.credentials:  # an API token: one compiled statement
                actor = reads.person_for_token(cursor, credentials.credentials.strip())
                if actor is None:
                    raise Unauthenticated("a valid `Authorization: Bearer <token>` header is required")
                request.state.actor = actor
            else:  # a web session (the browser calling the API) authenticates as everywhere else
                actor = current_actor(request, session, credentials)
            # who may read comes first: a stranger gets a 404, never a 304 or an ETag
            answer = reads.read(session, actor, agreement_id, cursor, if_none_match, etag_matches)
        finally:
            cursor.close()
    finally:
        connection.close()
    work.close()  # in this thread: the route then has nothing left to close in another threadpool hop
    headers = {"ETag": answer.etag, "Cache-Control": "private, no-cache"}
    if answer.body is None:
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    return Response(answer.body, media_type="application/json", headers=headers)


@router.get("/{agreement_id}", response_model=AgreementRead,
            responses={304: {"description": "Not Modified: `If-None-Match` names the current `ETag`"}})
async def get(agreement_id: int, request: Request,
              credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)] = None,
              if_none_match: Annotated[str | None, Header(description="An ETag of an earlier read")] = None,
              ) -> Response:
    """Return the agreement, its current text and hash, and every party's state, decision and signatures.

    The `ETag` changes with every transition of the agreement or of a party, and when a party's organisation
    or a signatory is renamed; `If-None-Match` with the current one answers 304 without a body. Authentication,
    the access check and the read run in one worker thread (the route is `async` so that FastAPI does not hand
    each dependency to the threadpool separately); the body comes from `api.readcache` while nothing it shows
    has changed.
    """
    return await anyio.to_thread.run_sync(_get, request, agreement_id, credentials, if_none_match,
                                          limiter=request.app.state.agreement_reads.limiter)


@router.get("/{agreement_id}/versions", response_model=list[DocumentVersionRead])
def versions(agreement_id: int, session: SessionDep, actor: ActorDep) -> list[DocumentVersionRead]:
    """List every version of the text with its SHA-256 and the coordinator's note, oldest first."""
    readable_case(session, actor, agreement_id)
    return document_versions(session, agreement_id)


@router.get("/{agreement_id}/versions/{number}/text", response_class=Response,
            responses={200: {"content": {"text/markdown": {}}, "description": "the text, byte for byte as hashed"}})
def version_text(agreement_id: int, number: int, session: SessionDep, actor: ActorDep) -> Response:
    """Download one version's text exactly as stored: its bytes' SHA-256 is the recorded hash (`Repr-Digest`)."""
    readable_case(session, actor, agreement_id)
    text, sha256 = document_text(session, agreement_id, number)
    digest = base64.b64encode(bytes.fromhex(sha256)).decode("ascii")
    name = f"agreement-{agreement_id}-v{number}.md"
    return Response(text.encode("utf-8"), media_type="text/markdown; charset=utf-8", headers={
        "Repr-Digest": f"sha-256=:{digest}:", "Content-Disposition": f'attachment; filename="{name}"'})


@router.get("/{agreement_id}/record", response_class=Response,
            responses={200: {"content": {"application/pdf": {}}, "description": "the sealed record (PAdES)"}})
def sealed_record(agreement_id: int, session: SessionDep, actor: ActorDep) -> Response:
    """Download the newest sealed record of an agreement in force: a PDF sealed with the service's certificate."""
    readable_case(session, actor, agreement_id)
    row = record_to_download(session, agreement_id)
    digest = base64.b64encode(bytes.fromhex(row.pdf_sha256 or "")).decode("ascii")
    return Response(row.pdf or b"", media_type="application/pdf", headers={
        "Repr-Digest": f"sha-256=:{digest}:", "Content-Disposition": f'attachment; filename="{download_name(row)}"'})


@router.post("/{agreement_id}/record", status_code=status.HTTP_202_ACCEPTED)
def ask_for_record(agreement_id: int, work: WorkDep, session: SessionDep, actor: ActorDep) -> dict[str, object]:
    """Ask for a new sealed record of an agreement in force (coordinator, admin); the scheduler makes it."""
    readable_case(session, actor, agreement_id)
    row = work.run(lambda uow: request_record(uow, agreement_id, actor))
    return {"id": row.id, "status": row.status, "version_number": row.version_number}


@router.post("/{agreement_id}/circulate", response_model=AgreementRead)
def circulate(agreement_id: int, work: WorkDep, session: SessionDep, actor: ActorDep,
              expected_version: ExpectedVersion) -> AgreementRead:
    """Send the draft to the parties."""
    readable_case(session, actor, agreement_id)
    work.run(lambda uow: service.circulate(uow, agreement_id, actor, expected_version))
    return _read(session, actor, agreement_id)


@router.put("/{agreement_id}/document", response_model=AgreementRead)
def revise(agreement_id: int, body: DocumentIn, work: WorkDep, session: SessionDep, actor: ActorDep,
           expected_version: ExpectedVersion) -> AgreementRead:
    """Store a new version of the text; every party is asked again."""
    readable_case(session, actor, agreement_id)
    work.run(lambda uow: service.revise(uow, agreement_id, body, actor, expected_version))
    return _read(session, actor, agreement_id)


@router.post("/{agreement_id}/parties/{organisation_key}/decision", response_model=DecisionResult,
             responses={201: {"model": DecisionResult, "description": "Recorded (200: it repeated the stored one)"}})
def decide(agreement_id: int, organisation_key: str, body: DecisionIn, work: WorkDep, session: SessionDep,
           actor: ActorDep, response: Response) -> DecisionResult:
    """Record the party's decision (body, date, § of the minutes); repeating it changes nothing."""
    readable_case(session, actor, agreement_id)
    decision, created = work.run(
        lambda uow: service.decide(uow, agreement_id, organisation_key, body, actor))
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    agreement = _read(session, actor, agreement_id)
    party = next(p for p in agreement.parties if p.organisation == organisation_key)
    return DecisionResult(created=created, decision=decision_read(decision), party_state=party.state,
                          agreement_state=agreement.state)


@router.post("/{agreement_id}/parties/{organisation_key}/signatures", response_model=SignatureResult,
             responses={201: {"model": SignatureResult, "description": "Signed (200: a repeated signature)"}})
def sign(agreement_id: int, organisation_key: str, work: WorkDep, session: SessionDep, actor: ActorDep,
         response: Response, body: SignIn | None = None) -> SignatureResult:
    """Sign for your own organisation; signing twice is one signature. With `document_sha256`, only that text."""
    readable_case(session, actor, agreement_id)
    seen = body.document_sha256 if body else None
    signature, created = work.run(lambda uow: service.sign(uow, agreement_id, organisation_key, actor, seen))
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    agreement = _read(session, actor, agreement_id)
    person = session.get(Person, signature.person_id)
    party = next(p for p in agreement.parties if p.organisation == organisation_key)
    return SignatureResult(
        created=created, party_state=party.state, agreement_state=agreement.state,
        signature=SignatureRead(id=signature.id or 0, person_id=signature.person_id,
                                person_name=person.name if person else "",
                                on_behalf_of_person_id=signature.on_behalf_of_person_id,
                                document_sha256=signature.document_sha256, signed_at=signature.signed_at))


@router.post("/{agreement_id}/withdraw", response_model=AgreementRead)
def withdraw(agreement_id: int, work: WorkDep, session: SessionDep, actor: ActorDep,
             body: WithdrawIn | None = None) -> AgreementRead:
    """Withdraw an agreement that is not in force."""
    readable_case(session, actor, agreement_id)
    work.run(lambda uow: service.withdraw(uow, agreement_id, body or WithdrawIn(), actor))
    return _read(session, actor, agreement_id)


@router.post("/{agreement_id}/terminate", response_model=AgreementRead)
def terminate(agreement_id: int, body: TerminateIn, work: WorkDep, session: SessionDep,
              actor: ActorDep) -> AgreementRead:
    """Terminate an agreement in force, with a reason and an end date."""
    readable_case(session, actor, agreement_id)
    work.run(lambda uow: service.terminate(uow, agreement_id, body, actor))
    return _read(session, actor, agreement_id)
