"""Least disclosure (issue 10, finding 5): what a party, an asked organisation or a council reads of shared cases.

A party sees its own party case and the agreement's shared facts, never another party's mail, timers or
addresses; an asked organisation its own proposal, others' only after the decision and without candidates; a
cycle's participants its plan and their own report requests; the calendar lists only cases the reader may open.
The coordinator and administrators see everything of their cases. Each test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlmodel import Session

from api.app import create_app
from api.context import AppContext
from engine.models import Case, Person
from tests.support.builders import create_agreement, decision, make_user
from tests.support.recurring import nomination_body, pair

ADDRESS = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


def addresses(text: str) -> set[str]:
    return {a.lower() for a in ADDRESS.findall(text)}


def emails_of(ctx: AppContext, organisation_ids: set[int | None] | None = None) -> dict[str, int | None]:
    """Return every person's address with their organisation id."""
    with Session(ctx.db.engine) as s:
        return {p.email.lower(): p.organisation_id for p in s.execute(select(Person)).scalars()
                if organisation_ids is None or p.organisation_id in organisation_ids}


def party_cases(ctx: AppContext, agreement_id: int) -> dict[str, int]:
    with Session(ctx.db.engine) as s:
        return {c.data["organisation_key"]: c.id or 0
                for c in s.execute(select(Case).where(Case.parent_id == agreement_id)).scalars()}


def timeline_counts(body: list[dict[str, Any]], foreign_cases: set[int]) -> dict[str, int]:
    """Count what a timeline holds of other parties' cases, by kind."""
    out = {"event": 0, "timer": 0, "email": 0}
    for entry in body:
        if entry["detail"].get("case_id") in foreign_cases:
            out[entry["kind"]] += 1
    return out


# -- the agreement's timeline -----------------------------------------------------------------------------------

def test_a_party_reads_the_timeline_without_other_parties_mail_timers_or_addresses(ctx: AppContext) -> None:
    fx = create_agreement(ctx, parties=25)  # Pirkanmaa: the county, 23 municipalities and the council
    client = TestClient(create_app(ctx=ctx))
    a_key, b_key = fx.keys[0], fx.keys[1]
    me = fx.signatories[a_key][0]
    parties = party_cases(ctx, fx.id)
    foreign_cases = {i for k, i in parties.items() if k != a_key}
    foreign = {a for a, org in emails_of(ctx).items() if org != me.actor.organisation_id}
    assert len(foreign) == 25  # 24 other parties' signatories and the coordinator
    # B approves: a shared fact every party sees on the agreement, but B's own history stays B's
    r = client.post(f"/api/v1/agreements/{fx.id}/parties/{b_key}/decision", json=decision(),
                    headers=fx.signatories[b_key][0].headers)
    assert r.status_code == 201, r.text

    r = client.get(f"/api/v1/cases/{fx.id}/timeline", headers=me.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert addresses(r.text) & foreign == set()
    assert timeline_counts(body, foreign_cases) == {"event": 0, "timer": 0, "email": 0}
    # what is the party's own is all there: its case's events and timers, the mail to its signatory
    own = [e for e in body if e["detail"].get("case_id") == parties[a_key]]
    assert {e["kind"] for e in own} == {"event", "timer"} and len([e for e in own if e["kind"] == "timer"]) >= 2
    assert [e["detail"]["to"] for e in body if e["kind"] == "email"] == [me.person.email]
    assert {e["what"] for e in body if e["detail"].get("case_id") == fx.id} >= {"Created", "AgreementCirculated"}
    shared = client.get(f"/api/v1/agreements/{fx.id}", headers=me.headers).json()
    assert shared["parties_approved"] == 1 and addresses(str(shared)) & foreign == set()
    # other parties' cases do not exist for the party
    assert client.get(f"/api/v1/cases/{parties[b_key]}/timeline", headers=me.headers).status_code == 404
    assert client.get(f"/api/v1/cases/{parties[b_key]}/events", headers=me.headers).status_code == 404
    timers = client.get("/api/v1/timers?limit=500", headers=me.headers).json()["items"]
    assert timers and {t["case_id"] for t in timers} == {parties[a_key]}

    # the coordinator sees everything of the case: all 25 parties' timers and every signatory's mail
    r = client.get(f"/api/v1/cases/{fx.id}/timeline", headers=fx.coordinator.headers)
    assert r.status_code == 200
    everything = r.json()
    assert {e["detail"]["case_id"] for e in everything if e["kind"] == "timer"} >= set(parties.values())
    signatories = {u.person.email.lower() for users in fx.signatories.values() for u in users}
    assert signatories <= addresses(r.text)


def test_payload_addresses_are_removed_but_the_readers_own_are_kept() -> None:
    from engine.permissions import redact_addresses  # here: the other tests run (and fail) on code without it

    payload = {"to": "b.signer@kunta.example.fi", "cc": ["a.signer@kunta.example.fi", "b.other@kunta.example.fi"],
               "note": "Varauma § 3", "nested": {"contact": "Ota yhteyttä: b.signer@kunta.example.fi"},
               "count": 3}
    shown = redact_addresses(payload, frozenset({"a.signer@kunta.example.fi"}))
    assert shown == {"cc": ["a.signer@kunta.example.fi"], "note": "Varauma § 3", "nested": {}, "count": 3}


# -- nominations ------------------------------------------------------------------------------------------------

def test_an_asked_organisation_reads_its_own_proposal_not_another_s(ctx: AppContext) -> None:
    coordinator = make_user(ctx, org_key="regional_council:06", roles="coordinator", name="Mkj-sihteeri")
    a = make_user(ctx, org_key="regional_council:02", name="Varsinais-Suomen liiton johtaja")
    b = make_user(ctx, org_key="regional_council:04", name="Satakuntaliiton johtaja")
    requester = make_user(ctx, org_key="association:kuntaliitto", name="Kuntaliiton kirjaamo")
    outsider = make_user(ctx, org_key="municipality:091", name="Helsingin allekirjoittaja")
    client = TestClient(create_app(ctx=ctx))
    body = nomination_body(seats=1, asked={"organisations": ["regional_council:02", "regional_council:04"]})
    body["requester"]["organisation"] = "association:kuntaliitto"
    r = client.post("/api/v1/nominations", json=body, headers=coordinator.headers)
    assert r.status_code == 201, r.text
    nid = r.json()["id"]
    proposal_of = {p["organisation"]: p["case_id"] for p in r.json()["proposals"]}
    for user, key in ((a, "regional_council:02"), (b, "regional_council:04")):
        r = client.put(f"/api/v1/nominations/{nid}/proposals/{key}", headers=user.headers,
                       json={"candidates": pair(1, org=key) + pair(1, "deputy", org=key)})
        assert r.status_code == 200, r.text
    def proposed(key: str) -> set[str]:
        return {c["email"] for c in pair(1, org=key) + pair(1, "deputy", org=key)}

    a_addresses, b_addresses = proposed("regional_council:02"), proposed("regional_council:04")

    # before the decision: A reads its own proposal only, B's is neither listed nor openable
    r = client.get(f"/api/v1/nominations/{nid}", headers=a.headers)
    assert r.status_code == 200
    assert [p["organisation"] for p in r.json()["proposals"]] == ["regional_council:02"]
    assert addresses(r.text) & b_addresses == set() and a_addresses <= addresses(r.text)
    assert client.get(f"/api/v1/cases/{proposal_of['regional_council:04']}", headers=a.headers).status_code == 404
    r = client.get(f"/api/v1/cases/{nid}/timeline", headers=a.headers)
    assert r.status_code == 200 and proposal_of["regional_council:04"] not in {
        e["detail"].get("case_id") for e in r.json()}
    # the requester reads the request, no proposal; an outsider nothing at all
    r = client.get(f"/api/v1/nominations/{nid}", headers=requester.headers)
    assert r.status_code == 200 and r.json()["proposals"] == [] and r.json()["decision"] is None
    assert client.get(f"/api/v1/nominations/{nid}", headers=outsider.headers).status_code == 404
    # the coordinator sees both proposals with their candidates
    full = client.get(f"/api/v1/nominations/{nid}", headers=coordinator.headers).json()
    assert len(full["proposals"]) == 2 and (a_addresses | b_addresses) <= addresses(str(full))

    # the decision: B's member, A's deputy
    assert client.post(f"/api/v1/nominations/{nid}/close", headers=coordinator.headers).status_code == 200
    cands = {p["organisation"]: p["candidates"] for p in full["proposals"]}
    member = next(c for c in cands["regional_council:04"] if c["position"] == "member" and c["gender"] == "woman")
    deputy = next(c for c in cands["regional_council:02"] if c["position"] == "deputy" and c["gender"] == "man")
    r = client.post(f"/api/v1/nominations/{nid}/decision", headers=coordinator.headers, json={
        "meeting_date": "2026-03-02", "section": "§ 3", "justification": "Yksi paikka: eri sukupuolta.",
        "seats": [{"seat": 1, "member": member["id"], "deputy": deputy["id"]}]})
    assert r.status_code == 201, r.text
    assert client.post(f"/api/v1/nominations/{nid}/communicate", headers=coordinator.headers).status_code == 200

    # after it: A sees the decision and that B proposed, not B's candidates, nor B's appointee's address
    r = client.get(f"/api/v1/nominations/{nid}", headers=a.headers)
    view = r.json()
    assert view["decision"] is not None
    assert {p["organisation"]: len(p["candidates"]) for p in view["proposals"]} == {
        "regional_council:02": 4, "regional_council:04": 0}
    appointed = {x["organisation"]: x["email"] for x in view["current"]}
    assert appointed == {"regional_council:04": None, "regional_council:02": deputy["email"]}
    assert addresses(r.text) & b_addresses == set()
    # the requester sees the decision and its letter; an outsider still nothing
    r = client.get(f"/api/v1/nominations/{nid}", headers=requester.headers)
    assert r.json()["decision"]["section"] == "§ 3" and addresses(r.text) & (a_addresses | b_addresses) == set()
    letter = client.get(f"/api/v1/nominations/{nid}/letter", headers=requester.headers)
    assert letter.status_code == 200 and member["name"] in letter.text
    refused = client.get(f"/api/v1/nominations/{nid}/letter", headers=a.headers)  # the letter is the requester's
    assert refused.status_code == 403 and refused.json()["message_id"] == "nomination.error.letter_for_requester"
    assert client.get(f"/api/v1/nominations/{nid}/letter", headers=outsider.headers).status_code == 404


# -- cycles -----------------------------------------------------------------------------------------------------

def test_cycles_are_read_by_their_participants_only(ctx: AppContext) -> None:
    admin = make_user(ctx, roles="admin")
    coordinator = make_user(ctx, org_key="association:kuntaliitto", roles="coordinator")
    d06 = make_user(ctx, org_key="regional_council:06", name="Pirkanmaan liiton johtaja")
    d02 = make_user(ctx, org_key="regional_council:02", name="Varsinais-Suomen liiton johtaja")
    outsider = make_user(ctx, org_key="municipality:091", name="Helsingin allekirjoittaja")
    alke = make_user(ctx, org_key="municipality:837", name="Alke-verkoston jäsen")
    client = TestClient(create_app(ctx=ctx))
    r = client.post("/api/v1/cycles", json={"year": 2026}, headers=coordinator.headers)
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    assert client.put(f"/api/v1/cycles/networks/alke/members/{alke.id}", headers=admin.headers).status_code == 204
    measures = [{"title": f"Toimenpide {k}", "theme": "climate", "responsible": k, "due_date": "2026-06-30"}
                for k in ("regional_council:06", "regional_council:02", "network:alke")]
    r = client.post(f"/api/v1/cycles/{cid}/agree", json={"measures": measures}, headers=coordinator.headers)
    assert r.status_code == 200, r.text
    mid = {m["responsible"]: m["id"] for m in r.json()["measures"]}
    r = client.post(f"/api/v1/cycles/{cid}/measures/{mid['regional_council:02']}/notes", headers=d02.headers,
                    json={"status": "ongoing", "text": "Varsinais-Suomen oma tilannekatsaus"})
    assert r.status_code == 201, r.text
    ctx.clock.set(datetime(2026, 11, 3, 8, 0, tzinfo=UTC))  # reporting has opened: one request per responsible
    ctx.tick()

    # an unrelated signed-in person: no cycle at all
    assert client.get("/api/v1/cycles", headers=outsider.headers).json() == []
    for url in (f"/api/v1/cycles/{cid}", f"/api/v1/cycles/{cid}/report.html", f"/api/v1/cases/{cid}"):
        r = client.get(url, headers=outsider.headers)
        assert r.status_code == 404 and r.json()["error"] == "CaseNotFound", url
    assert client.get("/api/v1/cycles/schedule", headers=outsider.headers).status_code == 403
    # a council: the plan (every measure), its own request and notes, not the other council's
    r = client.get(f"/api/v1/cycles/{cid}", headers=d06.headers)
    assert r.status_code == 200
    view = r.json()
    assert [m["responsible"] for m in view["measures"]] == [m["responsible"] for m in measures]
    assert [q["responsible"] for q in view["report_requests"]] == ["regional_council:06"]
    assert "Varsinais-Suomen oma tilannekatsaus" not in r.text and set(view["survey"]) == {"answers"}
    assert [c["id"] for c in client.get("/api/v1/cycles", headers=d06.headers).json()] == [cid]
    # a network's member (of a municipality): the network's request
    r = client.get(f"/api/v1/cycles/{cid}", headers=alke.headers)
    assert r.status_code == 200 and [q["responsible"] for q in r.json()["report_requests"]] == ["network:alke"]
    # the cycle's coordinator: everything
    r = client.get(f"/api/v1/cycles/{cid}", headers=coordinator.headers)
    assert len(r.json()["report_requests"]) == 3 and "Varsinais-Suomen oma tilannekatsaus" in r.text


# -- the calendar -----------------------------------------------------------------------------------------------

def test_the_calendar_lists_only_cases_the_reader_may_open(ctx: AppContext) -> None:
    fx = create_agreement(ctx, parties=3)
    admin = make_user(ctx, roles="admin")
    party = fx.signatories[fx.keys[0]][0]
    outsider = make_user(ctx, org_key="municipality:091", name="Helsingin allekirjoittaja")
    client = TestClient(create_app(ctx=ctx))
    body = nomination_body(seats=1, asked={"organisations": ["regional_council:02"]})
    r = client.post("/api/v1/nominations", json=body, headers=fx.coordinator.headers)
    assert r.status_code == 201, r.text
    nid, group = r.json()["id"], body["group"]
    r = client.post("/api/v1/cycles", json={"year": 2026}, headers=admin.headers)
    assert r.status_code == 201, r.text
    cid = r.json()["id"]

    def items(user: Any, query: str = "") -> set[int]:
        r = client.get(f"/api/v1/calendar/items?year=2026{query}", headers=user.headers)
        assert r.status_code == 200, r.text
        return {i["case_id"] for i in r.json() if i["case_id"] is not None}

    assert items(admin) >= {fx.id, nid, cid}
    assert items(party) == {fx.id}  # its agreement; not a request it was not asked, not the councils' cycle
    assert items(party, "&organisation=regional_council:02") == set()  # another organisation's view: nothing
    assert items(outsider) == set()
    for url in ("/api/v1/calendar/wheel.svg?year=2026", "/api/v1/calendar/wheel.html?year=2026"):
        text = client.get(url, headers=outsider.headers).text
        assert "Pirkanmaan puitesopimus" not in text and group not in text and "Vuosiseuranta 2026" not in text
        text = client.get(url, headers=party.headers).text
        assert "Pirkanmaan puitesopimus" in text and group not in text and "Vuosiseuranta 2026" not in text

    # feeds: a person's lists what that person may open, an organisation's what any member may open
    r = client.post("/api/v1/calendar/feeds", json={}, headers=party.headers)
    assert r.status_code == 201, r.text
    ics = client.get(r.json()["url"].removeprefix("http://testserver")).text
    assert "Pirkanmaan puitesopimus" in ics and group not in ics and "Vuosiseuranta 2026" not in ics
    r = client.post("/api/v1/calendar/feeds", json={"organisation": "municipality:091"}, headers=admin.headers)
    assert r.status_code == 201, r.text
    ics = client.get(r.json()["url"].removeprefix("http://testserver")).text
    assert "BEGIN:VCALENDAR" in ics and "Pirkanmaan puitesopimus" not in ics and group not in ics
    assert "Vuosiseuranta 2026" not in ics
    r = client.post("/api/v1/calendar/feeds", json={"organisation": "regional_council:02"}, headers=admin.headers)
    ics = client.get(r.json()["url"].removeprefix("http://testserver")).text
    assert group in ics and "Vuosiseuranta 2026" in ics and "Pirkanmaan puitesopimus" not in ics
