"""Table-driven: (state, trigger, actor) -> new state or the exact error, for `agreement` and `agreement_party`.

Each row runs inside a transaction that is rolled back, so one case per state serves the whole table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlmodel import Session

import workflows
from api.context import AppContext, build_context
from engine.actors import SYSTEM, Actor
from engine.audit import verify_all
from engine.db import make_database
from engine.errors import EngineError, GuardRejected, InvalidTransition, NotPermitted
from engine.models import Event
from engine.service import UnitOfWork
from engine.versions import store_version
from tests.support.builders import AgreementFixture, User, create_agreement, make_user
from tests.support.task_agreements import approve_all, create_task_agreement
from workflows.agreement import cases, claims, service
from workflows.agreement.models import Signature
from workflows.agreement.schemas import ClaimIn, DecisionIn, DocumentIn, TerminateIn, WithdrawIn

SHA = "ab" * 32
FINAL_SOURCE = Path(workflows.__file__).resolve().parent / "agreement" / "v1.yaml"
IT, NP, GR = "IT", "NP", "GR"  # InvalidTransition, NotPermitted, GuardRejected
ERRORS = {IT: InvalidTransition, NP: NotPermitted, GR: GuardRejected}

# state / trigger / what each actor gets: a new state or an error class. Triggers not listed for a state must
# give InvalidTransition to everyone, naming exactly the triggers listed for that state.
AGREEMENT_TABLE = """
state                trigger                admin         coordinator   foreign  signatory  system
draft                circulate              circulating   circulating   NP       NP         NP
draft                revise                 draft         draft         NP       NP         NP
draft                withdraw               withdrawn     withdrawn     NP       NP         NP
draft                framework_terminated   NP            NP            NP       NP         draft
draft                continue_alone         GR            GR            NP       NP         NP
circulating          revise                 circulating   circulating   NP       NP         NP
circulating          require_renegotiation  NP            NP            NP       NP         needs_renegotiation
circulating          enter_into_force       NP            NP            NP       NP         GR
circulating          await_finality         NP            NP            NP       NP         GR
circulating          withdraw               withdrawn     withdrawn     NP       NP         NP
circulating          framework_terminated   NP            NP            NP       NP         circulating
circulating          continue_alone         GR            GR            NP       NP         NP
needs_renegotiation  revise                 circulating   circulating   NP       NP         NP
needs_renegotiation  withdraw               withdrawn     withdrawn     NP       NP         NP
needs_renegotiation  framework_terminated   NP            NP            NP       NP         needs_renegotiation
needs_renegotiation  continue_alone         GR            GR            NP       NP         NP
in_force             reopen                 NP            NP            NP       NP         circulating
in_force             terminate              terminated    terminated    NP       NP         NP
in_force             start_review           under_review  under_review  NP       NP         under_review
awaiting_finality    revise                 circulating   circulating   NP       NP         NP
awaiting_finality    decisions_final        NP            NP            NP       NP         GR
awaiting_finality    reschedule_finality    NP            NP            NP       NP         awaiting_finality
awaiting_finality    reopen                 NP            NP            NP       NP         circulating
awaiting_finality    withdraw               withdrawn     withdrawn     NP       NP         NP
awaiting_finality    framework_terminated   NP            NP            NP       NP         awaiting_finality
awaiting_finality    continue_alone         GR            GR            NP       NP         NP
in_force             start_task_agreement   in_force      in_force      NP       NP         NP
in_force             framework_terminated   NP            NP            NP       NP         framework_ended
under_review         revise                 circulating   circulating   NP       NP         NP
under_review         terminate              terminated    terminated    NP       NP         NP
under_review         confirm_unchanged      in_force      in_force      NP       NP         in_force
under_review         start_task_agreement   under_review  under_review  NP       NP         NP
under_review         framework_terminated   NP            NP            NP       NP         framework_ended
framework_ended      terminate              terminated    terminated    NP       NP         NP
framework_ended      continue_alone         in_force      in_force      NP       NP         NP
withdrawn            -
terminated           -
"""

# the party's state is qualified by its agreement's where that matters to the guards
PARTY_TABLE = """
state                trigger       admin     coordinator  foreign  signatory  other  system
invited@circulating  approve       approved  approved     NP       approved   NP     NP
invited@circulating  decline       declined  declined     NP       declined   NP     NP
invited@circulating  reinvite      NP        NP           NP       NP         NP     invited
invited@circulating  mark_overdue  NP        NP           NP       NP         NP     invited
invited@circulating  release       NP        NP           NP       NP         NP     released
invited@draft        approve       GR        GR           NP       GR         NP     NP
invited@draft        decline       GR        GR           NP       GR         NP     NP
invited@draft        reinvite      NP        NP           NP       NP         NP     invited
invited@draft        mark_overdue  NP        NP           NP       NP         NP     invited
invited@draft        release       NP        NP           NP       NP         NP     released
invited@renegotiate  approve       GR        GR           NP       GR         NP     NP
invited@renegotiate  decline       GR        GR           NP       GR         NP     NP
invited@renegotiate  reinvite      NP        NP           NP       NP         NP     invited
invited@renegotiate  mark_overdue  NP        NP           NP       NP         NP     invited
invited@renegotiate  release       NP        NP           NP       NP         NP     released
approved             sign          NP        NP           NP       signed     NP     NP
approved             record_publication approved approved NP       approved   NP     NP
approved             record_claim  contested contested    NP       NP         NP     NP
approved             reinvite      NP        NP           NP       NP         NP     invited
approved             mark_overdue  NP        NP           NP       NP         NP     approved
approved             release       NP        NP           NP       NP         NP     released
approved@renegotiate sign          NP        NP           NP       GR         NP     NP
approved@renegotiate record_publication approved approved NP       approved   NP     NP
approved@renegotiate record_claim  contested contested    NP       NP         NP     NP
approved@renegotiate reinvite      NP        NP           NP       NP         NP     invited
approved@renegotiate mark_overdue  NP        NP           NP       NP         NP     approved
approved@renegotiate release       NP        NP           NP       NP         NP     released
declined             record_publication declined declined NP       declined   NP     NP
declined             record_claim  contested contested    NP       NP         NP     NP
declined             reinvite      NP        NP           NP       NP         NP     invited
declined             release       NP        NP           NP       NP         NP     released
signed               record_publication signed signed    NP       signed     NP     NP
signed               record_claim  contested contested    NP       NP         NP     NP
signed               reinvite      NP        NP           NP       NP         NP     invited
signed               release       NP        NP           NP       NP         NP     released
contested            record_publication contested contested NP     contested  NP     NP
contested            record_claim  contested contested    NP       NP         NP     NP
contested            uphold_claim  invited   invited      NP       NP         NP     NP
contested            settle_claim  contested contested    NP       NP         NP     NP
contested            reinvite      NP        NP           NP       NP         NP     invited
contested            release       NP        NP           NP       NP         NP     released
released             -
"""


def parse_table(text: str) -> tuple[list[str], dict[str, dict[str, dict[str, str]]]]:
    """Return the actor columns and {state: {trigger: {actor: outcome}}} (a state with `-` allows nothing)."""
    lines = [line.split() for line in text.strip().splitlines()]
    actors = lines[0][2:]
    table: dict[str, dict[str, dict[str, str]]] = {}
    for cells in lines[1:]:
        rows = table.setdefault(cells[0], {})
        if cells[1] != "-":
            assert len(cells) == 2 + len(actors), cells
            rows[cells[1]] = dict(zip(actors, cells[2:], strict=True))
    return actors, table


AGREEMENT_ACTORS, AGREEMENT = parse_table(AGREEMENT_TABLE)
PARTY_ACTORS, PARTY = parse_table(PARTY_TABLE)
AGREEMENT_TRIGGERS = ["circulate", "revise", "require_renegotiation", "enter_into_force", "withdraw",
                      "terminate", "start_review", "confirm_unchanged", "await_finality", "decisions_final",
                      "reschedule_finality", "reopen"]
AGREEMENT_TRIGGERS += ["start_task_agreement", "framework_terminated", "continue_alone"]  # task-specific agreements
PARTY_TRIGGERS = ["approve", "decline", "sign", "reinvite", "mark_overdue", "release", "record_publication",
                  "record_claim", "uphold_claim", "settle_claim"]


@dataclass
class World:
    """The people the table talks about, and a way to build an agreement in any state."""

    ctx: AppContext
    admin: User
    coordinator: User
    foreign: User

    def agreement(self, *, parties: int = 2, signatures: int = 1, circulate: bool = True,
                  definition: str | None = None) -> AgreementFixture:
        if definition is not None:
            store_definition(self.ctx, definition, self.admin)
        return create_agreement(self.ctx, parties=parties, signatures=signatures, circulate=circulate,
                                coordinator=self.coordinator)

    def actors(self, fx: AgreementFixture) -> dict[str, Actor]:
        mine, other = fx.keys[0], fx.keys[1]
        return {"admin": self.admin.actor, "coordinator": self.coordinator.actor, "foreign": self.foreign.actor,
                "signatory": fx.signatories[mine][0].actor, "other": fx.signatories[other][0].actor,
                "system": SYSTEM}


@pytest.fixture
def world(ctx: AppContext) -> World:
    admin = make_user(ctx, roles="admin", name="Pääkäyttäjä")
    coordinator = make_user(ctx, org_key="regional_council:06", roles="coordinator", name="Koordinaattori")
    foreign = make_user(ctx, org_key="regional_council:02", roles="coordinator", name="Vieras koordinaattori")
    create_agreement(ctx, parties=1, coordinator=foreign)  # the foreign coordinator runs an agreement of their own
    return World(ctx, admin, coordinator, foreign)


# -- driving cases into a state through the services -------------------------------------------------------


def final_definition(world: World) -> str:
    """Return the shipped agreement definition as version 2 with enter_into_force_when_final switched on."""
    return (FINAL_SOURCE.read_text(encoding="utf-8").replace("version: 1", "version: 2", 1)
            .replace("enter_into_force_when_final: false", "enter_into_force_when_final: true", 1))


def store_definition(ctx: AppContext, source: str, admin: User) -> None:
    """Store and activate a definition version as the administrators' editor does."""
    ctx.engine.run(lambda uow: store_version(uow, ctx.registry, source, "agreement", actor=admin.actor))


def decide(ctx: AppContext, fx: AgreementFixture, key: str, outcome: str = "approved") -> None:
    body = DecisionIn(outcome=outcome, body="Kunnanhallitus", decided_on=date(2026, 3, 2), section="§ 58")  # type: ignore[arg-type]
    ctx.engine.run(lambda uow: service.decide(uow, fx.id, key, body, fx.signatories[key][0].actor))


def sign(ctx: AppContext, fx: AgreementFixture, key: str, signer: int = 0) -> None:
    ctx.engine.run(lambda uow: service.sign(uow, fx.id, key, fx.signatories[key][signer].actor))


def agreement_in(world: World, state: str) -> AgreementFixture:
    """Return an agreement driven to a state by the real operations."""
    ctx = world.ctx
    if state == "framework_ended":  # a task-specific agreement in force whose framework was terminated
        framework = world.agreement()
        approve_all(ctx, framework)
        task = create_task_agreement(ctx, framework)
        approve_all(ctx, task)
        ended = TerminateIn(reason="Korvattu uudella", end_date=date(2026, 12, 31))
        ctx.engine.run(lambda uow: service.terminate(uow, framework.id, ended, world.coordinator.actor))
        assert state_of(ctx, task.id) == state
        return task
    fx = world.agreement(circulate=state != "draft")
    coord = world.coordinator.actor
    if state in ("needs_renegotiation",):
        decide(ctx, fx, fx.keys[0], "declined")
    elif state == "awaiting_finality":  # with a definition that waits for final decisions (none published yet)
        fx = world.agreement(circulate=True, definition=final_definition(world))
        for key in fx.keys:
            decide(ctx, fx, key)
            sign(ctx, fx, key)
    elif state in ("in_force", "under_review", "terminated"):
        for key in fx.keys:
            decide(ctx, fx, key)
            sign(ctx, fx, key)
        if state == "under_review":
            ctx.engine.run(lambda uow: uow.fire(fx.id, "start_review", actor=coord))
        elif state == "terminated":
            body = TerminateIn(reason="Korvattu uudella", end_date=date(2026, 12, 31))
            ctx.engine.run(lambda uow: service.terminate(uow, fx.id, body, coord))
    elif state == "withdrawn":
        ctx.engine.run(lambda uow: service.withdraw(uow, fx.id, WithdrawIn(), coord))
    assert state_of(ctx, fx.id) == state
    return fx


def party_in(world: World, label: str) -> tuple[AgreementFixture, int]:
    """Return an agreement and the case id of its first party, in a state like `invited@draft`."""
    ctx = world.ctx
    state, _, parent = label.partition("@")
    fx = world.agreement(circulate=parent != "draft")
    mine, other = fx.keys[0], fx.keys[1]
    if state in ("approved", "signed"):
        decide(ctx, fx, mine)
    if state == "signed":
        sign(ctx, fx, mine)
    if state == "declined":
        decide(ctx, fx, mine, "declined")
    if state == "contested":
        decide(ctx, fx, mine)
        claim = ClaimIn(claimant="Matti Meikäläinen", filed_on=date(2026, 3, 2))
        ctx.engine.run(lambda uow: claims.record_claim(uow, fx.id, mine, claim, world.coordinator.actor))
    if parent == "renegotiate":
        decide(ctx, fx, other, "declined")
    if state == "released":
        ctx.engine.run(lambda uow: service.withdraw(uow, fx.id, WithdrawIn(), world.coordinator.actor))
    party_id = party_case_id(ctx, fx, mine)
    assert state_of(ctx, party_id) == state
    return fx, party_id


def state_of(ctx: AppContext, case_id: int) -> str:
    return str(ctx.engine.run(lambda uow: uow.case(case_id).state))


def party_case_id(ctx: AppContext, fx: AgreementFixture, key: str) -> int:
    return int(ctx.engine.run(lambda uow: cases.party_case(uow, fx.id, key).id))


def event_count(ctx: AppContext) -> int:
    with Session(ctx.db.engine) as session:
        return int(session.execute(select(func.count()).select_from(Event)).scalar_one())


# -- firing one row without keeping it ----------------------------------------------------------------------


class _Rollback(Exception):
    """Raised at the end of a row so its transaction is rolled back."""


def attempt(ctx: AppContext, case_id: int, trigger: str, actor: Actor, payload: dict[str, Any],
            prepare: Callable[[UnitOfWork], None] | None = None) -> str | EngineError:
    """Fire a trigger in a transaction that is then rolled back; return the new state or the error."""
    out: list[str | EngineError] = []

    def work(uow: UnitOfWork) -> None:
        try:
            if prepare is not None:
                prepare(uow)
            out.append(uow.fire(case_id, trigger, actor=actor, payload=payload).to_state)
        except EngineError as exc:
            out.append(exc)
        raise _Rollback

    with pytest.raises(_Rollback):
        ctx.engine.run(work)
    return out[0]


def permitted(rows: dict[str, dict[str, str]], actor_name: str) -> list[str]:
    """Return the triggers of a state's rows this actor fires successfully: what a refusal offers them instead."""
    return [trigger for trigger, by in rows.items() if by.get(actor_name, IT) not in ERRORS]


def check(result: str | EngineError, expected: str, allowed: list[str], where: str) -> None:
    if expected in ERRORS:
        assert type(result) is ERRORS[expected], f"{where}: expected {expected}, got {result!r}"
        if expected == IT:
            assert isinstance(result, InvalidTransition)
            assert result.extra["allowed"] == allowed, where
            for trigger in allowed:
                assert trigger in result.detail, where
            if not allowed:
                assert "allowed: none" in result.detail, where  # "(final state)" follows when it is one
    else:
        assert result == expected, f"{where}: expected {expected}, got {result!r}"


def agreement_payload(trigger: str, fx: AgreementFixture) -> dict[str, Any]:
    task: dict[str, dict[str, Any]] = {  # task-specific agreements
        "start_task_agreement": {"task_agreement": fx.id}, "framework_terminated": {"framework": fx.id},
        "continue_alone": {"reason": "Jatketaan omana sopimuksenaan"}}
    if trigger in task:
        return task[trigger]
    return {"revise": {"version": 2, "sha256": SHA}, "require_renegotiation": {"party": fx.keys[0]},
            "enter_into_force": {"sha256": SHA}, "reopen": {"party": fx.keys[0], "claim_id": 1},
            "terminate": {"reason": "Korvattu", "end_date": "2026-12-31"}}.get(trigger, {})


def party_payload(trigger: str, actor: Actor) -> dict[str, Any]:
    decision = {"decision_id": 1, "body": "Kunnanhallitus", "decided_on": "2026-03-02", "section": "§ 58"}
    outcome = {"claim_id": 1, "outcome": "rejected", "outcome_on": "2026-03-02"}
    return {"approve": decision, "decline": decision, "reinvite": {"sha256": SHA},
            "record_publication": {"decision_id": 1},
            "record_claim": {"claim_id": 1, "decision_id": 1, "kind": "rectification", "claimant": "Matti",
                             "filed_on": "2026-03-02"},
            "uphold_claim": {**outcome, "outcome": "upheld"}, "settle_claim": outcome,
            "sign": {"signature_id": 1, "signatory": actor.person_id or 0}}.get(trigger, {})


def add_signature(ctx: AppContext, party_id: int, person_id: int) -> Callable[[UnitOfWork], None]:
    """Store the signature row the `signatures_complete` guard counts, as the sign service does."""

    def prepare(uow: UnitOfWork) -> None:
        parent = uow.case(uow.case(party_id).parent_id or 0)
        uow.session.add(Signature(party_case_id=party_id, person_id=person_id,
                                  document_version_id=parent.data["document_version_id"],
                                  document_sha256=parent.data["sha256"], signed_at=uow.now))
        uow.session.flush()
    return prepare


# -- the tables ---------------------------------------------------------------------------------------------


def test_tables_cover_every_state_and_trigger(ctx: AppContext) -> None:
    for name, table, triggers in (("agreement", AGREEMENT, AGREEMENT_TRIGGERS),
                                  ("agreement_party", PARTY, PARTY_TRIGGERS)):
        defn = ctx.registry.machine(name).definition
        assert {s.partition("@")[0] for s in table} == set(defn.states)
        assert set(triggers) == {t.trigger for t in defn.transitions}


@pytest.mark.parametrize("state", list(AGREEMENT))
def test_agreement_table(world: World, state: str) -> None:
    ctx = world.ctx
    fx = agreement_in(world, state)
    actors = world.actors(fx)
    rows = AGREEMENT[state]
    before = event_count(ctx)
    for trigger in AGREEMENT_TRIGGERS:
        for actor_name in AGREEMENT_ACTORS:
            expected = rows.get(trigger, {}).get(actor_name, IT)
            result = attempt(ctx, fx.id, trigger, actors[actor_name], agreement_payload(trigger, fx))
            check(result, expected, permitted(rows, actor_name), f"agreement {state} {trigger} by {actor_name}")
    assert event_count(ctx) == before  # every row was rolled back
    assert state_of(ctx, fx.id) == state


@pytest.mark.parametrize("label", list(PARTY))
def test_party_table(world: World, label: str) -> None:
    ctx = world.ctx
    fx, party_id = party_in(world, label)
    actors = world.actors(fx)
    rows = PARTY[label]
    signer = fx.signatories[fx.keys[0]][0].id
    before = event_count(ctx)
    for trigger in PARTY_TRIGGERS:
        for actor_name in PARTY_ACTORS:
            actor = actors[actor_name]
            expected = rows.get(trigger, {}).get(actor_name, IT)
            # the row the sign service would store first; whether the actor may sign is the engine's call
            prepare = add_signature(ctx, party_id, signer) if trigger == "sign" and "sign" in rows else None
            result = attempt(ctx, party_id, trigger, actor, party_payload(trigger, actor), prepare)
            check(result, expected, permitted(rows, actor_name),
                  f"agreement_party {label} {trigger} by {actor_name}")
    assert event_count(ctx) == before
    assert state_of(ctx, party_id) == label.partition("@")[0]


def test_a_signature_short_of_the_required_keeps_the_party_approved(world: World) -> None:
    ctx = world.ctx
    fx = world.agreement(signatures=2)
    key = fx.keys[0]
    decide(ctx, fx, key)
    party_id = party_case_id(ctx, fx, key)
    first, second = fx.signatories[key]
    result = attempt(ctx, party_id, "sign", first.actor, party_payload("sign", first.actor),
                     add_signature(ctx, party_id, first.id))
    assert result == "approved"  # the internal SignatureAdded transition
    sign(ctx, fx, key, 0)
    assert state_of(ctx, party_id) == "approved"
    sign(ctx, fx, key, 1)
    assert state_of(ctx, party_id) == "signed"
    events = ctx.engine.run(lambda uow: uow.session.execute(
        select(Event.name).where(Event.case_id == party_id).order_by(Event.seq)).scalars().all())
    assert events == ["Created", "PartyApproved", "SignatureAdded", "PartySigned"]


def test_parent_reacts_in_the_same_transaction(world: World) -> None:
    ctx = world.ctx
    fx = world.agreement()
    decide(ctx, fx, fx.keys[0], "declined")
    assert state_of(ctx, fx.id) == "needs_renegotiation"
    fx2 = world.agreement()
    for key in fx2.keys:
        decide(ctx, fx2, key)
        sign(ctx, fx2, key)
    assert state_of(ctx, fx2.id) == "in_force"


def test_revision_voids_decisions_and_reinvites_every_party(world: World) -> None:
    ctx = world.ctx
    fx = world.agreement()
    first, second = fx.keys
    decide(ctx, fx, first)
    sign(ctx, fx, first)
    decide(ctx, fx, second, "declined")
    assert state_of(ctx, fx.id) == "needs_renegotiation"
    ctx.engine.run(lambda uow: service.revise(uow, fx.id, DocumentIn(text="# Uusi teksti\n"),
                                              world.coordinator.actor))
    assert state_of(ctx, fx.id) == "circulating"
    assert [state_of(ctx, party_case_id(ctx, fx, k)) for k in fx.keys] == ["invited", "invited"]


def test_round_trip_reloads_mid_flow_and_continues(world: World) -> None:
    """Stop half-way, build a new service (new engines, new registry, nothing in memory) and finish there."""
    ctx = world.ctx
    fx = world.agreement(parties=4)
    for key in fx.keys[:2]:
        decide(ctx, fx, key)
        sign(ctx, fx, key)
    decide(ctx, fx, fx.keys[2])
    first_db = ctx.db
    fresh = build_context(ctx.settings, clock=ctx.clock, db=make_database(ctx.db.url))
    try:
        assert fresh.registry is not ctx.registry and fresh.db is not first_db
        assert state_of(fresh, fx.id) == "circulating"
        assert [state_of(fresh, party_case_id(fresh, fx, k)) for k in fx.keys] == [
            "signed", "signed", "approved", "invited"]
        sign(fresh, fx, fx.keys[2])
        decide(fresh, fx, fx.keys[3])
        sign(fresh, fx, fx.keys[3])
        assert state_of(fresh, fx.id) == "in_force"
        with Session(fresh.db.engine) as session:
            _cases, _events, problems = verify_all(session)
            names = session.execute(select(Event.name).where(Event.case_id == fx.id)
                                    .order_by(Event.seq)).scalars().all()
        assert problems == []
        assert names == ["Created", "AgreementCirculated", "AgreementEnteredIntoForce"]
    finally:
        fresh.db.dispose()
