"""Request limits: a body over the size limit is refused with 413 before anything reads it (authentication, the
CSRF form parse, FastAPI), with or without a Content-Length; JSON and YAML nested too deep are a 4xx naming the
problem, never a 500."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.context import AppContext
from api.limits import json_depth
from engine.clock import ManualClock
from engine.db import Database
from tests.conftest import context_for
from tests.support.builders import make_user

LIMIT = 64 * 1024


@pytest.fixture
def small(database: Database, clock: ManualClock) -> AppContext:
    return context_for(database, clock, max_request_bytes=LIMIT, max_json_depth=32)


@pytest.fixture
def client(small: AppContext) -> TestClient:
    return TestClient(create_app(ctx=small), raise_server_exceptions=False)


def _chunks(total: int, size: int = 16 * 1024) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        yield b"a" * min(size, total - sent)
        sent += size


def test_a_declared_length_over_the_limit_is_413_in_the_callers_language(client: TestClient) -> None:
    for path in ("/api/v1/agreements", "/signin/password", "/link/whatever"):
        r = client.post(path, content=b"x" * (LIMIT + 1), headers={"content-type": "application/json",
                                                                    "accept-language": "sv"})
        assert r.status_code == 413, (path, r.status_code, r.text)
        body = r.json()
        assert body["error"] == "PayloadTooLarge" and body["message_id"] == "security.body_too_large"
        assert str(LIMIT) in body["message"] and "Begäran" in body["message"], body


def test_a_streamed_body_without_length_is_counted_and_refused(client: TestClient) -> None:
    read: list[int] = []

    def body() -> Iterator[bytes]:
        for chunk in _chunks(10 * LIMIT):
            read.append(len(chunk))
            yield chunk
    # anonymous and chunked: a form (the CSRF check parses it before any route), JSON (buffered to measure its
    # depth), and any other type to a JSON route (FastAPI reads the body before it authenticates)
    for path, content_type in (("/signin/email", "application/x-www-form-urlencoded"),
                               ("/signin/email", "multipart/form-data; boundary=xyz"),
                               ("/api/v1/agreements", "application/json"),
                               ("/api/v1/agreements", "application/octet-stream")):
        read.clear()
        r = client.post(path, content=body(), headers={"content-type": content_type})
        assert r.status_code == 413, (content_type, r.status_code, r.text)
        assert r.json()["message_id"] == "security.body_too_large"


def test_a_body_within_the_limit_still_works(small: AppContext, client: TestClient) -> None:
    admin = make_user(small, roles="admin", name="Pääkäyttäjä")
    r = client.get("/api/v1/workflows", headers=admin.headers)
    assert r.status_code == 200
    source = "x" * (LIMIT - 1000)
    r = client.post("/api/v1/workflows/agreement/validate", headers=admin.headers,
                    json={"source": source})
    assert r.status_code == 200, r.text
    assert r.json()["valid"] is False  # a YAML scalar, not a definition: answered, not refused for its size


def test_json_nested_too_deep_is_422_naming_the_problem(small: AppContext, client: TestClient) -> None:
    admin = make_user(small, roles="admin", name="Pääkäyttäjä")
    deep = "[" * 10_000 + "]" * 10_000
    for path in ("/api/v1/agreements", "/api/v1/workflows/agreement/validate"):
        r = client.post(path, content=deep, headers={**admin.headers, "content-type": "application/json",
                                                     "accept-language": "en"})
        assert r.status_code == 422, (path, r.status_code, r.text[:300])
        body = r.json()
        assert body["message_id"] == "security.json_too_deep" and body["field"] == "body"
        assert "10000 levels" in body["message"], body
    # the same depth as an anonymous caller: refused before authentication, and never a 500
    r = client.post("/api/v1/agreements", content=deep, headers={"content-type": "application/json"})
    assert r.status_code == 422


def test_json_depth_ignores_brackets_inside_strings() -> None:
    assert json_depth(b'{"a": [1, {"b": "[[[[{{{{\\"]]]"}]}') == 3
    assert json_depth(b'"[[["') == 0


def test_yaml_nested_too_deep_is_422_with_its_line(small: AppContext, client: TestClient) -> None:
    admin = make_user(small, roles="admin", name="Pääkäyttäjä")
    deep = "name: x\nstates:\n  a: " + "[" * 10_000 + "]" * 10_000 + "\n"
    r = client.post("/api/v1/workflows/agreement/validate", headers=admin.headers, json={"source": deep})
    assert r.status_code == 200, r.text[:300]
    result: dict[str, Any] = r.json()
    assert result["valid"] is False
    assert result["problems"][0]["line"] == 3 and "nested more than" in result["problems"][0]["message"]
    r = client.post("/api/v1/workflows/agreement/versions", headers=admin.headers, json={"source": deep})
    assert r.status_code == 422, r.text[:300]
    assert "nested more than" in r.json()["detail"]


def test_yaml_alias_bomb_is_refused(small: AppContext, client: TestClient) -> None:
    admin = make_user(small, roles="admin", name="Pääkäyttäjä")
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    r = client.post("/api/v1/workflows/agreement/versions", headers=admin.headers,
                    json={"source": "\n".join(lines) + "\n"})
    assert r.status_code == 422, r.text[:300]
    assert "aliases are expanded" in r.json()["detail"]
