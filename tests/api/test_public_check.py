"""POST /api/v1/check: a sealed record or an agreement text in force is recognised, anything else is not; bad input
gets a 4xx naming the field in the caller's language; checks are limited per client address."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import socket
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import psutil  # type: ignore[import-untyped]
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from api.app import create_app
from api.context import AppContext
from api.web.config import WebConfig
from tests.support.builders import AgreementFixture, create_agreement, decision, org
from tests.support.http_server import HttpServer
from workflows.agreement.check import SealCheck, seal_check
from workflows.agreement.sealed import MADE, SealedRecord
from workflows.common.pdf import html_to_pdf

WEB = WebConfig(cookie_secure=False)


def client_for(ctx: AppContext, web: WebConfig = WEB, ip: str = "198.51.100.7") -> TestClient:
    return TestClient(create_app(ctx=ctx, web=web), client=(ip, 50000), raise_server_exceptions=False)


def into_force(ctx: AppContext, client: TestClient, parties: int = 2) -> AgreementFixture:
    fx = create_agreement(ctx, parties=parties)
    for key in fx.keys:
        headers = fx.signatories[key][0].headers
        assert client.post(
            f"/api/v1/agreements/{fx.id}/parties/{key}/decision", json=decision(), headers=headers
        ).status_code in (200, 201)
        assert client.post(f"/api/v1/agreements/{fx.id}/parties/{key}/signatures", headers=headers).status_code in (
            200,
            201,
        )
    assert client.get(f"/api/v1/agreements/{fx.id}", headers=fx.coordinator.headers).json()["in_force_at"]
    return fx


def downloaded_text(client: TestClient, fx: AgreementFixture, number: int = 1) -> bytes:
    r = client.get(f"/api/v1/agreements/{fx.id}/versions/{number}/text", headers=fx.coordinator.headers)
    assert r.status_code == 200
    return r.content


def seal(ctx: AppContext, fx: AgreementFixture, text_sha256: str) -> bytes:
    """Store a made sealed record of version 1 (the PDF's making and sealing is workflows/agreement/record.py's)."""
    pdf = html_to_pdf(
        '<!DOCTYPE html><html lang="fi"><head><meta charset="utf-8"><title>Sinetöity</title></head>'
        f"<body><h1>Pirkanmaan puitesopimus</h1><p>{text_sha256}</p></body></html>"
    )
    with Session(ctx.db.engine) as s:
        s.add(
            SealedRecord(
                case_id=fx.id,
                version_number=1,
                text_sha256=text_sha256,
                status=MADE,
                pdf=pdf,
                pdf_sha256=hashlib.sha256(pdf).hexdigest(),
                created_at=ctx.clock.now(),
                made_at=ctx.clock.now(),
            )
        )
        s.commit()
    return pdf


def check_hash(client: TestClient, sha256: str, **headers: str) -> dict:
    r = client.post("/api/v1/check", json={"sha256": sha256}, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def check_file(client: TestClient, content: bytes, name: str = "tiedosto.pdf") -> dict:
    r = client.post("/api/v1/check", files={"file": (name, content, "application/pdf")})
    assert r.status_code == 200, r.text
    return r.json()


def test_an_agreement_text_in_force_is_recognised_by_the_hash_of_the_downloaded_text(ctx: AppContext) -> None:
    client = client_for(ctx)
    fx = into_force(ctx, client)
    text = downloaded_text(client, fx)
    digest = hashlib.sha256(text).hexdigest()
    names = sorted(org(ctx, k).name_fi for k in fx.keys)

    answer = check_hash(client, digest.upper())  # upper case and no token: anyone may ask
    assert answer["recognised"] is True and answer["sha256"] == digest
    [match] = answer["matches"]
    assert match["kind"] == "agreement_text" and match["version"] == 1 and match["current"] is True
    assert match["title"] == "Pirkanmaan puitesopimus" and sorted(match["parties"]) == names
    assert match["state"] == "in_force" and match["state_label"] == "Voimassa" and match["in_force_since"]
    assert check_file(client, text, "sopimus.md")["matches"] == [match]  # the file itself: the same answer

    sv = check_hash(client, digest, **{"Accept-Language": "sv"})["matches"][0]
    assert sv["state_label"] != match["state_label"]
    # nothing else: no people, no addresses, no decisions, no ids
    body = json.dumps(answer)
    for user in [fx.coordinator, *(u for us in fx.signatories.values() for u in us)]:
        assert user.person.name not in body and user.person.email not in body
    for secret in ("Kunnanhallitus", "§ 58", "poytakirja", '"id"', "case"):
        assert secret not in body


def test_a_text_never_in_force_is_not_recognised(ctx: AppContext) -> None:
    client = client_for(ctx)
    draft = create_agreement(ctx, parties=2, circulate=False)
    circulating = create_agreement(ctx, parties=2)
    for fx in (draft, circulating):
        digest = hashlib.sha256(downloaded_text(client, fx)).hexdigest()
        assert check_hash(client, digest) == {"sha256": digest, "recognised": False, "size": None, "matches": []}


def test_a_sealed_record_is_recognised_and_a_random_or_modified_pdf_is_not(ctx: AppContext) -> None:
    client = client_for(ctx)
    fx = into_force(ctx, client)
    text_sha = hashlib.sha256(downloaded_text(client, fx)).hexdigest()
    pdf = seal(ctx, fx, text_sha)

    answer = check_file(client, pdf, "sinetöity.pdf")
    assert answer["recognised"] and answer["size"] == len(pdf)
    assert answer["sha256"] == hashlib.sha256(pdf).hexdigest()
    [match] = answer["matches"]
    assert match["kind"] == "sealed_record" and match["version"] == 1 and match["title"] == "Pirkanmaan puitesopimus"
    assert len(match["parties"]) == 2 and match["in_force_since"]
    assert check_hash(client, answer["sha256"])["matches"] == [match]

    flipped = bytearray(pdf)
    flipped[len(pdf) // 2] ^= 0x01
    appended = pdf + b"\n% an incremental update\n"
    other = html_to_pdf('<html lang="fi"><head><title>Muu</title></head><body><p>Jokin muu PDF</p></body></html>')
    for changed in (bytes(flipped), appended, pdf[:-1], other, os.urandom(4096)):
        assert check_file(client, changed) == {
            "sha256": hashlib.sha256(changed).hexdigest(),
            "recognised": False,
            "size": len(changed),
            "matches": [],
        }


@pytest.mark.parametrize(
    "body, field",
    [
        ({"sha256": "abc"}, "sha256"),
        ({"sha256": "g" * 64}, "sha256"),
        ({"sha256": "a" * 63 + " b"}, "sha256"),
        ({}, "sha256"),
        ({"sha256": 5}, "sha256"),
        ([], "sha256"),
    ],
)
def test_a_bad_hash_is_422_naming_the_field(ctx: AppContext, body: object, field: str) -> None:
    r = client_for(ctx).post("/api/v1/check", json=body, headers={"Accept-Language": "sv"})
    assert r.status_code == 422 and r.json()["field"] == field, r.text
    assert "Fältet" in r.json()["message"]


def test_bad_uploads_get_4xx_never_500(ctx: AppContext) -> None:
    client = client_for(ctx)
    # no file and no hash; a file and a hash; two files
    r = client.post("/api/v1/check", files={"other": ("x.pdf", b"%PDF-", "application/pdf")})
    assert r.status_code == 422 and r.json()["field"] == "file" and "valitse tiedosto" in r.json()["message"]
    r = client.post("/api/v1/check", data={"sha256": "a" * 64}, files={"file": ("x.pdf", b"%PDF-")})
    assert r.status_code == 422 and r.json()["field"] == "sha256"
    r = client.post("/api/v1/check", files=[("file", ("a.pdf", b"a")), ("file", ("b.pdf", b"b"))])
    assert r.status_code == 422 and r.json()["field"] == "file"
    # a hash typed into the multipart form works as the JSON one does
    r = client.post("/api/v1/check", files={"sha256": (None, "a" * 64)})
    assert r.status_code == 200 and r.json()["recognised"] is False
    # a corrupt multipart body, no boundary, another media type
    corrupt = b'--XYZ\r\nContent-Disposition: form-data; name="file"\r\n\r\n%PDF-1.7 but the body never ends'
    r = client.post("/api/v1/check", content=corrupt, headers={"Content-Type": "multipart/form-data; boundary=XYZ"})
    assert r.status_code in (400, 422), r.text
    r = client.post(
        "/api/v1/check",
        content=b"--\r\n\x00\xff garbage",
        headers={"Content-Type": "multipart/form-data; boundary=XYZ"},
    )
    assert r.status_code in (400, 422), r.text
    r = client.post("/api/v1/check", content=b"x", headers={"Content-Type": "multipart/form-data"})
    assert r.status_code == 400 and r.json()["field"] == "file"
    r = client.post("/api/v1/check", content=b"%PDF-1.7", headers={"Content-Type": "application/pdf"})
    assert r.status_code == 415 and r.json()["field"] == "body"
    r = client.post("/api/v1/check", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and r.json()["field"] == "sha256"


def test_a_huge_upload_is_413_while_it_streams(ctx: AppContext) -> None:
    web = WebConfig(cookie_secure=False, check_max_bytes=256 * 1024)  # the check's own cap, under the body limit
    client = client_for(ctx, web)
    r = client.post("/api/v1/check", files={"file": ("big.pdf", b"%PDF-" + b"0" * (300 * 1024))})
    assert r.status_code == 413 and r.json()["field"] == "file" and "262144" in r.json()["message"]

    def chunks():  # no Content-Length: the service's own body limit (4 MB) stops it as it streams
        boundary = b'--B\r\nContent-Disposition: form-data; name="file"; filename="x.pdf"\r\n\r\n'
        yield boundary
        for _ in range(80):
            yield b"0" * (64 * 1024)
        yield b"\r\n--B--\r\n"

    r = client_for(ctx).post(
        "/api/v1/check", content=chunks(), headers={"Content-Type": "multipart/form-data; boundary=B"}
    )
    assert r.status_code == 413, r.text


def test_checks_are_limited_per_client_address(ctx: AppContext) -> None:
    web = WebConfig(cookie_secure=False, check_limit=3, check_window=timedelta(minutes=10))
    client = client_for(ctx, web)
    for _ in range(3):
        check_hash(client, "0" * 64)
    r = client.post("/api/v1/check", json={"sha256": "0" * 64}, headers={"X-Forwarded-For": "203.0.113.9"})
    assert r.status_code == 429 and r.json()["message_id"] == "check.error.rate_limited"
    assert 1 <= int(r.headers["Retry-After"]) <= 600 and r.headers["Retry-After"] in r.json()["message"]
    assert "Osoitteestasi" in r.json()["message"]  # Finnish unless the caller asks otherwise
    r = client.post("/api/v1/check", files={"file": ("a.pdf", b"%PDF-")}, headers={"Accept-Language": "en"})
    assert r.status_code == 429 and "Too many checks" in r.json()["message"]
    check_hash(client_for(ctx, web, ip="198.51.100.8"), "0" * 64)  # another address is not held up
    ctx.clock.advance(timedelta(minutes=10, seconds=1))
    check_hash(client, "0" * 64)


def test_behind_a_trusted_proxy_the_forwarded_address_is_counted(ctx: AppContext, database) -> None:
    from tests.conftest import context_for

    proxied = context_for(database, ctx.clock, trusted_proxies=["10.0.0.1"])
    web = WebConfig(cookie_secure=False, check_limit=2)
    proxy = client_for(proxied, web, ip="10.0.0.1")
    for _ in range(2):
        assert (
            proxy.post(
                "/api/v1/check", json={"sha256": "0" * 64}, headers={"X-Forwarded-For": "203.0.113.1"}
            ).status_code
            == 200
        )
    assert (
        proxy.post("/api/v1/check", json={"sha256": "0" * 64}, headers={"X-Forwarded-For": "203.0.113.1"}).status_code
        == 429
    )
    assert (
        proxy.post("/api/v1/check", json={"sha256": "0" * 64}, headers={"X-Forwarded-For": "203.0.113.2"}).status_code
        == 200
    )


def test_the_route_is_in_the_openapi_document_with_both_bodies(ctx: AppContext) -> None:
    schema = client_for(ctx).get("/openapi.json").json()
    operation = schema["paths"]["/api/v1/check"]["post"]
    assert set(operation["requestBody"]["content"]) == {"multipart/form-data", "application/json"}
    assert {"400", "413", "415", "422", "429"} <= set(operation["responses"])
    assert "x-error-codes" not in operation and "security" not in operation


def _upload(url: str, *, size: int, declared: bool, corrupt: bool = False) -> tuple[int, bytes]:
    """Send one multipart upload of `size` bytes over a raw socket; return the status and the body answered."""
    host, port = url.removeprefix("http://").split(":")
    head_part = b'--B\r\nContent-Disposition: form-data; name="file"; filename="x.pdf"\r\n\r\n'
    if corrupt:
        head_part = b"--B\r\n\x00\xff not a part header\r\n"
    tail = b"\r\n--B--\r\n"
    chunk = b"%" * (1024 * 1024)
    with socket.create_connection((host, int(port)), timeout=60) as sock:
        head = f"POST /api/v1/check HTTP/1.1\r\nHost: {host}\r\nContent-Type: multipart/form-data; boundary=B\r\n"
        total = len(head_part) + size + len(tail)
        head += f"Content-Length: {total}\r\n" if declared else "Transfer-Encoding: chunked\r\n"
        sock.sendall((head + "\r\n").encode())

        def send(data: bytes) -> None:
            sock.sendall(data if declared else b"%x\r\n%s\r\n" % (len(data), data))

        try:
            send(head_part)
            left = size
            while left > 0:
                send(chunk[: min(left, len(chunk))])
                left -= len(chunk)
            send(tail)
            if not declared:
                sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed before the body was through
        answer = b""
        try:
            while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
                part = sock.recv(65536)
                if not part:
                    break
                answer += part
        except (ConnectionResetError, TimeoutError):
            pass
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/") else 0
    return status, answer.partition(b"\r\n\r\n")[2]


@pytest.mark.slow
def test_against_the_real_server_huge_and_corrupt_uploads_are_4xx_and_leave_its_memory_as_it_was(
    tmp_path: Path,
) -> None:
    env = {
        "VUOSIKELLO_DATABASE_URL": f"sqlite:///{tmp_path / 'vuosikello.db'}",
        "VUOSIKELLO_SCHEDULER_ENABLED": "false",
        "VUOSIKELLO_ENVIRONMENT": "development",
    }
    server = HttpServer.start(env, tmp_path / "server.log")
    try:
        process = psutil.Process(server.pid)
        status, body = _upload(server.url, size=3 * 1024 * 1024, declared=True)  # under the limit: hashed
        assert status == 200 and json.loads(body)["sha256"] == hashlib.sha256(b"%" * 3 * 1024 * 1024).hexdigest()
        before = process.memory_info().rss / (1024 * 1024)
        statuses = [_upload(server.url, size=100 * 1024 * 1024, declared=declared)[0] for declared in (True, False)]
        statuses += [_upload(server.url, size=100 * 1024 * 1024, declared=False, corrupt=True)[0]]
        after = process.memory_info().rss / (1024 * 1024)
    finally:
        server.stop()
    assert statuses == [413, 413, 400], statuses
    assert after - before < 40, f"RSS {before:.0f} MB -> {after:.0f} MB"


def test_a_record_sealed_by_the_service_is_recognised_with_its_seal_valid(database, clock, tmp_path: Path) -> None:
    from sqlalchemy import select

    from tests.conftest import context_for
    from tests.workflows.test_sealed_record import seal_settings

    sctx = context_for(database, clock, **seal_settings(tmp_path))
    client = client_for(sctx)
    fx = into_force(sctx, client)
    assert sctx.records is not None and sctx.records.make_pending() == 1  # the sweep prints and seals it
    with Session(sctx.db.engine) as s:
        record = s.execute(select(SealedRecord).where(SealedRecord.case_id == fx.id)).scalars().one()
    assert record.status == MADE and record.pdf
    [match] = check_file(client, record.pdf, "sinetöity.pdf")["matches"]
    assert match["kind"] == "sealed_record" and match["version"] == 1
    seal = match["seal"]
    assert seal["valid"] is True and seal["by_this_service"] is True and "Vuosikello test seal" in seal["signer"]
    assert seal["certificate_sha256"] == sctx.records.seal.fingerprint_sha256

    async def inside_a_running_loop() -> SealCheck | None:  # pyHanko's asyncio.run() refuses to nest
        return seal_check(record.pdf, sctx.records.seal.cert_pem)

    with ThreadPoolExecutor(max_workers=1) as pool:  # a thread of its own: this one may run Playwright's loop
        checked = pool.submit(asyncio.run, inside_a_running_loop()).result()
    assert checked is not None and checked.valid and checked.by_this_service
    page_client = TestClient(create_app(ctx=sctx, web=WEB), client=("198.51.100.9", 50000))
    with page_client:
        from tests.web.support import csrf_of

        token = csrf_of(page_client.get("/check").text)
        page = page_client.post(
            "/check", data={"csrf_token": token, "sha256": ""}, files={"file": ("s.pdf", record.pdf, "application/pdf")}
        )
        assert "tämän palvelun sinettivarmenteella" in page.text and seal["certificate_sha256"] in page.text

    # the same bytes checked by a service with another seal certificate: intact, but not this service's
    (tmp_path / "other").mkdir()
    other = context_for(database, clock, **seal_settings(tmp_path / "other"))
    [elsewhere] = check_file(client_for(other), record.pdf)["matches"]
    assert elsewhere["seal"]["valid"] is True and elsewhere["seal"]["by_this_service"] is False
