"""The council-term review from the agreement page: start, confirm unchanged, revise, terminate; who may do it.

The pages are driven through a test client over the whole app (CSRF, sessions, the request's unit of work); the
browser walk and axe-core are in test_review_browser.py.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlmodel import Session, col

from engine.models import Case, Event
from tests.support.builders import AgreementFixture, create_agreement, make_user
from tests.web.scenario import approve_and_sign, set_language
from tests.web.support import csrf_of, sign_in, web_client


def in_force(ctx, parties: int = 2) -> AgreementFixture:  # type: ignore[no-untyped-def]
    """Return an agreement every party approved and signed (it entered into force on 2.3.2026)."""
    fx = create_agreement(ctx, parties=parties)
    for key in fx.keys:
        approve_and_sign(ctx, fx, key)
    return fx


def _state(ctx, case_id: int) -> str:  # type: ignore[no-untyped-def]
    with Session(ctx.db.engine) as session:
        case = session.get(Case, case_id)
        assert case is not None
        return case.state


def _reviews(ctx, agreement_id: int) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    """Return (term start, state) of an agreement's reviews, oldest first."""
    with Session(ctx.db.engine) as session:
        rows = session.execute(select(Case).where(col(Case.workflow) == "review").order_by(col(Case.id))).scalars()
        return [(c.data["term_start"], c.state) for c in rows if c.data.get("agreement_id") == agreement_id]


def _written(ctx) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """Count cases and events: a refused form changes neither."""
    with Session(ctx.db.engine) as session:
        return (session.execute(select(func.count()).select_from(Case)).scalar_one(),
                session.execute(select(func.count()).select_from(Event)).scalar_one())


def test_a_coordinator_starts_the_review_from_the_agreement_page_and_confirms_it_unchanged(ctx) -> None:
    fx = in_force(ctx)
    with web_client(ctx) as client:
        sign_in(client, ctx, fx.coordinator.id)
        page = client.get(f"/agreements/{fx.id}").text
        panel = page.split('id="coordinator-heading"')[1].split("</section>")[0]
        assert "ei avoimia toimia" not in panel and "tarkistetaan kerran valtuustokaudessa" in panel
        assert f'href="/agreements/{fx.id}/review#start-heading"' in panel
        review = client.get(f"/agreements/{fx.id}/review").text
        assert "<h1>Valtuustokauden tarkistus: Pirkanmaan puitesopimus</h1>" in review
        assert "2025–2029" in review and f'action="/agreements/{fx.id}/review/start"' in review
        late = client.post(f"/agreements/{fx.id}/review/start",
                           data={"csrf_token": csrf_of(review), "deadline": "1.6.2030"})
        assert late.status_code == 422 and 'href="#start-deadline"' in late.text
        assert 'value="1.6.2030"' in late.text  # what was typed is kept
        assert "valtuustokauden lopun välillä" in late.text
        started = client.post(f"/agreements/{fx.id}/review/start",
                              data={"csrf_token": csrf_of(review), "deadline": "28.11.2026"})
        assert started.status_code == 303 and started.headers["location"].endswith("/review?notice=started")
        assert _state(ctx, fx.id) == "under_review"
        review = client.get(started.headers["location"]).text
        assert "Tarkistus on aloitettu" in review and "Avoinna" in review
        # 28.11.2026 is a Saturday: the deadline in effect is Monday, the date asked is shown beside it
        assert "ma 30.11.2026" in review and "pyydetty la 28.11.2026" in review
        assert f'action="/agreements/{fx.id}/review/start"' not in review  # this term has its review
        api = client.get(f"/api/v1/agreements/{fx.id}/reviews", headers=fx.coordinator.headers).json()
        assert [(r["deadline"], r["effective_deadline"]) for r in api if r["term_start"] == "2025-06-01"] == [
            ("2026-11-28", "2026-11-30")]  # the API names the same date as the page
        page = client.get(f"/agreements/{fx.id}").text
        panel = page.split('id="coordinator-heading"')[1].split("</section>")[0]
        assert "ei avoimia toimia" not in panel and "2025–2029 tarkistus on avoinna" in panel
        for target in ("review#confirm-heading", "revise", "review#terminate-heading"):
            assert f'href="/agreements/{fx.id}/{target}"' in panel, target
        bad = client.post(f"/agreements/{fx.id}/review/confirm", data={
            "csrf_token": csrf_of(review), "review_id": _review_id(review), "minutes_url": "ei osoite",
            "note": "Neuvoteltu 12.11.2026"})
        assert bad.status_code == 422 and 'href="#confirm-minutes_url"' in bad.text
        assert "Neuvoteltu 12.11.2026" in bad.text
        done = client.post(f"/agreements/{fx.id}/review/confirm", data={
            "csrf_token": csrf_of(review), "review_id": _review_id(review), "note": "Neuvoteltu 12.11.2026",
            "minutes_url": "https://pirkanmaa.fi/poytakirja/12"})
        assert done.status_code == 303
        after = client.get(done.headers["location"]).text
        assert "vahvistettu ennallaan" in after and "Vahvistettu ennallaan" in after
    assert _state(ctx, fx.id) == "in_force"
    # this term confirmed, the next term's review already waits (scheduled when it entered into force)
    assert _reviews(ctx, fx.id) == [("2029-06-01", "scheduled"), ("2025-06-01", "confirmed_unchanged")]


def _review_id(html: str) -> str:
    return html.split('name="review_id" value="')[1].split('"')[0]


def test_terminating_needs_a_reason_and_an_end_date_and_cancels_the_reviews(ctx) -> None:
    fx = in_force(ctx)
    with web_client(ctx) as client:
        sign_in(client, ctx, fx.coordinator.id)
        review = client.get(f"/agreements/{fx.id}/review").text
        client.post(f"/agreements/{fx.id}/review/start", data={"csrf_token": csrf_of(review), "deadline": ""})
        review = client.get(f"/agreements/{fx.id}/review").text
        assert "Avoinna" in review and "to 31.5.2029" in review  # no deadline given: the term's end
        token = csrf_of(review)
        empty = client.post(f"/agreements/{fx.id}/review/terminate", data={"csrf_token": token})
        assert empty.status_code == 422
        assert 'href="#terminate-reason"' in empty.text and 'href="#terminate-end_date"' in empty.text
        past = client.post(f"/agreements/{fx.id}/review/terminate", data={
            "csrf_token": token, "reason": "Yhteistyö siirtyy uuteen sopimukseen", "end_date": "1.3.2026"})
        assert past.status_code == 422 and "menneisyydessä" in past.text
        assert "Yhteistyö siirtyy uuteen sopimukseen" in past.text  # the reason typed is kept
        assert _state(ctx, fx.id) == "under_review"
        ended = client.post(f"/agreements/{fx.id}/review/terminate", data={
            "csrf_token": token, "reason": "Yhteistyö siirtyy uuteen sopimukseen", "end_date": "31.12.2026"})
        assert ended.status_code == 303
        page = client.get(ended.headers["location"]).text
        assert "Puitesopimus on irtisanottu" in page and "Peruttu" in page
        agreement = client.get(f"/agreements/{fx.id}").text
        assert "Päättynyt" in agreement and "syy: Yhteistyö siirtyy uuteen sopimukseen" in agreement
    assert _state(ctx, fx.id) == "terminated"
    assert {state for _term, state in _reviews(ctx, fx.id)} == {"cancelled"}


def test_a_revision_during_the_review_ends_it_and_asks_every_party_again(ctx) -> None:
    fx = in_force(ctx)
    with web_client(ctx) as client:
        sign_in(client, ctx, fx.coordinator.id)
        review = client.get(f"/agreements/{fx.id}/review").text
        client.post(f"/agreements/{fx.id}/review/start", data={"csrf_token": csrf_of(review)})
        review = client.get(f"/agreements/{fx.id}/review").text
        assert f'href="/agreements/{fx.id}/revise"' in review
        form = client.get(f"/agreements/{fx.id}/revise").text
        r = client.post(f"/agreements/{fx.id}/revise", data={
            "csrf_token": csrf_of(form), "text": "# Pirkanmaan puitesopimus\n\nTarkistettu 2026.",
            "note": "Valtuustokauden tarkistus 2026", "version": form.split('name="version" value="')[1].split('"')[0]})
        assert r.status_code == 303, r.text
    assert _state(ctx, fx.id) == "circulating"
    assert [s for t, s in _reviews(ctx, fx.id) if t == "2025-06-01"] == ["revision"]


def test_the_emailed_review_link_lands_on_the_review_page_in_the_persons_language(ctx) -> None:
    fx = in_force(ctx)
    set_language(ctx, fx.coordinator.id, "sv")
    with web_client(ctx) as client:
        sign_in(client, ctx, fx.coordinator.id)
        review_id = next(iter(_review_ids(ctx, fx.id)))
        r = client.get(f"/cases/{review_id}")
        assert r.status_code == 303 and r.headers["location"] == f"/agreements/{fx.id}/review"
        page = client.get(r.headers["location"]).text
        assert '<html lang="sv">' in page and "Översyn under fullmäktigeperioden" in page
        assert "Planerad" in page and "Påbörja översynen" in page
    set_language(ctx, fx.coordinator.id, "en")
    with web_client(ctx) as client:
        sign_in(client, ctx, fx.coordinator.id)
        page = client.get(f"/agreements/{fx.id}/review").text
        assert "Council-term review" in page and "Terminate the framework agreement" in page


def _review_ids(ctx, agreement_id: int) -> list[int]:  # type: ignore[no-untyped-def]
    with Session(ctx.db.engine) as session:
        rows = session.execute(select(Case).where(col(Case.workflow) == "review")).scalars()
        return [c.id or 0 for c in rows if c.data.get("agreement_id") == agreement_id]


def test_a_plain_signatory_and_another_organisation_get_403_on_every_review_form_and_nothing_is_written(ctx) -> None:
    fx = in_force(ctx)
    signatory = fx.signatories[fx.keys[0]][0]
    outsider = make_user(ctx, org_key="regional_council:02", roles="coordinator")
    outsider_signatory = make_user(ctx, org_key="municipality:091")
    forms = {"start": {"deadline": ""}, "confirm": {"note": "x"},
             "terminate": {"reason": "Ei enää tarpeen", "end_date": "31.12.2026"}}
    with web_client(ctx) as client:
        sign_in(client, ctx, fx.coordinator.id)
        token = csrf_of(client.get(f"/agreements/{fx.id}/review").text)
        client.post(f"/agreements/{fx.id}/review/start", data={"csrf_token": token})  # an open review to aim at
        review_id = str(max(_review_ids(ctx, fx.id)))
        before = _written(ctx)
        for person in (signatory, outsider, outsider_signatory):
            sign_in(client, ctx, person.id)
            token = csrf_of(client.get("/tasks").text)
            for name, data in forms.items():
                r = client.post(f"/agreements/{fx.id}/review/{name}",
                                data={**data, "csrf_token": token, "review_id": review_id})
                assert r.status_code == 403, (person.person.name, name, r.status_code)
                assert "Vuosikello" in r.text and 'href="/tasks"' in r.text  # a page, with the navigation
        sign_in(client, ctx, signatory.id)
        page = client.get(f"/agreements/{fx.id}/review")
        assert page.status_code == 200 and "/review/confirm" not in page.text  # a party reads, without forms
        sign_in(client, ctx, outsider.id)
        assert client.get(f"/agreements/{fx.id}/review").status_code == 404  # not even seen
    assert _written(ctx) == before
    assert _state(ctx, fx.id) == "under_review"


def test_every_review_form_refuses_a_post_without_the_csrf_token(ctx) -> None:
    fx = in_force(ctx)
    with web_client(ctx) as client:
        sign_in(client, ctx, fx.coordinator.id)
        before = _written(ctx)
        for name, data in {"start": {}, "confirm": {"review_id": "1"},
                           "terminate": {"reason": "x", "end_date": "31.12.2026"}}.items():
            missing = client.post(f"/agreements/{fx.id}/review/{name}", data=data)
            wrong = client.post(f"/agreements/{fx.id}/review/{name}", data={**data, "csrf_token": "forged"})
            assert missing.status_code == 403 and wrong.status_code == 403, name
        assert _written(ctx) == before
    assert _state(ctx, fx.id) == "in_force"


def test_the_review_page_of_an_agreement_not_in_force_offers_nothing(ctx) -> None:
    fx = create_agreement(ctx, parties=2)  # circulating
    with web_client(ctx) as client:
        sign_in(client, ctx, fx.coordinator.id)
        page = client.get(f"/agreements/{fx.id}/review").text
        assert "Tarkistuksessa ei ole nyt avoimia toimia" in page and "<form method=\"post\" action" not in \
            page.split("<main")[1]
        token = csrf_of(page)
        r = client.post(f"/agreements/{fx.id}/review/start", data={"csrf_token": token})
        assert r.status_code == 403
    assert _reviews(ctx, fx.id) == []  # nothing scheduled for an agreement not in force
