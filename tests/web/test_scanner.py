"""Mail scanners follow links: 50 cookieless GET and HEAD requests on an emailed link change nothing."""

from __future__ import annotations

import re

from sqlalchemy import func, select
from sqlmodel import Session

from api.web.models import SignInFailure, WebSession
from engine.links import SignInLink
from engine.models import OutboxMessage
from tests.support.builders import create_agreement, render_mail
from tests.web.support import csrf_of, web_client


def test_fifty_scanner_requests_consume_nothing_and_sign_in_nobody(ctx) -> None:
    fx = create_agreement(ctx, parties=1)  # circulating queues the email with the link
    signer = fx.signatories[fx.keys[0]][0]
    render_mail(ctx)
    with Session(ctx.db.engine) as session:
        mail = session.execute(select(OutboxMessage).where(OutboxMessage.person_id == signer.id)).scalars().first()
    assert mail is not None
    path = re.search(r"https?://[^/\s]+(/link/[A-Za-z0-9_-]+)", mail.text).group(1)
    with web_client(ctx) as client:
        for i in range(50):
            client.cookies.clear()
            r = client.request("HEAD" if i % 2 else "GET", path)
            assert r.status_code == 200
            assert "vk_session" not in r.headers.get("set-cookie", "")
        with Session(ctx.db.engine) as session:
            assert session.execute(select(func.count()).select_from(WebSession)).scalar_one() == 0
            assert session.execute(select(func.count()).select_from(SignInLink).where(
                SignInLink.used_at.is_not(None))).scalar_one() == 0
            assert session.execute(select(func.count()).select_from(SignInFailure)).scalar_one() == 0
        client.cookies.clear()
        page = client.get(path)  # the person still gets in with the button
        r = client.post(path, data={"csrf_token": csrf_of(page.text)})
        assert r.status_code == 303 and client.get("/tasks").status_code == 200
