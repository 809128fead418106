"""Passwords of coordinators and administrators: a reset link by email (opening it changes nothing, it works once
and for an hour), `vuosikello people set-password`, and every session ending when the password changes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select
from sqlmodel import Session, col

from api.web.auth import check_password, set_password
from api.web.models import WebSession
from engine.models import OutboxMessage
from tests.support.builders import make_user
from tests.web.support import csrf_of, web_client

ROOT = Path(__file__).resolve().parents[2]


def _reset_link(ctx, person_id: int) -> str:  # type: ignore[no-untyped-def]
    with Session(ctx.db.engine) as session:
        mail = session.execute(select(OutboxMessage).where(
            col(OutboxMessage.template) == "password_reset", col(OutboxMessage.person_id) == person_id)
            .order_by(col(OutboxMessage.id).desc())).scalars().first()
    assert mail is not None
    found = re.search(r"http://testserver(/signin/reset/[A-Za-z0-9_-]+)", mail.text)
    assert found, mail.text
    return found.group(1)


def test_a_reset_link_sets_a_new_password_once_and_ends_every_other_session(ctx, clock) -> None:
    coordinator = make_user(ctx, org_key="regional_council:06", roles="coordinator", email="koord@pirkanmaa.fi",
                            language="sv")
    with Session(ctx.db.write_engine) as session:
        set_password(session, coordinator.id, "vanha-hyva-salasana")
        session.commit()
    with web_client(ctx) as other, web_client(ctx) as client:
        token = csrf_of(other.get("/signin").text)
        assert other.post("/signin/password", data={"csrf_token": token, "email": "koord@pirkanmaa.fi",
                                                    "password": "vanha-hyva-salasana"}).status_code == 303
        assert other.get("/tasks").status_code == 200  # signed in elsewhere
        page = client.get("/signin/reset")
        assert page.status_code == 200 and 'name="email"' in page.text
        sent = client.post("/signin/reset", data={"csrf_token": csrf_of(page.text), "email": "KOORD@pirkanmaa.fi"})
        unknown = client.post("/signin/reset", data={"csrf_token": csrf_of(page.text), "email": "ei@ketaan.fi"})
        assert sent.status_code == unknown.status_code == 200
        assert sent.text.count("linkki") == unknown.text.count("linkki")  # the same answer either way
        link = _reset_link(ctx, coordinator.id)
        form = client.get(link)  # what a mail scanner does: nothing changes
        assert form.status_code == 200 and 'autocomplete="new-password"' in form.text
        assert client.get(link).status_code == 200  # still valid after two GETs
        short = client.post(link, data={"csrf_token": csrf_of(form.text), "password": "lyhyt", "again": "lyhyt"})
        assert short.status_code == 422 and 'href="#password"' in short.text and 'value="lyhyt"' not in short.text
        differ = client.post(link, data={"csrf_token": csrf_of(form.text), "password": "uusi-pitka-salasana",
                                         "again": "uusi-pitka-salasanA"})
        assert differ.status_code == 422 and 'href="#again"' in differ.text
        done = client.post(link, data={"csrf_token": csrf_of(form.text), "password": "uusi-pitka-salasana",
                                       "again": "uusi-pitka-salasana"})
        assert done.status_code == 303 and done.headers["location"] == "/tasks"
        assert client.get("/tasks").status_code == 200  # this browser is signed in afresh
        assert other.get("/tasks").status_code in (302, 303, 401)  # the other session ended
        again = client.get(link)
        assert again.status_code == 410  # used up
        reuse = client.post(link, data={"csrf_token": csrf_of(again.text), "password": "kolmas-pitka-salasana",
                                        "again": "kolmas-pitka-salasana"})
        assert reuse.status_code == 410
    with Session(ctx.db.write_engine) as session:
        assert check_password(session, "koord@pirkanmaa.fi", "uusi-pitka-salasana") is not None
        assert check_password(session, "koord@pirkanmaa.fi", "vanha-hyva-salasana") is None
        mail = session.execute(select(OutboxMessage).where(col(OutboxMessage.template) == "password_reset")
                               ).scalars().all()
        assert len(mail) == 1 and mail[0].language == "sv" and "lösenord" in mail[0].subject


def test_a_reset_link_expires_after_an_hour_and_signatories_get_none(ctx, clock) -> None:
    admin = make_user(ctx, roles="admin", email="yllapito@vuosikello.fi")
    signatory = make_user(ctx, org_key="municipality:837", email="allekirjoittaja@tampere.fi")
    with web_client(ctx) as client:
        token = csrf_of(client.get("/signin/reset").text)
        client.post("/signin/reset", data={"csrf_token": token, "email": "allekirjoittaja@tampere.fi"})
        with Session(ctx.db.engine) as session:  # a signatory signs in by link only: no reset mail
            assert session.execute(select(OutboxMessage).where(
                col(OutboxMessage.person_id) == signatory.id)).first() is None
        client.post("/signin/reset", data={"csrf_token": token, "email": "yllapito@vuosikello.fi"})
        link = _reset_link(ctx, admin.id)
        clock.advance(timedelta(minutes=61))
        late = client.get(link)
        assert late.status_code == 410 and 'href="/signin/reset"' in late.text


def test_the_cli_sets_a_password_and_ends_the_persons_sessions(ctx, database) -> None:
    coordinator = make_user(ctx, org_key="regional_council:06", roles="coordinator", email="cli@pirkanmaa.fi")
    with web_client(ctx) as client:
        from tests.web.support import sign_in

        sign_in(client, ctx, coordinator.id)
        env = {**os.environ, "VUOSIKELLO_DATABASE_URL": database.url, "VUOSIKELLO_ENVIRONMENT": "test"}
        done = subprocess.run([sys.executable, "-m", "api.cli", "people", "set-password", "cli@pirkanmaa.fi",
                               "--password-stdin"], input="komentorivin-salasana\n", capture_output=True, text=True,
                              cwd=ROOT, env=env, timeout=120)
        assert done.returncode == 0, done.stderr
        assert "1 session(s) ended" in done.stdout
        assert "komentorivin-salasana" not in done.stdout + done.stderr
        assert client.get("/tasks").status_code in (302, 303, 401)
        short = subprocess.run([sys.executable, "-m", "api.cli", "people", "set-password", "cli@pirkanmaa.fi",
                                "--password-stdin"], input="lyhyt\n", capture_output=True, text=True, cwd=ROOT,
                               env=env, timeout=120)
        assert short.returncode == 2 and "password" in short.stderr
    with Session(ctx.db.engine) as session:
        assert check_password(session, "cli@pirkanmaa.fi", "komentorivin-salasana") is not None
        open_sessions = session.execute(select(WebSession).where(col(WebSession.person_id) == coordinator.id,
                                                                 col(WebSession.ended_at).is_(None))).all()
        assert open_sessions == []
