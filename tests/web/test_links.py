"""Sign-in link tokens: randomness, hashing, binding, expiry and single use, also under concurrency."""

from __future__ import annotations

import threading
from datetime import date, timedelta

import pytest
from sqlalchemy import select
from sqlmodel import Session

from engine.calendar import deadline_instant
from engine.directory import hash_token
from engine.errors import InvalidInput
from engine.links import (
    MIN_VALIDITY,
    LinkStatus,
    SignInLink,
    check_link,
    consume_link,
    issue_link,
    link_expiry,
    link_url,
)
from tests.support.builders import create_agreement
from tests.web.support import new_link


def test_token_is_random_stored_as_hash_and_bound_to_person_and_case(ctx) -> None:
    fx = create_agreement(ctx, parties=1, circulate=False)  # circulating emails links of its own
    user = fx.signatories[fx.keys[0]][0]
    tokens = {new_link(ctx, user.id, fx.id) for _ in range(20)}
    assert len(tokens) == 20
    assert all(len(t) >= 43 for t in tokens)  # 32 random bytes, base64url: 256 bits
    with Session(ctx.db.engine) as session:
        rows = session.execute(select(SignInLink)).scalars().all()
    stored = {r.token_hash for r in rows}
    assert stored == {hash_token(t) for t in tokens}
    assert not stored & tokens  # the plaintext is nowhere
    assert {(r.person_id, r.case_id) for r in rows} == {(user.id, fx.id)}
    assert link_url("https://vuosikello.fi/", "abc") == "https://vuosikello.fi/link/abc"


def test_a_link_works_once_and_not_after_it_expires(ctx) -> None:
    fx = create_agreement(ctx, parties=1)
    user = fx.signatories[fx.keys[0]][0]
    token = new_link(ctx, user.id, fx.id, valid_for=timedelta(hours=1))
    later = new_link(ctx, user.id, fx.id, valid_for=timedelta(hours=1))
    now = ctx.clock.now()
    with Session(ctx.db.write_engine) as session:
        assert check_link(session, token, now).status is LinkStatus.VALID
        assert consume_link(session, token, now).status is LinkStatus.VALID
        assert consume_link(session, token, now).status is LinkStatus.USED
        assert check_link(session, "not-a-token", now).status is LinkStatus.UNKNOWN
        assert consume_link(session, later, now + timedelta(hours=1)).status is LinkStatus.EXPIRED
        session.commit()


def test_expiry_is_the_deadline_or_a_week_when_it_has_passed(ctx) -> None:
    now = ctx.clock.now()  # Monday 2.3.2026
    assert link_expiry(date(2026, 6, 19), now) == deadline_instant(date(2026, 6, 19))
    assert link_expiry(date(2026, 2, 27), now) == now + MIN_VALIDITY
    with Session(ctx.db.write_engine) as session, pytest.raises(InvalidInput) as err:
        issue_link(session, person_id=1, case_id=None, expires_at=now, now=now)
    assert err.value.field == "expires_at"


def test_concurrent_uses_of_one_link_let_exactly_one_through(ctx) -> None:
    fx = create_agreement(ctx, parties=1)
    token = new_link(ctx, fx.signatories[fx.keys[0]][0].id, fx.id)
    results: list[LinkStatus] = []
    barrier = threading.Barrier(6)

    def use() -> None:
        barrier.wait()
        with Session(ctx.db.write_engine) as session:
            results.append(consume_link(session, token, ctx.clock.now()).status)
            session.commit()

    threads = [threading.Thread(target=use) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results).count(LinkStatus.VALID) == 1
    assert results.count(LinkStatus.USED) == 5
