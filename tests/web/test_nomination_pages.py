"""The nomination pages: an organisation proposes (draft, errors per field in fi and sv, double submit), another
organisation is refused with nothing written, CSRF on every new form, and the coordinator closes, decides (40 %),
sends the letter (names and Finnish dates) and replaces a member with the history shown; the requester reads it."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlmodel import Session

from engine.models import Case, Event, OutboxMessage, Person
from tests.support.builders import make_user, org
from tests.support.recurring import create_nomination
from tests.web.support import csrf_of, sign_in, web_client
from workflows.nomination.models import Appointment, Candidate, NominationDecision

A, B = "regional_council:06", "regional_council:02"


def _setup(ctx):  # type: ignore[no-untyped-def]
    nid, coordinator = create_nomination(ctx, seats=1, asked={"organisations": [A, B]})
    director_a = make_user(ctx, org_key=A, name="Anna Aaltonen")
    director_b = make_user(ctx, org_key=B, name="Bertta Berg")
    with Session(ctx.db.engine) as session:
        children = {c.data["organisation_key"]: c.id for c in session.execute(
            select(Case).where(Case.parent_id == nid)).scalars()}
    return nid, coordinator, director_a, director_b, children


def _full(token: str, version: str = "0") -> dict[str, str]:
    return {"csrf_token": token, "version": version, "action": "submit",
            "s1-member-1-name": "Liisa Laine", "s1-member-1-gender": "woman", "s1-member-1-email": "liisa@pirkanmaa.fi",
            "s1-member-2-name": "Matti Mäki", "s1-member-2-gender": "man", "s1-member-2-email": "matti@pirkanmaa.fi",
            "s1-deputy-1-name": "Sanna Salo", "s1-deputy-1-gender": "woman",
            "s1-deputy-2-name": "Pekka Puro", "s1-deputy-2-gender": "man"}


def _count(ctx, model, *where) -> int:  # type: ignore[no-untyped-def]
    with Session(ctx.db.engine) as session:
        return int(session.execute(select(func.count()).select_from(model).where(*where)).scalar_one())


def test_an_organisation_proposes_from_its_link_with_a_draft_errors_and_a_double_submit(ctx) -> None:
    nid, _coordinator, director_a, _b, children = _setup(ctx)
    pid = children[A]
    url = f"/nominations/{nid}/proposals/{pid}"
    with web_client(ctx) as client:
        assert sign_in(client, ctx, director_a.id, pid) == f"/cases/{pid}"
        assert client.get(f"/cases/{pid}").headers["location"] == url
        page = client.get(url).text
        assert "Ehdotus: Pirkanmaan liitto" in page and "Paikka 1, varajäsen" in page
        token = csrf_of(page)
        half = {"csrf_token": token, "version": "0", "action": "submit",
                "s1-member-1-name": "Liisa Laine", "s1-member-1-gender": "woman",
                "s1-member-2-name": "Matti Mäki", "s1-member-2-email": "ei-osoite"}
        bad = client.post(url, data=half)
        assert bad.status_code == 422
        assert 'href="#s1-member-2-gender"' in bad.text and "Valitse sukupuoli" in bad.text
        assert 'href="#s1-member-2-email"' in bad.text and 'value="ei-osoite"' in bad.text  # what was typed is kept
        pairs = client.post(url, data={**half, "s1-member-2-gender": "man", "s1-member-2-email": ""})
        assert pairs.status_code == 422 and 'href="#s1-deputy"' in pairs.text
        assert "Paikka 1, varajäsen: ketään ei ole ehdotettu" in pairs.text
        draft = client.post(url, data={**half, "action": "draft"})
        assert draft.status_code == 303 and draft.headers["location"].endswith("notice=draft")
        shown = client.get(draft.headers["location"]).text
        assert "Luonnos on tallennettu" in shown and 'value="Liisa Laine"' in shown and "ei-osoite" in shown
        assert _count(ctx, Candidate) == 0
        sent = client.post(url, data=_full(token))
        assert sent.status_code == 303 and sent.headers["location"].endswith("notice=proposed")
        again = client.post(url, data=_full(token))  # the same form sent twice: kept once
        assert again.status_code == 303 and again.headers["location"].endswith("notice=unchanged")
        page = client.get(url).text
        assert "versio 1" in page and "Liisa Laine" in page and 'value="1"' in page
    assert _count(ctx, Candidate, Candidate.superseded_at.is_(None)) == 4
    assert _count(ctx, Event, Event.case_id == pid, Event.name == "CandidatesProposed") == 1


def test_bad_input_is_named_per_field_in_swedish(ctx) -> None:
    nid, _coordinator, director_a, _b, children = _setup(ctx)
    with Session(ctx.db.write_engine) as session:
        person = session.get(Person, director_a.id)
        person.language = "sv"
        session.add(person)
        session.commit()
    url = f"/nominations/{nid}/proposals/{children[A]}"
    with web_client(ctx) as client:
        sign_in(client, ctx, director_a.id)
        page = client.get(url).text
        assert '<html lang="sv">' in page and "Förslag: " in page
        r = client.post(url, data={"csrf_token": csrf_of(page), "version": "0", "action": "submit",
                                   "s1-member-1-name": "L", "s1-member-1-gender": "woman",
                                   "s1-member-2-name": "Matti Mäki"})
        assert r.status_code == 422 and 'href="#s1-member-1-name"' in r.text and 'href="#s1-member-2-gender"' in r.text
        assert "Välj kön" in r.text and "Plats 1, ledamot, kandidat 2: Kön" in r.text
        r = client.post(url, data={**_full(csrf_of(page)), "s1-deputy-2-name": "", "s1-deputy-2-gender": ""})
        assert r.status_code == 422 and "Plats 1, ersättare: förslaget saknar man" in r.text
    assert _count(ctx, Candidate) == 0


def test_another_organisation_gets_403_on_every_page_and_form_of_a_proposal_and_nothing_is_written(ctx) -> None:
    nid, _coordinator, director_a, director_b, children = _setup(ctx)
    url = f"/nominations/{nid}/proposals/{children[A]}"
    outsider = make_user(ctx, org_key="municipality:091", name="Ulla Ulkopuolinen")
    with web_client(ctx) as client:
        sign_in(client, ctx, director_a.id)
        assert client.post(url, data=_full(csrf_of(client.get(url).text))).status_code == 303
        sign_in(client, ctx, director_b.id)
        own = client.get(f"/nominations/{nid}").text  # B reads the request and finds its own proposal
        assert f"/nominations/{nid}/proposals/{children[B]}" in own and "Liisa Laine" not in own
        token = csrf_of(own)
        page = client.get(url)
        assert page.status_code == 403 and "Tämä on organisaation Pirkanmaan liitto ehdotus" in page.text
        assert "Liisa Laine" not in page.text
        for path, data in ((url, _full(token, "1")), (url, {**_full(token, "1"), "action": "draft"}),
                           (f"{url}/waive", {"csrf_token": token})):
            r = client.post(path, data=data)
            assert r.status_code == 403 and "Pirkanmaan liitto" in r.text, path
        sign_in(client, ctx, outsider.id)
        refused = client.get(f"/nominations/{nid}")
        # not asked: answered as unknown (no existence leaks), with a sentence that says why
        assert refused.status_code == 404 and "ei koske organisaatiotasi" in refused.text
        assert client.get(f"/nominations/{nid}/decision").status_code == 404
        sign_in(client, ctx, director_b.id)  # asked, but not the coordinator: the coordinator's forms are refused
        assert client.get(f"/nominations/{nid}/decision").status_code == 403
    with Session(ctx.db.engine) as session:
        child = session.get(Case, children[A])
        assert child.state == "proposed" and child.data.get("draft") is None
    assert _count(ctx, Event, Event.case_id == children[A]) == 2  # created, proposed: nothing by B


def test_every_new_form_needs_its_csrf_token(ctx) -> None:
    nid, coordinator, director_a, _b, children = _setup(ctx)
    url = f"/nominations/{nid}/proposals/{children[A]}"
    with web_client(ctx) as client:
        sign_in(client, ctx, director_a.id)
        for path, data in ((url, _full("")), (f"{url}/waive", {})):
            data = {k: v for k, v in data.items() if k != "csrf_token"}
            for sent in (data, {**data, "csrf_token": "forged"}):
                r = client.post(path, data=sent)
                assert r.status_code == 403, path
        sign_in(client, ctx, coordinator.id)
        for action in ("close", "decision", "communicate", "replacements"):
            r = client.post(f"/nominations/{nid}/{action}", data={"version": "1", "csrf_token": "forged"})
            assert r.status_code == 403, action
    assert _count(ctx, Candidate) == 0
    with Session(ctx.db.engine) as session:
        assert session.get(Case, nid).state == "requested"


def test_the_coordinator_closes_decides_sends_the_letter_and_replaces_a_member(ctx) -> None:
    nid, coordinator, director_a, director_b, children = _setup(ctx)
    requester = make_user(ctx, org_key="ministry:vm" if _has_org(ctx, "ministry:vm") else None, roles="",
                          email="kirjaamo@vm.example.fi", name="Ylitarkastaja Virtanen")
    a_name = org(ctx, A).name_fi
    with web_client(ctx) as client:
        sign_in(client, ctx, director_a.id)
        url = f"/nominations/{nid}/proposals/{children[A]}"
        assert client.post(url, data=_full(csrf_of(client.get(url).text))).status_code == 303
        sign_in(client, ctx, coordinator.id)
        page = client.get(f"/nominations/{nid}").text
        assert "1/2" in page and "Päätä ehdotusten vastaanotto" in page and "Kirjaa päätös" not in page
        version = page.split('name="version" value="')[1].split('"')[0]
        closed = client.post(f"/nominations/{nid}/close", data={"csrf_token": csrf_of(page), "version": version})
        assert closed.status_code == 303 and closed.headers["location"].endswith("notice=closed")
        page = client.get(f"/nominations/{nid}").text
        assert "Kirjaa päätös" in page and "Päätä ehdotusten vastaanotto" not in page
        form = client.get(f"/nominations/{nid}/decision").text
        token, version = csrf_of(form), form.split('name="version" value="')[1].split('"')[0]
        with Session(ctx.db.engine) as session:
            ids = {c.name: c.id for c in session.execute(select(Candidate)).scalars()}
        decision = {"csrf_token": token, "version": version, "body": "Maakuntajohtajakokous",
                    "meeting_date": "2.3.2026", "section": "§ 5", "seat-1-member": str(ids["Liisa Laine"]),
                    "seat-1-deputy": str(ids["Pekka Puro"])}
        empty = client.post(f"/nominations/{nid}/decision", data={"csrf_token": token, "version": version})
        assert empty.status_code == 422 and 'href="#seat-1-member"' in empty.text and 'href="#section"' in empty.text
        low = client.post(f"/nominations/{nid}/decision", data=decision)
        assert low.status_code == 422 and 'href="#justification"' in low.text
        assert "Jäsenistä naisia on 100 % ja miehiä 0 %" in low.text and 'value="§ 5"' in low.text
        twice = client.post(f"/nominations/{nid}/decision", data={
            **decision, "seat-1-deputy": str(ids["Liisa Laine"]), "justification": "x"})
        assert twice.status_code == 422 and "Liisa Laine on jo valittu paikalle 1" in twice.text
        justified = {**decision, "justification": "Yksi paikka: jäsen ja varajäsen ovat eri sukupuolta."}
        done = client.post(f"/nominations/{nid}/decision", data=justified)
        assert done.status_code == 303 and done.headers["location"].endswith("notice=decided")
        again = client.post(f"/nominations/{nid}/decision", data=justified)
        assert again.status_code == 303 and again.headers["location"].endswith("notice=changed")
        assert _count(ctx, NominationDecision) == 1
        page = client.get(f"/nominations/{nid}").text
        assert "1/2" in page  # the answers count stays right after the request closed the proposals
        assert "Maakuntajohtajakokous 2.3.2026 § 5" in page and "Esikatsele ja lähetä nimeämiskirje" in page
        preview = client.get(f"/nominations/{nid}/letter").text
        assert a_name in preview and "regional_council:06" not in preview and "pe 1.5.2026" in preview
        assert "Mitään ei ole vielä lähetetty" in preview and "kirjaamo@vm.example.fi" in preview
        version = preview.split('name="version" value="')[1].split('"')[0]
        for expected in ("notice=sent", "notice=changed"):  # a double click sends one letter
            r = client.post(f"/nominations/{nid}/communicate", data={"csrf_token": token, "version": version})
            assert r.status_code == 303 and r.headers["location"].endswith(expected)
        assert _count(ctx, OutboxMessage, OutboxMessage.dedupe_key.startswith("nomination-letter:")) == 1
        ctx.clock.set(datetime(2026, 5, 4, 8, 0, tzinfo=UTC))
        sign_in(client, ctx, coordinator.id)  # two months on: a new session
        form = client.get(f"/nominations/{nid}/replacements").text
        token = csrf_of(form)
        version = form.split('name="version" value="')[1].split('"')[0]
        change = {"csrf_token": token, "version": version, "slot": "1-member", "candidate": str(ids["Matti Mäki"]),
                  "effective_date": "1.4.2026", "reason": "Siirtyi toiseen tehtävään",
                  "decision_ref": "Maakuntajohtajakokous 4.5.2026 § 9"}
        early = client.post(f"/nominations/{nid}/replacements", data=change)
        assert early.status_code == 422 and 'href="#effective_date"' in early.text
        assert "Päivämäärän on oltava välillä 1.5.2026" in early.text
        assert "Siirtyi toiseen tehtävään</textarea>" in early.text
        done = client.post(f"/nominations/{nid}/replacements", data={**change, "effective_date": "1.6.2026",
                                                                     "justification": "Yksi paikka."})
        assert done.status_code == 303 and done.headers["location"].endswith("notice=replaced")
        page = client.get(f"/nominations/{nid}").text
        changes = page.split('id="changes-heading"')[1].split("</section>")[0]
        assert "Liisa Laine" in changes and "Matti Mäki" in changes and "Siirtyi toiseen tehtävään" in changes
        assert "su 31.5.2026" in changes and "ma 1.6.2026" in changes
        sign_in(client, ctx, requester.id)
        seen = client.get(f"/nominations/{nid}")
        assert seen.status_code == 200 and "Maakuntajohtajakokous 2.3.2026 § 5" in seen.text
        assert "Matti Mäki" in seen.text and "Päätä ehdotusten vastaanotto" not in seen.text
    with Session(ctx.db.engine) as session:
        rows = session.execute(select(Appointment).order_by(Appointment.id)).scalars().all()
    assert [(a.name, str(a.ends_on)) for a in rows if a.position == "member"] == [
        ("Liisa Laine", "2026-05-31"), ("Matti Mäki", "None")]


def _has_org(ctx, key: str) -> bool:  # type: ignore[no-untyped-def]
    from engine.models import Organisation

    with Session(ctx.db.engine) as session:
        return session.execute(select(Organisation.id).where(Organisation.key == key)).first() is not None


def test_a_proposal_changed_meanwhile_is_refused_with_what_was_typed_kept(ctx) -> None:
    nid, _coordinator, director_a, _b, children = _setup(ctx)
    colleague = make_user(ctx, org_key=A, name="Kalle Kollega")
    url = f"/nominations/{nid}/proposals/{children[A]}"
    with web_client(ctx) as first, web_client(ctx) as second:
        sign_in(first, ctx, director_a.id)
        sign_in(second, ctx, colleague.id)
        stale = csrf_of(first.get(url).text)  # shown at version 0
        assert second.post(url, data=_full(csrf_of(second.get(url).text))).status_code == 303
        mine = {**_full(stale), "s1-member-1-name": "Outi Oma"}
        r = first.post(url, data=mine)
        assert r.status_code == 409 and "Ehdotusta muutettiin sillä välin (nyt versio 1)" in r.text
        assert 'value="Outi Oma"' in r.text
    with Session(ctx.db.engine) as session:
        names = set(session.execute(select(Candidate.name).where(Candidate.superseded_at.is_(None))).scalars())
    assert "Liisa Laine" in names and "Outi Oma" not in names


def test_the_letter_is_read_by_the_coordinator_and_the_requester_only(ctx) -> None:
    from tests.support.recurring import pair
    from workflows.nomination import appointments, service
    from workflows.nomination.schemas import DecisionIn, ProposalIn

    nid, coordinator, director_a, director_b, _children = _setup(ctx)
    requester = make_user(ctx, roles="", email="kirjaamo@vm.example.fi", name="Ylitarkastaja Virtanen")
    ctx.engine.run(lambda uow: service.propose(uow, nid, A, ProposalIn.model_validate(
        {"candidates": pair(1, org="a") + pair(1, "deputy", org="a")}), director_a.actor))
    ctx.engine.run(lambda uow: service.close_proposals(uow, nid, coordinator.actor))
    with Session(ctx.db.engine) as session:
        ids = list(session.execute(select(Candidate.id).order_by(Candidate.id)).scalars())
    ctx.engine.run(lambda uow: appointments.decide(uow, nid, DecisionIn(
        meeting_date="2026-03-02", section="§ 5", seats=[{"seat": 1, "member": ids[0], "deputy": ids[3]}],
        justification="Yksi paikka."), coordinator.actor))
    ctx.engine.run(lambda uow: appointments.communicate(uow, nid, coordinator.actor))
    with web_client(ctx) as client:
        for who, status in ((coordinator, 200), (requester, 200), (director_a, 403), (director_b, 403)):
            sign_in(client, ctx, who.id)
            r = client.get(f"/nominations/{nid}/letter")
            assert r.status_code == status, who.person.name
        assert "sen näkevät pyytäjä ja pyynnön koordinaattori" in r.text and "n.1.member" not in r.text
        sign_in(client, ctx, requester.id)
        page = client.get(f"/nominations/{nid}").text
        assert f'href="/nominations/{nid}/letter"' in page
        letter = client.get(f"/nominations/{nid}/letter").text
        assert "Pirkanmaan liitto" in letter and "regional_council:06" not in letter and "Kirje lähetettiin" in letter


def test_saying_we_propose_nobody_twice_is_kept_once(ctx) -> None:
    nid, _coordinator, director_a, _b, children = _setup(ctx)
    url = f"/nominations/{nid}/proposals/{children[A]}"
    with web_client(ctx) as client:
        sign_in(client, ctx, director_a.id)
        page = client.get(url).text
        form = page.split("/waive")[1]
        data = {"csrf_token": csrf_of(page), "version": form.split('name="version" value="')[1].split('"')[0],
                "waive_reason": "Ei sopivaa ehdokasta"}
        first = client.post(f"{url}/waive", data=data)
        assert first.status_code == 303 and first.headers["location"].endswith("notice=waived")
        again = client.post(f"{url}/waive", data=data)
        assert again.status_code == 303 and again.headers["location"].endswith("notice=changed")
        shown = client.get(again.headers["location"]).text
        assert "joten mitään ei tallennettu uudelleen" in shown and "Ei ehdokkaita" in shown
    assert _count(ctx, Event, Event.case_id == children[A], Event.name == "ProposalWaived") == 1
