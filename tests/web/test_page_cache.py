"""The agreement page's shared part (api.web.views: the read, the parties' rows and table) kept in api.readcache's
cache: keyed so that nobody sees another's view, and never older than what it shows (issue 11)."""

from __future__ import annotations

import re
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlmodel import Session

from api.context import AppContext
from api.readcache import BodyCache
from engine.calendar import HELSINKI
from engine.models import Organisation
from tests.support.builders import create_agreement, make_user, pirkanmaa_keys
from tests.web.support import csrf_of, sign_in, web_client
from workflows.agreement import service
from workflows.agreement.schemas import DecisionIn

OVERDUE = "Määräaika ylittynyt"


def _table(html: str) -> str:
    """Return the parties' progress section of an agreement page."""
    found = re.search(r'<section aria-labelledby="parties-heading">.*?</section>', html, re.S)
    assert found, "the page has no parties' table"
    return found.group(0)


def _empty_cache(client: TestClient) -> None:
    """Forget what the start-up warm-up kept (it reads the newest agreement's page as two of its people)."""
    client.app.state.agreement_reads.cache = BodyCache()  # type: ignore[attr-defined]


def _page_entries(client: TestClient) -> int:
    cache = client.app.state.agreement_reads.cache  # type: ignore[attr-defined]
    return sum(1 for key in cache._entries if key[0] == "agreement-page")  # noqa: SLF001 - what the test is about


def _rename(ctx: AppContext, key: str, **names: str) -> None:
    with Session(ctx.db.write_engine) as session:
        session.execute(update(Organisation).where(Organisation.key == key).values(**names))  # type: ignore[arg-type]
        session.commit()


def test_each_language_gets_its_own_names_and_a_renamed_party_shows_at_once(ctx: AppContext) -> None:
    fx = create_agreement(ctx, parties=2)
    key = fx.keys[0]
    _rename(ctx, key, name_fi="Orivesi FI", name_sv="Orivesi SV")
    fi, sv = fx.signatories[key][0], make_user(ctx, org_key=key, language="sv")
    url = f"/agreements/{fx.id}"
    with web_client(ctx) as client:  # one app, one cache: both readers are served by the same process
        sign_in(client, ctx, fi.id)
        assert "Orivesi FI" in _table(client.get(url).text)
        sign_in(client, ctx, sv.id)
        sv_table = _table(client.get(url).text)
        assert "Orivesi SV" in sv_table and "Orivesi FI" not in sv_table
        assert "Avtalsparternas läge" in sv_table
        _rename(ctx, key, name_sv="Orivesi SV 2")  # nothing else changes: the fingerprint holds the Swedish name
        assert "Orivesi SV 2" in _table(client.get(url).text)
        sign_in(client, ctx, fi.id)
        assert "Orivesi FI" in _table(client.get(url).text)


def test_a_decision_shows_on_the_next_view_of_a_cached_page(ctx: AppContext) -> None:
    fx = create_agreement(ctx, parties=2)
    key, other = fx.keys
    me = fx.signatories[key][0]
    with web_client(ctx) as client:
        sign_in(client, ctx, me.id)
        assert "§ 77" not in client.get(f"/agreements/{fx.id}").text
        assert "§ 77" not in client.get(f"/agreements/{fx.id}").text  # from the cache
        body = DecisionIn(outcome="approved", body="Kunnanhallitus", decided_on=ctx.clock.now().date(),
                          section="§ 77")
        signer = fx.signatories[other][0].actor
        ctx.engine.run(lambda uow: service.decide(uow, fx.id, other, body, signer))
        assert "§ 77" in _table(client.get(f"/agreements/{fx.id}").text)


def test_the_day_turns_a_party_overdue_with_nothing_changed_in_the_database(ctx: AppContext) -> None:
    today = ctx.clock.now().astimezone(HELSINKI).date()
    fx = create_agreement(ctx, parties=2, deadline=today + timedelta(days=2))
    me = fx.signatories[fx.keys[0]][0]
    with web_client(ctx) as client:
        sign_in(client, ctx, me.id)
        assert OVERDUE not in _table(client.get(f"/agreements/{fx.id}").text)
        ctx.clock.advance(timedelta(days=10))
        sign_in(client, ctx, me.id)  # the session has idled out meanwhile
        assert OVERDUE in _table(client.get(f"/agreements/{fx.id}").text)


def test_a_cached_page_is_still_refused_to_a_stranger_and_kept_apart_for_its_coordinator(ctx: AppContext) -> None:
    fx = create_agreement(ctx, parties=2)
    party = fx.signatories[fx.keys[0]][0]
    stranger = make_user(ctx, org_key=pirkanmaa_keys(ctx)[5])
    with web_client(ctx) as client:
        _empty_cache(client)
        sign_in(client, ctx, party.id)
        page = client.get(f"/agreements/{fx.id}").text
        assert 'id="coordinator-heading"' not in page
        assert csrf_of(page) not in _table(page)  # the kept part holds nothing of the viewer's own
        sign_in(client, ctx, stranger.id)
        assert client.get(f"/agreements/{fx.id}").status_code == 404
        sign_in(client, ctx, fx.coordinator.id)
        page = client.get(f"/agreements/{fx.id}").text
        assert 'id="coordinator-heading"' in page
        assert _page_entries(client) == 2  # SHARED (the party) and FULL (the coordinator): one each


def test_an_error_page_drawn_in_a_write_transaction_keeps_nothing(ctx: AppContext) -> None:
    fx = create_agreement(ctx, parties=2)
    key = fx.keys[0]
    me = fx.signatories[key][0]
    with web_client(ctx) as client:
        _empty_cache(client)
        sign_in(client, ctx, me.id)
        page = client.get("/tasks").text
        bad = client.post(f"/agreements/{fx.id}/decision",
                          data={"party": key, "outcome": "approved", "body": "", "csrf_token": csrf_of(page)})
        assert bad.status_code == 422 and 'id="parties-heading"' in bad.text
        assert _page_entries(client) == 0
        client.get(f"/agreements/{fx.id}")
        assert _page_entries(client) == 1


def test_the_hot_pages_send_a_signed_out_browser_to_sign_in(ctx: AppContext) -> None:
    fx = create_agreement(ctx, parties=1)
    with web_client(ctx) as client:
        for path in ("/tasks", f"/agreements/{fx.id}"):
            r = client.get(path)
            assert r.status_code == 303 and r.headers["location"].startswith("/signin?next=")


def test_the_start_keeps_the_open_agreements_pages_not_only_the_newest(ctx: AppContext) -> None:
    draft = create_agreement(ctx, parties=1, circulate=False)  # nobody is asked yet
    older = create_agreement(ctx, parties=2, coordinator=draft.coordinator)
    newer = create_agreement(ctx, parties=1, coordinator=draft.coordinator)  # the router's warm-up reads this one
    with web_client(ctx) as client:  # the lifespan's warm-up has run
        cache = client.app.state.agreement_reads.cache  # type: ignore[attr-defined]
        kept = {key[1] for key in cache._entries if key[0] == "agreement-page"}  # noqa: SLF001
        assert {older.id, newer.id} <= kept and draft.id not in kept
        hits = cache.hits
        sign_in(client, ctx, older.signatories[older.keys[0]][0].id)
        assert client.get(f"/agreements/{older.id}").status_code == 200
        assert cache.hits == hits + 1  # its first view found what the start kept
