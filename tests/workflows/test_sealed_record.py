"""The sealed record of an agreement in force: made after the commit, tagged PDF/UA, sealed (PAdES) and checkable.

Real parts: WeasyPrint prints the PDF, pyHanko seals it and pyHanko's validator checks it against the service's
self-signed certificate (made per test with `generate_self_signed`), pypdf reads its text and structure.
"""

from __future__ import annotations

import hashlib
import io
import time
from pathlib import Path

import pytest
from pypdf import PdfReader
from sqlalchemy import select
from sqlmodel import Session, col

from api.context import AppContext
from engine.clock import ManualClock
from engine.db import Database
from engine.errors import NotPermitted
from engine.models import AuditCheckpoint
from tests.conftest import context_for
from tests.support.builders import create_agreement, make_user, render_mail
from workflows.agreement import service
from workflows.agreement.record import MAX_ATTEMPTS, generate_self_signed, record_data, request_record
from workflows.agreement.schemas import DecisionIn, DocumentIn
from workflows.agreement.sealed import FAILED, MADE, PENDING, SealedRecord, find_sealed_by_sha256
from workflows.common.pdf import outside_event_loop

SAMI_TEXT = ("# Sámi yhteistyösopimus\n\nSopijapuolet: Sámediggi, Anára, Ohcejohka. "
             "Åland och Närpes deltar på lika villkor.\n\n"
             "Davvisámegiella: čáhci, đuoddar, ŋuolla, šaddu, ŧ, žiehpa. "
             "Inarinsaame: Aanaar; koltansaame: Čeʹvetjäu'rr.\n")
AUDIT_KEY = "k" * 40


def seal_settings(tmp_path: Path) -> dict[str, object]:
    key, cert = tmp_path / "seal-key.pem", tmp_path / "seal-cert.pem"
    generate_self_signed(key, cert, common_name="Vuosikello test seal")
    return {"seal_key_file": key, "seal_cert_file": cert, "audit_key": AUDIT_KEY}


@pytest.fixture
def sctx(database: Database, clock: ManualClock, tmp_path: Path) -> AppContext:
    return context_for(database, clock, **seal_settings(tmp_path))


def bring_into_force(ctx: AppContext, parties: int = 3, substitute_for: str | None = None):  # type: ignore[no-untyped-def]
    fx = create_agreement(ctx, parties=parties, circulate=False)
    ctx.engine.run(lambda uow: service.revise(uow, fx.id, DocumentIn(text=SAMI_TEXT), fx.coordinator.actor))
    ctx.engine.run(lambda uow: service.circulate(uow, fx.id, fx.coordinator.actor))
    for n, key in enumerate(fx.keys):
        signer = fx.signatories[key][0]
        ctx.engine.run(lambda uow: service.decide(uow, fx.id, key, DecisionIn(
            outcome="approved", body="Kunnanhallitus", decided_on="2026-03-02", section=f"§ {58 + n}",
            minutes_url="https://example.fi/poytakirja/58", note="Ei varaumia" if n == 0 else None,
            published_on="2026-03-02" if n == 0 else None), signer.actor))
        ctx.engine.run(lambda uow: service.sign(uow, fx.id, key, signer.actor))
    if ctx.anchor is not None:  # the leader's checkpoint job, which runs before its record job
        ctx.anchor.catch_up()
    return fx


def records(ctx: AppContext, case_id: int) -> list[SealedRecord]:
    with Session(ctx.db.engine) as session:
        return list(session.execute(select(SealedRecord).where(col(SealedRecord.case_id) == case_id)
                                    .order_by(col(SealedRecord.id))).scalars())


def validate(pdf: bytes, cert_pem: bytes):  # type: ignore[no-untyped-def]
    from pyhanko.keys import load_cert_from_pemder
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext

    path = Path(f"/tmp/vk-seal-{hashlib.sha256(cert_pem).hexdigest()[:8]}.pem")
    path.write_bytes(cert_pem)
    vc = ValidationContext(trust_roots=[load_cert_from_pemder(str(path))])
    reader = PdfFileReader(io.BytesIO(pdf))
    # asyncio.run() inside: not in this thread when a browser test left Playwright's loop running in it
    return outside_event_loop(lambda: validate_pdf_signature(reader.embedded_signatures[0], vc))


def flipped(pdf: bytes, marker: bytes) -> bytes:
    """Return a copy with one byte changed inside the signed range (in the text, before the signature)."""
    at = pdf.index(marker)
    return pdf[:at] + bytes([pdf[at] ^ 0x01]) + pdf[at + 1:]


def still_valid(pdf: bytes, cert_pem: bytes) -> bool:
    try:
        return bool(validate(pdf, cert_pem).bottom_line)
    except Exception:  # noqa: BLE001 - a copy pyHanko cannot even read is not valid either
        return False


def test_the_record_is_made_after_the_commit_sealed_tagged_and_checkable(sctx: AppContext) -> None:
    fx = bring_into_force(sctx)
    rows = records(sctx, fx.id)
    assert [(r.status, r.pdf, r.pdf_sha256) for r in rows] == [(PENDING, None, None)]  # nothing printed inside
    assert rows[0].version_number == 2 and rows[0].text_sha256 == service.sha256_text(SAMI_TEXT)
    assert sctx.records is not None and sctx.records.make_pending() == 1
    assert sctx.records.make_pending() == 0  # made once
    row = records(sctx, fx.id)[0]
    assert row.status == MADE and row.pdf is not None and row.made_at is not None
    assert row.pdf_sha256 == hashlib.sha256(row.pdf).hexdigest()
    with Session(sctx.db.engine) as session:
        found = find_sealed_by_sha256(session, row.pdf_sha256.upper())
        assert found is not None and found.id == row.id
        assert find_sealed_by_sha256(session, "0" * 64) is None
    cert_pem = sctx.records.seal.cert_pem  # type: ignore[union-attr]
    status = validate(row.pdf, cert_pem)
    assert status.bottom_line and status.intact and status.valid and status.trusted
    assert not still_valid(flipped(row.pdf, b"stream"), cert_pem)
    assert not still_valid(row.pdf[:-1] + bytes([row.pdf[-1] ^ 0x01]), cert_pem)  # the last byte is covered too
    other = Path(str(sctx.settings.seal_cert_file) + ".other")
    generate_self_signed(other.with_suffix(".key"), other)
    assert not validate(row.pdf, other.read_bytes()).trusted  # trusted only against the service's certificate

    reader = PdfReader(io.BytesIO(row.pdf))
    text = "\n".join(page.extract_text() for page in reader.pages)
    for letters in ("ä", "ö", "å", "á", "č", "đ", "ŋ", "š", "ŧ", "ž", "Sámediggi", "Åland och Närpes"):
        assert letters in text, letters
    assert row.text_sha256 in text.replace("\n", "") and "versio 2" in text
    assert "§ 58" in text and "https://example.fi/poytakirja/58" in text and "Ei varaumia" in text
    root = reader.trailer["/Root"]
    assert bool(root["/MarkInfo"]["/Marked"]) and "/StructTreeRoot" in root and root["/Lang"] == "fi"
    assert reader.metadata is not None and reader.metadata.title == "Sinetöity asiakirja: Pirkanmaan puitesopimus"
    assert b"pdfuaid:part" in root["/Metadata"].get_object().get_data()
    assert bool(root["/ViewerPreferences"]["/DisplayDocTitle"])
    for page in reader.pages:  # every annotation is in the structure tree, or hidden (the seal's widget)
        for annot in page.get("/Annots") or []:
            a = annot.get_object()
            assert "/StructParent" in a or int(a.get("/F", 0)) & 2, a
    with Session(sctx.db.engine) as session:
        names = [p["name"] for p in record_data(session, fx.id)["parties"]]
        checkpoint = session.execute(select(AuditCheckpoint).order_by(col(AuditCheckpoint.seq))).scalars().first()
    assert len(names) == 3 and all(name in text for name in names)  # organisations by their registered names
    assert checkpoint is not None and checkpoint.mac in text.replace("\n", "")  # the checkpoint that covers it
    flat = " ".join(text.split())
    # finality as of the day it was made: the first party's minutes were published 2.3. (notified 9.3., claims
    # until Mon 23.3., final from 24.3.), the others' publication is not recorded yet
    assert "Ei vielä lainvoimainen ma 2.3.2026: oikaisuvaatimusaika päättyy ma 23.3.2026; lainvoimainen ti " \
           "24.3.2026, jos oikaisuvaatimusta ei tehdä" in flat
    assert flat.count("pöytäkirjan julkaisupäivä puuttuu") == 2


def test_a_record_asked_for_after_the_claim_period_says_final(sctx: AppContext, clock: ManualClock) -> None:
    from datetime import timedelta

    fx = bring_into_force(sctx)
    clock.advance(timedelta(days=23))  # Wed 25.3.2026
    assert sctx.engine.run(lambda uow: request_record(uow, fx.id, fx.coordinator.actor)).status == PENDING
    assert sctx.records is not None and sctx.records.make_pending() == 1
    pdf = records(sctx, fx.id)[-1].pdf
    assert pdf is not None
    flat = " ".join("\n".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages).split())
    assert "Lainvoimainen ti 24.3.2026" in flat and flat.count("pöytäkirjan julkaisupäivä puuttuu") == 2


def test_the_record_speaks_the_coordinator_s_language(database: Database, clock: ManualClock,
                                                      tmp_path: Path) -> None:
    ctx = context_for(database, clock, **seal_settings(tmp_path))
    fx = bring_into_force(ctx)
    with Session(ctx.db.write_engine) as session:
        from engine.models import Person

        person = session.get(Person, fx.coordinator.id)
        assert person is not None
        person.language = "sv"
        session.add(person)
        session.commit()
    assert ctx.records is not None and ctx.records.make_pending() == 1
    pdf = records(ctx, fx.id)[0].pdf
    assert pdf is not None
    reader = PdfReader(io.BytesIO(pdf))
    assert reader.trailer["/Root"]["/Lang"] == "sv" and "Förseglad handling" in reader.pages[0].extract_text()


def test_a_record_left_pending_is_made_by_the_next_sweep_and_a_failing_one_stops_after_three_tries(
        sctx: AppContext, monkeypatch: pytest.MonkeyPatch) -> None:
    from workflows.agreement import record

    fx = bring_into_force(sctx)
    assert sctx.records is not None
    # a process without a seal (or one that died before the sweep) leaves the row pending, and makes nothing
    assert record.RecordMaker(sctx.engine, None).make_pending() == 0
    assert [r.status for r in records(sctx, fx.id)] == [PENDING]

    def broken(html: str, *, extra_css: str = "") -> bytes:
        raise RuntimeError("pango went away")

    monkeypatch.setattr(record, "html_to_pdf", broken)
    for attempt in range(1, MAX_ATTEMPTS + 1):
        assert sctx.records.make_pending() == 0
        row = records(sctx, fx.id)[0]
        assert row.attempts == attempt and "pango went away" in (row.error or "")
    assert row.status == FAILED and row.pdf is None
    monkeypatch.undo()
    assert sctx.records.make_pending() == 0  # a failed row is not retried by itself
    # asking again queues a new one, which the sweep makes
    assert sctx.engine.run(lambda uow: request_record(uow, fx.id, fx.coordinator.actor)).status == PENDING
    assert sctx.records.make_pending() == 1
    assert [r.status for r in records(sctx, fx.id)] == [FAILED, MADE]


def test_only_the_coordinator_or_an_admin_asks_for_a_record_and_only_of_an_agreement_in_force(
        sctx: AppContext) -> None:
    from engine.errors import Conflict

    draft = create_agreement(sctx, parties=2)
    with pytest.raises(Conflict):
        sctx.engine.run(lambda uow: request_record(uow, draft.id, draft.coordinator.actor))
    fx = bring_into_force(sctx, parties=2)
    signer = fx.signatories[fx.keys[0]][0]
    with pytest.raises(NotPermitted):
        sctx.engine.run(lambda uow: request_record(uow, fx.id, signer.actor))
    # the one pending is reused rather than queued twice
    first = sctx.engine.run(lambda uow: request_record(uow, fx.id, fx.coordinator.actor))
    assert sctx.engine.run(lambda uow: request_record(uow, fx.id, fx.coordinator.actor)).id == first.id
    assert len(records(sctx, fx.id)) == 1


def test_parties_and_the_coordinator_download_it_a_stranger_cannot_and_the_in_force_mail_links_to_it(
        sctx: AppContext) -> None:
    from fastapi.testclient import TestClient

    from api.app import create_app
    from engine.models import OutboxMessage
    from tests.web.support import sign_in, web_client

    fx = bring_into_force(sctx)
    stranger = make_user(sctx, org_key="municipality:091", name="Helsingin allekirjoittaja")
    party = fx.signatories[fx.keys[1]][0]
    client = TestClient(create_app(ctx=sctx))
    url = f"/api/v1/agreements/{fx.id}/record"
    pending = client.get(url, headers=party.headers)
    assert pending.status_code == 404 and pending.json()["message_id"] == "record.pending"
    assert sctx.records is not None and sctx.records.make_pending() == 1
    pdf = records(sctx, fx.id)[0].pdf
    for who in (party, fx.coordinator):
        r = client.get(url, headers=who.headers)
        assert r.status_code == 200 and r.headers["content-type"] == "application/pdf" and r.content == pdf
        assert r.headers["repr-digest"].startswith("sha-256=:")
    refused = client.get(url, headers=stranger.headers)
    assert refused.status_code == 404 and refused.json()["error"] == "CaseNotFound"
    assert client.post(url, headers=party.headers).status_code == 403
    asked = client.post(url, headers=fx.coordinator.headers)
    assert asked.status_code == 202 and asked.json()["status"] == PENDING

    web = web_client(sctx)
    sign_in(web, sctx, party.id)
    page = web.get(f"/agreements/{fx.id}")
    assert f'href="/agreements/{fx.id}/record.pdf"' in page.text
    r = web.get(f"/agreements/{fx.id}/record.pdf")
    assert r.status_code == 200 and r.content == pdf
    other = web_client(sctx)
    sign_in(other, sctx, stranger.id)
    assert other.get(f"/agreements/{fx.id}/record.pdf").status_code == 404

    render_mail(sctx)
    with Session(sctx.db.engine) as session:
        mails = session.execute(select(OutboxMessage).where(col(OutboxMessage.template) == "agreement_in_force")
                                ).scalars().all()
    assert mails and all(f"http://testserver/agreements/{fx.id}/record.pdf" in m.text + m.html for m in mails)


def test_a_25_party_record(sctx: AppContext) -> None:
    """Print the time a 25-party record takes (docs figure); it must stay well under the sweep's pace."""
    fx = bring_into_force(sctx, parties=25)
    assert sctx.records is not None
    started = time.perf_counter()
    assert sctx.records.make_pending() == 1
    took = time.perf_counter() - started
    pdf = records(sctx, fx.id)[0].pdf
    assert pdf is not None
    pages = len(PdfReader(io.BytesIO(pdf)).pages)
    print(f"25-party sealed record: {took:.2f} s, {len(pdf) / 1024:.0f} KiB, {pages} pages")
    assert pages >= 27 and took < 60


def test_the_cli_writes_a_self_signed_seal_and_shows_its_fingerprint(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding
    from typer.testing import CliRunner

    from api.cli import app as cli
    from engine.settings import get_settings

    key, cert = tmp_path / "k.pem", tmp_path / "c.pem"
    runner = CliRunner()
    monkeypatch.delenv("VUOSIKELLO_SEAL_KEY_FILE", raising=False)
    get_settings.cache_clear()
    assert runner.invoke(cli, ["seal", "show"]).exit_code == 1  # none configured
    assert runner.invoke(cli, ["seal", "self-signed", str(key), str(cert), "--name", "Testi Sámi"]).exit_code == 0
    assert key.stat().st_mode & 0o077 == 0  # the key is the owner's only
    monkeypatch.setenv("VUOSIKELLO_SEAL_KEY_FILE", str(key))
    monkeypatch.setenv("VUOSIKELLO_SEAL_CERT_FILE", str(cert))
    get_settings.cache_clear()
    try:
        shown = runner.invoke(cli, ["seal", "show", "--pem"])
    finally:
        get_settings.cache_clear()
    der = x509.load_pem_x509_certificate(cert.read_bytes()).public_bytes(Encoding.DER)
    assert shown.exit_code == 0 and hashlib.sha256(der).hexdigest() in shown.stdout
    assert "CN=Testi Sámi" in shown.stdout and "BEGIN CERTIFICATE" in shown.stdout


def test_the_in_force_mail_link_before_the_record_is_made_lands_on_the_agreement_page(sctx: AppContext) -> None:
    """The in-force mail links to record.pdf; until the sweep has made it, the reader sees why, in their language."""
    from tests.web.support import sign_in, web_client

    fx = bring_into_force(sctx)
    party = fx.signatories[fx.keys[1]][0]
    web = web_client(sctx)
    sign_in(web, sctx, party.id)
    r = web.get(f"/agreements/{fx.id}/record.pdf", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/agreements/{fx.id}?notice=record_pending"
    page = web.get(r.headers["location"])
    assert page.status_code == 200 and "Sinetöityä asiakirjaa tehdään parhaillaan" in page.text
    assert sctx.records is not None and sctx.records.make_pending() == 1
    made = web.get(f"/agreements/{fx.id}/record.pdf", follow_redirects=False)
    assert made.status_code == 200 and made.headers["content-type"] == "application/pdf"
