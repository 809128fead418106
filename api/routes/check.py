"""The public check (POST /api/v1/check): anyone, without a token, learns whether a file or a SHA-256 is a sealed
record or an agreement text this service issued (workflows/agreement/check.py says what is revealed and why).

The upload is never held: a multipart body is parsed as it arrives (python-multipart's streaming parser, the one
Starlette uses) and the file part goes straight into SHA-256, a chunk at a time, counted against the limit; past
it the answer is 413 at once. The body limit of api/limits.py (`max_request_bytes`) applies before that, so the
check's own limit (`check_max_bytes`, the same by default) can only be lower. Starlette's `request.form()` would
spool the file to a temporary file first; hashing while reading needs no copy at all, which is why the parse is
driven here by hand.

Checks are counted per client address (the peer, or X-Forwarded-For from a trusted proxy, as the sign-in limiter
does) in the sign-in limiter's table under the key `check:<address>`, so the count holds across workers and
restarts and never touches anyone's sign-in attempts. Past the limit the answer is 429 with Retry-After.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict
from datetime import date, datetime
from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field, ValidationError
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from sqlalchemy import delete, select
from sqlmodel import Session, col
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from api.errors import request_language
from api.limits import BodyTooLarge
from api.observability import current_request_id
from api.refusals import ERRORS, WEB
from api.schemas import ErrorBody
from api.unit import SessionDep, UnitOfWorkRoute
from api.web.config import WebConfig
from api.web.models import SignInFailure
from api.web.routes.signin import client_ip
from workflows.agreement.check import Match, check, normalise

router = APIRouter(tags=["check"], route_class=UnitOfWorkRoute)

KIND = "check"
HEX64 = {
    "type": "string",
    "pattern": "^[0-9a-fA-F]{64}$",
    "minLength": 64,
    "maxLength": 64,
    "example": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
}


class CheckIn(BaseModel):
    """A SHA-256 to look up: 64 hexadecimal digits (upper or lower case)."""

    sha256: str = Field(max_length=200, examples=[HEX64["example"]])


class SealOut(BaseModel):
    """A sealed record's PAdES seal, validated by pyHanko on the stored bytes."""

    valid: bool = Field(description="the signature covers the whole file, which is unchanged, and it verifies")
    by_this_service: bool = Field(description="and it was made with this service's seal certificate")
    signer: str = Field(description="the seal certificate's subject")
    certificate_sha256: str = Field(description="the SHA-256 fingerprint of the seal certificate (DER)")
    signed_at: datetime | None = Field(description="the signing time the seal states")


class CheckedMatch(BaseModel):
    """What the file or hash is. Only agreements that are or were in force are ever named."""

    kind: Literal["sealed_record", "agreement_text"]
    version: int = Field(description="the version of the agreement's text")
    title: str = Field(description="the agreement's title")
    state: str = Field(description="the agreement's state now (in_force, under_review, terminated, ...)")
    state_label: str = Field(description="the state in the caller's language")
    in_force_since: datetime | None = Field(description="when this text entered into force")
    ended_on: date | None = Field(description="the end date of a terminated agreement")
    current: bool = Field(description="whether this is the text the agreement has in force now")
    parties: list[str] = Field(description="the parties, by name in the caller's language")
    seal: SealOut | None = Field(default=None, description="a sealed record's seal; none for a text")


class CheckOut(BaseModel):
    """The answer: the SHA-256 looked up, whether it was recognised, and as what."""

    sha256: str
    recognised: bool
    size: int | None = Field(default=None, description="the uploaded file's size in bytes (none for a hash)")
    matches: list[CheckedMatch]


def check_config(request: Request) -> WebConfig:
    config: WebConfig = request.app.state.web_config
    return config


def service_cert(request: Request) -> bytes | None:
    """Return this service's seal certificate (PEM), the one trust root a sealed record's seal is checked with."""
    records = getattr(request.app.state.ctx, "records", None)
    seal = getattr(records, "seal", None)
    pem = getattr(seal, "cert_pem", None)
    return pem if isinstance(pem, bytes) else None


def check_key(request: Request) -> str:
    return f"{KIND}:{client_ip(request)}"[:64]


def throttle(session: Session, config: WebConfig, key: str, now: datetime) -> int | None:
    """Count one check from an address; return the seconds to wait when it is over the limit (not counted then)."""
    since = now - config.check_window
    times = list(
        session.execute(
            select(col(SignInFailure.at))
            .where(col(SignInFailure.ip) == key, col(SignInFailure.at) > since)
            .order_by(col(SignInFailure.at))
        ).scalars()
    )
    if len(times) >= config.check_limit:
        frees = times[len(times) - config.check_limit] + config.check_window  # when the oldest counted one expires
        return max(1, int(math.ceil((frees - now).total_seconds())))
    session.execute(delete(SignInFailure).where(col(SignInFailure.ip) == key, col(SignInFailure.at) <= since))
    session.add(SignInFailure(ip=key, kind=KIND, at=now))
    session.flush()
    return None


def match_out(match: Match, lang: str) -> CheckedMatch:
    """Put a match into the caller's language: the state's label and the parties' names."""
    label_id = f"state.{match.workflow}.{match.state}"
    label = WEB.gettext(lang, label_id) if WEB.has(lang, label_id) else match.state
    return CheckedMatch(
        kind=match.kind,
        version=match.version,
        title=match.title,
        state=match.state,
        state_label=label,
        in_force_since=match.in_force_since,
        ended_on=match.ended_on,
        current=match.current,
        parties=[p.name(lang) for p in match.parties],
        seal=SealOut(**asdict(match.seal)) if match.seal is not None else None,
    )


def refusal(
    request: Request,
    status: int,
    error: str,
    field: str,
    message_id: str,
    detail: str,
    headers: dict[str, str] | None = None,
    **params: Any,
) -> JSONResponse:
    """Answer a refused check as every API error is answered (ErrorBody), in the caller's language."""
    lang = request_language(request)
    body: dict[str, Any] = {
        "error": error,
        "detail": f"{field}: {detail}",
        "field": field,
        "message_id": message_id,
        "message": ERRORS.gettext(lang, message_id).format(field=field, **params),
    }
    request_id = current_request_id()
    if request_id:
        body["request_id"] = request_id
    return JSONResponse(body, status_code=status, headers=headers)


class _Refused(Exception):
    def __init__(self, status: int, error: str, field: str, message_id: str, detail: str, **params: Any) -> None:
        super().__init__(detail)
        self.args_ = (status, error, field, message_id, detail)
        self.params = params


class _Upload:
    """The multipart callbacks: the `file` part is hashed as it streams, a `sha256` part is kept (bounded)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.digest = hashlib.sha256()
        self.size = 0
        self.files = 0
        self.sha256: bytearray | None = None
        self._name = ""
        self._field = b""
        self._value = b""
        self._headers: dict[bytes, bytes] = {}
        self.ended = False  # the closing boundary came: a body cut short is not a file that was checked

    def callbacks(self) -> dict[str, Any]:
        return {
            "on_part_begin": self._begin,
            "on_header_field": self._header_field,
            "on_header_value": self._header_value,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_done,
            "on_part_data": self._data,
            "on_end": self._end,
        }

    def _end(self) -> None:
        self.ended = True

    def _begin(self) -> None:
        self._headers, self._name = {}, ""

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._field.lower()] = self._value
        self._field, self._value = b"", b""

    def _headers_done(self) -> None:
        _disposition, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        self._name = options.get(b"name", b"").decode("latin-1")
        if self._name == "file":
            self.files += 1
            if self.files > 1:
                raise _Refused(422, "InvalidInput", "file", "check.error.one_file", "send one file")
        elif self._name == "sha256":
            self.sha256 = bytearray()

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self._name == "file":
            self.size += end - start
            if self.size > self.limit:
                raise _Refused(
                    413,
                    "PayloadTooLarge",
                    "file",
                    "check.error.too_large",
                    f"the file is larger than {self.limit} bytes",
                    limit=self.limit,
                )
            self.digest.update(data[start:end])
        elif self._name == "sha256" and self.sha256 is not None:
            if len(self.sha256) + end - start > 200:
                raise _Refused(
                    422, "InvalidInput", "sha256", "check.error.sha256", "a SHA-256 is 64 hexadecimal digits"
                )
            self.sha256 += data[start:end]


async def _read_multipart(request: Request, content_type: str, limit: int) -> tuple[str, int | None]:
    """Stream a multipart body: return (sha256, size) of its file, or (the typed hash, None)."""
    _media, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if not boundary:
        raise _Refused(400, "BadRequest", "file", "check.error.form", "the multipart body names no boundary")
    upload = _Upload(limit)
    parser = MultipartParser(boundary, upload.callbacks())  # type: ignore[arg-type]
    try:
        async for chunk in request.stream():
            if chunk:
                parser.write(chunk)
        parser.finalize()
    except MultipartParseError as exc:
        raise _Refused(
            400, "BadRequest", "file", "check.error.form", "the body is not a readable multipart form"
        ) from exc
    except BodyTooLarge as exc:  # the service's body limit (api/limits.py) answers 413; the count stays
        raise _Refused(
            413,
            "PayloadTooLarge",
            "file",
            "check.error.too_large",
            f"the file is larger than {limit} bytes",
            limit=limit,
        ) from exc
    if not upload.ended:
        raise _Refused(400, "BadRequest", "file", "check.error.form", "the multipart body ends before its last part")
    if upload.files and upload.sha256 is not None and upload.sha256.strip():
        raise _Refused(422, "InvalidInput", "sha256", "check.error.both", "send a file or a SHA-256, not both")
    if upload.files:
        return upload.digest.hexdigest(), upload.size
    if upload.sha256 is not None:
        return upload.sha256.decode("utf-8", "replace"), None
    raise _Refused(422, "InvalidInput", "file", "check.error.nothing", "send a file or a SHA-256")


async def _read_json(request: Request) -> str:
    body = await request.body()  # bounded by the body limit, and its nesting measured, before it gets here
    try:
        return CheckIn.model_validate_json(body).sha256
    except ValidationError as exc:
        errors = exc.errors()
        field = ".".join(str(p) for p in errors[0].get("loc", ())) if errors else ""
        raise _Refused(
            422, "InvalidInput", field or "sha256", "check.error.sha256", 'send {"sha256": "<64 hexadecimal digits>"}'
        ) from exc


def _lookup(session: Session, digest: str, cert_pem: bytes | None) -> list[Match]:
    return check(session, digest, cert_pem)


_JSON_SCHEMA = CheckIn.model_json_schema()
_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {
                    "file": {"type": "string", "format": "binary", "description": "the PDF or text file to check"},
                    "sha256": {**HEX64, "description": "or: a SHA-256 to look up"},
                },
            }
        },
        "application/json": {
            "schema": {**_JSON_SCHEMA, "properties": {"sha256": HEX64}},
            "example": {"sha256": HEX64["example"]},
        },
    },
}
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text}
    for code, text in [
        (400, "The multipart body cannot be read"),
        (413, "The file is larger than the limit"),
        (415, "Neither multipart/form-data nor application/json"),
        (422, "Not a SHA-256, no file, or both (the field is named)"),
        (429, "Too many checks from this address; Retry-After says when to try again"),
        (503, "Database busy, retry"),
    ]
}


@router.post(
    "/check",
    response_model=CheckOut,
    responses=_ERRORS,
    openapi_extra={"requestBody": _BODY, "x-error-codes": [400, 413, 415, 422, 429]},
)
async def public_check(request: Request, session: SessionDep) -> Response:
    """Tell whether a file (multipart `file`) or a SHA-256 (JSON `{"sha256": ...}` or multipart `sha256`) is a
    sealed record or an agreement text issued by this service: which agreement, which version, since when in
    force, its state and its parties by name. No token is needed; checks are limited per client address (429 with
    Retry-After). Texts that were never in force are not recognised."""
    ctx, config = request.app.state.ctx, check_config(request)
    wait = await run_in_threadpool(throttle, session, config, check_key(request), ctx.clock.now())
    if wait is not None:
        return refusal(
            request,
            429,
            "TooManyRequests",
            "sha256",
            "check.error.rate_limited",
            f"too many checks from your address; try again in {wait} s",
            headers={"Retry-After": str(wait)},
            seconds=wait,
        )
    content_type = request.headers.get("content-type", "")
    media = content_type.split(";", 1)[0].strip().lower()
    size: int | None = None
    try:
        if media == "multipart/form-data":
            typed, size = await _read_multipart(request, content_type, config.check_max_bytes)
        elif media == "application/json" or media.endswith("+json"):
            typed = await _read_json(request)
        else:
            raise _Refused(
                415,
                "UnsupportedMediaType",
                "body",
                "check.error.media_type",
                'send multipart/form-data with a file, or JSON {"sha256": ...}',
            )
        digest = normalise(typed)
        if digest is None:
            raise _Refused(422, "InvalidInput", "sha256", "check.error.sha256", "a SHA-256 is 64 hexadecimal digits")
    except _Refused as exc:
        status, error, field, message_id, detail = exc.args_
        return refusal(request, status, error, field, message_id, detail, **exc.params)
    matches = await run_in_threadpool(_lookup, session, digest, service_cert(request))
    lang = request_language(request)
    out = CheckOut(sha256=digest, recognised=bool(matches), size=size, matches=[match_out(m, lang) for m in matches])
    return JSONResponse(out.model_dump(mode="json"))
