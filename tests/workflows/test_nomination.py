"""Nominations: the definitions table-driven, the Equality Act errors exactly, request to mid-term replacement."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from engine.actors import SYSTEM
from engine.errors import Conflict, EngineError, InvalidInput, InvalidTransition, NotPermitted
from engine.models import Case, OutboxMessage, Timer
from tests.support.builders import make_user
from tests.support.recurring import create_nomination, force_state, pair
from workflows.nomination import appointments, service
from workflows.nomination.equality import Shares, check_proposal, check_shares
from workflows.nomination.read import read_nomination
from workflows.nomination.schemas import DecisionIn, ProposalIn, ReplacementIn

COUNCILS = ["regional_council:06", "regional_council:02", "regional_council:13"]

# (state, trigger, who) -> new state, or the error class
NOMINATION_TABLE = [
    ("requested", "close_proposals", "system", "proposals_closed"),
    ("requested", "close_proposals", "coordinator", "proposals_closed"),
    ("requested", "close_proposals", "outsider", NotPermitted),
    ("requested", "start_term", "system", InvalidTransition),
    ("proposals_closed", "close_proposals", "system", InvalidTransition),
    ("communicated", "start_term", "system", "serving"),
    ("serving", "end_term", "system", "ended"),
    ("serving", "start_term", "system", InvalidTransition),
    ("requested", "cancel", "coordinator", "cancelled"),
    ("serving", "cancel", "admin", "cancelled"),
    ("serving", "cancel", "outsider", NotPermitted),
    ("ended", "cancel", "admin", InvalidTransition),
    ("cancelled", "close_proposals", "system", InvalidTransition),
]
PROPOSAL_TABLE = [
    ("asked", "lapse", "system", "lapsed"),
    ("asked", "lapse", "party", NotPermitted),
    ("proposed", "lapse", "system", InvalidTransition),
    ("asked", "close", "system", "closed"),
    ("waived", "close", "system", "closed"),
    ("lapsed", "close", "system", InvalidTransition),
    ("asked", "waive", "party", "waived"),
    ("asked", "waive", "outsider", NotPermitted),
]


def _actors(ctx, coordinator):
    admin = make_user(ctx, roles="admin", name="Admin")
    party = make_user(ctx, org_key=COUNCILS[0], name="Maakuntajohtaja")
    outsider = make_user(ctx, org_key="municipality:091", name="Ulkopuolinen")
    return {"system": SYSTEM, "coordinator": coordinator.actor, "admin": admin.actor, "party": party.actor,
            "outsider": outsider.actor}


@pytest.mark.parametrize("workflow", ["nomination", "nomination_proposal"])
def test_definition_table(ctx, workflow) -> None:
    table = NOMINATION_TABLE if workflow == "nomination" else PROPOSAL_TABLE
    for state, trigger, who, expected in table:
        nid, coordinator = create_nomination(ctx, asked={"organisations": [COUNCILS[0]]})
        actors = _actors(ctx, coordinator) if who != "system" else {"system": SYSTEM}
        case_id = nid
        if workflow == "nomination_proposal":
            case_id = ctx.engine.run(lambda uow, n=nid: uow.children(n)[0].id)
        force_state(ctx, case_id, state)
        payload = {"reason": "ei tarvita"} if trigger in ("cancel", "waive") else {}
        run = lambda uow, c=case_id, t=trigger, a=actors[who], p=payload: uow.fire(c, t, actor=a, payload=p)  # noqa: E731
        if isinstance(expected, str):
            record = ctx.engine.run(run)
            assert record.to_state == expected, (state, trigger, who)
        else:
            with pytest.raises(expected):
                ctx.engine.run(run)


def test_equality_act_errors_are_exact() -> None:
    seats = {1: True, 2: False}
    with pytest.raises(InvalidInput) as err:
        check_proposal(seats, [(1, "member", "woman"), (1, "member", "man"), (1, "deputy", "woman")], set())
    assert str(err.value) == (
        "candidates: seat 1 deputy: no man proposed; seat 2 member: nobody proposed. Propose a woman and a man "
        "for each seat, or give an exception with its reason (Equality Act 609/1986 §4 a)")
    check_proposal(seats, [(1, "member", "woman"), (1, "member", "man"), (1, "deputy", "woman")],
                   {(1, "deputy"), (2, "member")})
    shares = Shares.of([("member", "woman"), ("member", "woman"), ("member", "man"),
                        ("deputy", "woman"), ("deputy", "woman")])
    with pytest.raises(InvalidInput) as err:
        check_shares(shares, None)
    assert str(err.value) == (
        "justification: men are 33 % of the members (1 of 3); men are 0 % of the deputies (0 of 2): below 40 % "
        "needs a written justification (Equality Act 609/1986 §4 a)")
    check_shares(shares, "Ehdotetuista vain naiset olivat käytettävissä.")
    check_shares(Shares.of([("member", "woman"), ("member", "man"), ("deputy", "man"), ("deputy", "woman")]), None)


def _propose(ctx, nid, org, user, candidates, exceptions=()):
    body = ProposalIn.model_validate({"candidates": candidates, "exceptions": list(exceptions)})
    return ctx.engine.run(lambda uow: service.propose(uow, nid, org, body, user.actor))


def test_nomination_from_request_to_mid_term_replacement(ctx) -> None:
    users = {k: make_user(ctx, org_key=k, name=f"Johtaja {k}", email=f"johtaja.{k[-2:]}@example.fi") for k in COUNCILS}
    nid, coordinator = create_nomination(ctx, seats=2, asked={"organisations": COUNCILS}, language="sv")
    with ctx.db.read_session() as s:
        timers = s.execute(select(Timer).where(Timer.status == "pending")).scalars().all()
    # the request closes at the end of the deadline; each proposal case is reminded 7 and 1 days before it
    assert {(t.name, t.due_at) for t in timers if t.case_id == nid} == {
        ("proposals_deadline", datetime(2026, 3, 20, 21, 59, 59, tzinfo=UTC))}
    reminders = sorted({t.due_at for t in timers if t.name == "proposal_reminder"})
    assert reminders == [datetime(2026, 3, 13, 7, 0, tzinfo=UTC), datetime(2026, 3, 19, 7, 0, tzinfo=UTC)]

    # a proposal without a man for seat 2's deputy: the error names that seat
    one_sided = pair(1, "member", "06") + pair(1, "deputy", "06") + pair(2, "member", "06")
    one_sided += pair(2, "deputy", "06")[:1]
    with pytest.raises(InvalidInput, match=r"^candidates: seat 2 deputy: no man proposed\. "):
        _propose(ctx, nid, COUNCILS[0], users[COUNCILS[0]], one_sided)
    _propose(ctx, nid, COUNCILS[0], users[COUNCILS[0]], one_sided,
             [{"seat": 2, "position": "deputy", "reason": "Vain yksi varajäsenehdokas käytettävissä."}])
    full = [c for s in (1, 2) for p in ("member", "deputy") for c in pair(s, p, "02")]
    _propose(ctx, nid, COUNCILS[1], users[COUNCILS[1]], full)
    _propose(ctx, nid, COUNCILS[1], users[COUNCILS[1]], full)  # a new version replaces the old
    with pytest.raises(NotPermitted):  # one council may not propose for another
        _propose(ctx, nid, COUNCILS[2], users[COUNCILS[0]], full)

    # deciding before proposals close is refused, and says why
    decision = {"meeting_date": "2026-03-23", "section": "12", "seats": [{"seat": 1, "member": 1, "deputy": 2}]}
    with pytest.raises(InvalidTransition, match="proposals are not closed yet"):
        ctx.engine.run(lambda uow: appointments.decide(uow, nid, DecisionIn.model_validate(decision),
                                                       coordinator.actor))

    # the deadline passes: the timer closes the request, the silent council's case lapses
    ctx.clock.set(datetime(2026, 3, 20, 22, 0, tzinfo=UTC))
    ctx.tick()
    with pytest.raises(Conflict, match="proposals were due by Fri 20 Mar 2026"):
        _propose(ctx, nid, COUNCILS[2], users[COUNCILS[2]], full)
    ctx.clock.set(datetime(2026, 3, 24, 8, 0, tzinfo=UTC))
    with ctx.db.read_session() as s:
        view = read_nomination(s, ctx.registry, nid, SYSTEM)  # the engine reads everything
    assert view.state == "proposals_closed"
    assert [p.state for p in view.proposals] == ["proposed", "proposed", "lapsed"]
    by_name = {c.name: c.id for p in view.proposals for c in p.candidates}
    assert len(by_name) == 15  # 7 from one council, 8 from the other (the first version superseded)

    def decide(seats, justification=None):
        body = DecisionIn.model_validate({"meeting_date": "2026-03-23", "section": "§ 12", "seats": seats,
                                          "justification": justification})
        return ctx.engine.run(lambda uow: appointments.decide(uow, nid, body, coordinator.actor))

    with pytest.raises(InvalidInput) as err:
        decide([{"seat": 1, "member": 9999, "deputy": by_name["Mies 06 1 deputy"]},
                {"seat": 2, "member": by_name["Mies 02 2 member"]}])
    assert err.value.field == "seats[0].member" and "candidate 9999 was not proposed" in err.value.detail
    men = [{"seat": 1, "member": by_name["Mies 06 1 member"], "deputy": by_name["Mies 06 1 deputy"]},
           {"seat": 2, "member": by_name["Mies 02 2 member"], "deputy": by_name["Nainen 06 2 deputy"]}]
    with pytest.raises(InvalidInput) as err:
        decide(men)
    assert str(err.value) == ("justification: women are 0 % of the members (0 of 2): below 40 % needs a written "
                              "justification (Equality Act 609/1986 §4 a)")
    balanced = [{"seat": 1, "member": by_name["Nainen 06 1 member"], "deputy": by_name["Mies 06 1 deputy"]},
                {"seat": 2, "member": by_name["Mies 02 2 member"], "deputy": by_name["Nainen 02 2 deputy"]}]
    decide(balanced)

    letter = ctx.engine.run(lambda uow: appointments.communicate(uow, nid, coordinator.actor))
    assert letter.language == "sv" and letter.subject.startswith("Utnämning: ")
    assert "Landskapsdirektörsmötet" in letter.text and "Maakuntajohtajakokous 23.3.2026 § 12" in letter.text
    assert "Nainen 06 1 member" in letter.html and letter.to_address == "kirjaamo@vm.example.fi"
    with ctx.db.read_session() as s:
        sent = s.execute(select(OutboxMessage).where(OutboxMessage.template == "nomination_letter")).scalars().one()
        asked = s.execute(select(OutboxMessage).where(OutboxMessage.template == "nomination_requested")).scalars().all()
        reminded = s.execute(select(OutboxMessage).where(
            OutboxMessage.template == "nomination_proposal_reminder")).scalars().all()
    assert sent.to_address == "kirjaamo@vm.example.fi" and sent.language == "sv"
    assert sorted(sent.cc) == sorted(["n.1.member.06@example.fi", "m.1.deputy.06@example.fi",
                                      "m.2.member.02@example.fi", "n.2.deputy.02@example.fi"])
    assert sorted(m.to_address for m in asked) == sorted(u.person.email for u in users.values())
    # only the council that had not proposed was reminded; its two due reminders were coalesced to one
    assert [m.to_address for m in reminded] == ["johtaja.13@example.fi"]

    # the term starts on 1.5.2026, May Day: its timer, like every day-based timer, fires as the next business
    # day ends (Mon 4.5.); from then on a reminder comes 60 days before the term ends
    ctx.clock.set(datetime(2026, 5, 4, 20, 0, tzinfo=UTC))
    ctx.tick()
    with ctx.db.read_session() as s:
        assert s.get(Case, nid).state == "communicated"
    ctx.clock.set(datetime(2026, 5, 4, 21, 0, tzinfo=UTC))
    ctx.tick()
    with ctx.db.read_session() as s:
        case = s.get(Case, nid)
        assert case.state == "serving" and case.deadline == date(2028, 4, 30)
        ending = s.execute(select(Timer).where(Timer.case_id == nid, Timer.name == "term_ending",
                                               Timer.status == "pending")).scalars().one()
    # 30.4.2028 is a Sunday and 1.5. May Day: the deadline is Tue 2.5.2028; 60 days before it is Fri 3.3.2028
    assert ending.due_at == datetime(2028, 3, 3, 7, 0, tzinfo=UTC)

    # mid-term replacement of seat 1's member; the history keeps both
    change = ReplacementIn(seat=1, position="member", name="Uusi Nainen", gender="woman",
                           organisation="regional_council:06", email="uusi@example.fi",
                           effective_date=date(2026, 9, 1), reason="Siirtyi muihin tehtäviin",
                           decision_ref="Maakuntajohtajakokous 25.8.2026 § 40")
    ctx.engine.run(lambda uow: appointments.replace(uow, nid, change, coordinator.actor))
    with ctx.db.read_session() as s:
        view = read_nomination(s, ctx.registry, nid, SYSTEM)  # the engine reads everything
    seat1 = [a for a in view.appointments if a.seat == 1 and a.position == "member"]
    assert [(a.name, a.starts_on, a.ends_on) for a in seat1] == [
        ("Nainen 06 1 member", date(2026, 5, 1), date(2026, 8, 31)), ("Uusi Nainen", date(2026, 9, 1), None)]
    assert seat1[1].replaces_id == seat1[0].id
    assert view.decision.shares.women_members_pct == 50.0
    # replacing the other member by a man leaves women at 0 %: that needs a justification
    with pytest.raises(InvalidInput, match="^justification: women are 0 % of the members"):
        ctx.engine.run(lambda uow: appointments.replace(uow, nid, ReplacementIn(
            seat=1, position="member", candidate_id=by_name["Mies 06 1 member"], effective_date=date(2026, 10, 1)),
            coordinator.actor))

    # at the term's end the timer ends the case
    ctx.clock.set(datetime(2028, 5, 3, 0, 0, tzinfo=UTC))
    ctx.tick()
    with ctx.db.read_session() as s:
        assert s.get(Case, nid).state == "ended"


def test_bad_requests_name_the_field(ctx) -> None:
    coordinator = make_user(ctx, org_key="regional_council:06", roles="coordinator")
    with pytest.raises(InvalidInput, match=r"^asked\.organisations\[1\]: unknown organisation 'region_council:99'"):
        create_nomination(ctx, coordinator=coordinator, asked={"organisations": ["regional_council:06",
                                                                                  "region_council:99"]})
    with pytest.raises(InvalidInput, match="^deadline: 2026-03-01 is in the past"):
        create_nomination(ctx, coordinator=coordinator, deadline=date(2026, 3, 1))
    signatory = make_user(ctx, org_key="regional_council:06")
    with pytest.raises(NotPermitted):
        create_nomination(ctx, coordinator=signatory)
    nid, _ = create_nomination(ctx, coordinator=coordinator, seats=1, asked={"region": "06",
                                                                            "region_kinds": ["regional_council"]})
    user = make_user(ctx, org_key="regional_council:06")
    with pytest.raises(InvalidInput, match=r"^candidates\[0\]\.seat: there is no seat 3 \(seats 1-1\)"):
        _propose(ctx, nid, "regional_council:06", user, pair(3))
    with pytest.raises(EngineError):
        _propose(ctx, nid, "regional_council:02", user, pair(1))
    ctx.clock.advance(timedelta(days=1))
