"""Request limits enforced before anything reads a body: its size, and how deeply a JSON body nests.

A pure ASGI middleware, outermost, so it runs before authentication, the CSRF form parse and FastAPI's body
parsing. A declared `Content-Length` over the limit is refused at once (nothing is read); a body sent without one
(chunked) is counted as it streams and refused as soon as the count passes the limit, so a 100 MB post costs the
server one chunk of memory, not 100 MB. Starlette and FastAPI have no such limit of their own (uvicorn neither),
which is why this is written here.

A JSON body is read whole (it is bounded by the size limit) and its nesting measured before the app parses it:
Python's json parser is recursive, and an array nested 10,000 deep ends in a RecursionError (a 500) there or in
validation. The depth count skips strings, so brackets inside text do not count.
"""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import request_language
from api.refusals import ERRORS

BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(rb"[\[\]{}]")


class BodyTooLarge(Exception):
    """The request body passed the size limit while it was being read."""


def json_depth(body: bytes) -> int:
    """Return how deeply a JSON text nests arrays and objects (0 for a scalar), without parsing it."""
    depth = deepest = 0
    for match in _BRACKETS.finditer(_STRING.sub(b'""', body)):
        if match.group() in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _is_json(content_type: str | None) -> bool:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


async def _answer(scope: Scope, send: Send, status: int, error: str, message_id: str, detail: str,
                  **params: Any) -> None:
    lang = request_language(Request(scope))
    body = json.dumps({"error": error, "detail": detail, "field": "body", "message_id": message_id,
                       "message": ERRORS.gettext(lang, message_id).format(**params)}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


class RequestLimits:
    """Refuse a body over `max_body_bytes` with 413, and a JSON body nested deeper than `max_json_depth` with 422."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, max_json_depth: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_json_depth = max_json_depth

    async def _too_large(self, scope: Scope, send: Send) -> None:
        limit = self.max_body_bytes
        await _answer(scope, send, 413, "PayloadTooLarge", "security.body_too_large",
                      f"body: the request body is larger than the limit of {limit} bytes", limit=limit)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared is not None:
            if not declared.strip().isdigit():
                await _answer(scope, send, 400, "BadRequest", "security.bad_length",
                              "Content-Length: not a whole number of bytes")
                return
            if int(declared) > self.max_body_bytes:
                await self._too_large(scope, send)
                return
        if _is_json(_header(scope, b"content-type")):
            await self._json(scope, receive, send)
        else:
            await self._stream(scope, receive, send)

    async def _json(self, scope: Scope, receive: Receive, send: Send) -> None:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await self._too_large(scope, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        depth = json_depth(body)
        if depth > self.max_json_depth:
            limit = self.max_json_depth
            await _answer(scope, send, 422, "InvalidInput", "security.json_too_deep",
                          f"body: the JSON nests {depth} levels deep; at most {limit} are accepted",
                          depth=depth, limit=limit)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()  # only a disconnect can come after the whole body
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        await self.app(scope, replay, send)

    async def _stream(self, scope: Scope, receive: Receive, send: Send) -> None:
        size = 0
        exceeded = False
        started = False

        async def counting() -> Message:
            nonlocal size, exceeded
            message = await receive()
            if message["type"] == "http.request":
                size += len(message.get("body", b""))
                if size > self.max_body_bytes:
                    exceeded = True
                    raise BodyTooLarge(f"the request body passed {self.max_body_bytes} bytes")
            return message

        async def guarded(message: Message) -> None:
            nonlocal started
            if exceeded:  # whatever the app made of the cut-off body (a 400, a CSRF refusal): the answer is 413
                if not started:
                    started = True
                    await self._too_large(scope, send)
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting, guarded)
        except BodyTooLarge:
            if not started:
                started = True
                await self._too_large(scope, send)
