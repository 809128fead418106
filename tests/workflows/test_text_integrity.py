"""What people approved is what is stored and hashed: line endings never void a decision, revisions tell everyone.

Findings 1 and 2 of the integrity issue: a browser's CRLF made an unchanged save a new version that voided 15
approvals and 10 signatures; parties that had signed were not told that a revision voided their signature.
"""

from __future__ import annotations

import hashlib

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlmodel import Session, col

from api.app import create_app
from engine.models import Case, OutboxMessage
from tests.support.builders import DOCUMENT, create_agreement, decision, render_mail
from tests.web.support import csrf_of, sign_in, web_client
from workflows.agreement.models import Decision, DocumentVersion, Signature
from workflows.agreement.service import normalise_document


def _live(session: Session, table: type[Decision] | type[Signature]) -> int:
    return session.execute(select(func.count()).select_from(table).where(col(table.voided_at).is_(None))).scalar_one()


def _act(client: TestClient, fx, keys, sign: bool = True) -> None:  # type: ignore[no-untyped-def]
    for key in keys:
        user = fx.signatories[key][0]
        url = f"/api/v1/agreements/{fx.id}/parties/{key}"
        assert client.post(f"{url}/decision", json=decision(), headers=user.headers).status_code == 201
        if sign:
            assert client.post(f"{url}/signatures", headers=user.headers).status_code == 201


def test_normalised_text_has_lf_endings_no_trailing_blanks_and_one_final_newline() -> None:
    assert normalise_document("# A\r\n\r\nB  \r\nC\rD\n\n\n") == "# A\n\nB\nC\nD\n"
    assert normalise_document("x") == "x\n"
    assert normalise_document(normalise_document("a\r\nb")) == "a\nb\n"  # idempotent


def test_an_unchanged_save_from_the_browser_with_crlf_voids_nothing(ctx) -> None:
    fx = create_agreement(ctx, parties=4)
    client = TestClient(create_app(ctx=ctx))
    with client:
        _act(client, fx, fx.keys[:2])
        _act(client, fx, fx.keys[2:3], sign=False)
    with Session(ctx.db.engine) as session:
        before = (_live(session, Decision), _live(session, Signature), session.get(Case, fx.id).version)
    assert before[:2] == (3, 2)
    with web_client(ctx) as web:
        sign_in(web, ctx, fx.coordinator.id)
        page = web.get(f"/agreements/{fx.id}/revise").text
        crlf = DOCUMENT.replace("\n", "\r\n") + "   \r\n"  # what a textarea posts, plus stray blanks
        same = web.post(f"/agreements/{fx.id}/revise", data={"csrf_token": csrf_of(page), "text": crlf})
        assert same.status_code == 422
        assert "Mikään ei muuttunut" in same.text and "mitätöity" in same.text
    with Session(ctx.db.engine) as session:
        after = (_live(session, Decision), _live(session, Signature), session.get(Case, fx.id).version)
        versions = session.execute(select(func.count()).select_from(DocumentVersion).where(
            col(DocumentVersion.case_id) == fx.id)).scalar_one()
        revised_mail = session.execute(select(func.count()).select_from(OutboxMessage).where(
            col(OutboxMessage.template) == "agreement_revised")).scalar_one()
    assert after == before and versions == 1 and revised_mail == 0


def test_the_api_refuses_an_unchanged_text_in_the_callers_language(ctx) -> None:
    fx = create_agreement(ctx, parties=2)
    client = TestClient(create_app(ctx=ctx))
    r = client.put(f"/api/v1/agreements/{fx.id}/document", json={"text": DOCUMENT.replace("\n", "\r\n")},
                   headers={**fx.coordinator.headers, "Accept-Language": "sv"})
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["message_id"] == "agreement.error.text_unchanged" and "Ingenting ändrades" in body["message"]
    assert body["field"] == "text"


def test_the_hash_is_the_hash_of_the_text_one_can_download(ctx) -> None:
    fx = create_agreement(ctx, parties=2)
    client = TestClient(create_app(ctx=ctx))
    with client:
        new = "# Pirkanmaan puitesopimus\r\n\r\nUusi 3 §.\r\n\r\n\r\n"
        r = client.put(f"/api/v1/agreements/{fx.id}/document", json={"text": new, "note": "3 § lisätty"},
                       headers=fx.coordinator.headers)
        assert r.status_code == 200, r.text
        shown = r.json()["document_sha256"]
        assert r.json()["document"] == "# Pirkanmaan puitesopimus\n\nUusi 3 §.\n"
        versions = client.get(f"/api/v1/agreements/{fx.id}/versions", headers=fx.coordinator.headers).json()
        assert [(v["number"], v["current"]) for v in versions] == [(1, False), (2, True)]
        assert versions[1]["sha256"] == shown and versions[1]["note"] == "3 § lisätty"
        for v in versions:
            got = client.get(f"/api/v1/agreements/{fx.id}/versions/{v['number']}/text",
                             headers=fx.coordinator.headers)
            assert got.status_code == 200 and got.headers["content-type"].startswith("text/markdown")
            assert hashlib.sha256(got.content).hexdigest() == v["sha256"]
            assert "Repr-Digest" in got.headers
        party = fx.signatories[fx.keys[0]][0]
        assert client.get(f"/api/v1/agreements/{fx.id}/versions/9/text", headers=party.headers).status_code == 404


def test_a_revision_tells_every_party_whose_decision_or_signature_it_voids_with_the_note(ctx) -> None:
    fx = create_agreement(ctx, parties=5)
    client = TestClient(create_app(ctx=ctx))
    with client:
        _act(client, fx, fx.keys[:2])  # signed: these were skipped before the fix
        _act(client, fx, fx.keys[2:3], sign=False)  # approved, not signed
        r = client.put(f"/api/v1/agreements/{fx.id}/document",
                       json={"text": DOCUMENT + "\nUusi 3 §.\n", "note": "Lisättiin 3 § rahoituksesta."},
                       headers=fx.coordinator.headers)
        assert r.status_code == 200, r.text
    render_mail(ctx)
    with Session(ctx.db.engine) as session:
        mails = session.execute(select(OutboxMessage).where(
            col(OutboxMessage.template) == "agreement_revised")).scalars().all()
        told = {m.person_id for m in mails}
        assert _live(session, Decision) == 0 and _live(session, Signature) == 0
    everyone = {fx.signatories[k][0].id for k in fx.keys}
    assert told == everyone
    for mail in mails:
        assert "Lisättiin 3 § rahoituksesta." in mail.text and "Lisättiin 3 § rahoituksesta." in mail.html
        assert "versio 2" in mail.text
