"""Race: 25 parties sign at one barrier from 25 threads; the agreement enters into force exactly once.

Every party has already approved and needs one signature, so the last signature to commit must move the
agreement in the same transaction, whoever it is, and no signature may be lost on the way.
"""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import date

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlmodel import col

from api.app import create_app
from api.context import AppContext
from engine.audit import verify_all
from engine.errors import Conflict
from engine.models import Case, Event
from tests.support.builders import User, make_user, pirkanmaa_keys
from workflows.agreement import service
from workflows.agreement.models import Signature
from workflows.agreement.schemas import AgreementCreate, DecisionIn, PartyIn

PARTIES = 25
DECISION = DecisionIn(outcome="approved", body="Kunnanhallitus", decided_on=date(2026, 3, 2), section="§ 58")
RETRIES = 5  # a Conflict means "the database was busy, retry": the documented answer, counted below


class Cast:
    """One coordinator and one signatory per Pirkanmaa party, reused by every round."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.coordinator = make_user(ctx, org_key="regional_council:06", roles="coordinator")
        self.keys = pirkanmaa_keys(ctx)[:PARTIES]
        assert len(self.keys) == PARTIES
        self.signers: dict[str, User] = {k: make_user(ctx, org_key=k) for k in self.keys}

    def approved_agreement(self, round_no: int) -> int:
        """Create, circulate and approve (every party) an agreement in one transaction; return its id."""
        body = AgreementCreate(title=f"Puitesopimus {round_no}", document=f"# Puitesopimus {round_no}\n",
                               deadline=date(2026, 6, 19),
                               parties=[PartyIn(organisation=k, signatories=[self.signers[k].id])
                                        for k in self.keys])

        def work(uow):  # type: ignore[no-untyped-def]
            case = service.create_agreement(uow, body, self.coordinator.actor)
            service.circulate(uow, case.id, self.coordinator.actor)
            for key in self.keys:
                service.decide(uow, case.id, key, DECISION, self.signers[key].actor)
            return case.id

        return int(self.ctx.engine.run(work))


def check_in_force_once(ctx: AppContext, agreement_id: int) -> None:
    """Assert one in-force transition, 25 signed parties with one live signature each, and an ordered log."""
    with ctx.db.read_session() as s:
        agreement = s.get(Case, agreement_id)
        assert agreement is not None and agreement.state == "in_force"
        parties = s.execute(select(Case).where(Case.parent_id == agreement_id)).scalars().all()
        assert [p.state for p in parties] == ["signed"] * PARTIES
        ids = [p.id for p in parties]
        per_party = Counter(s.execute(select(Signature.party_case_id).where(
            col(Signature.party_case_id).in_(ids), col(Signature.voided_at).is_(None))).scalars())
        assert per_party == Counter({i: 1 for i in ids}), "a signature was lost or doubled"
        names = s.execute(select(Event.name).where(Event.case_id == agreement_id)
                          .order_by(col(Event.seq))).scalars().all()
        assert names == ["Created", "AgreementCirculated", "AgreementEnteredIntoForce"]
        seqs = s.execute(select(Event.case_id, func.count(), func.max(Event.seq)).where(
            col(Event.case_id).in_([agreement_id, *ids])).group_by(col(Event.case_id))).all()
        assert all(n == top for _cid, n, top in seqs)  # contiguous 1..n (unique (case_id, seq))
        signed_events = s.execute(select(func.count()).select_from(Event).where(
            col(Event.case_id).in_(ids), Event.name == "PartySigned")).scalar_one()
        assert signed_events == PARTIES


def race(pool: ThreadPoolExecutor, cast: Cast, sign_one) -> tuple[Counter[str], int]:  # type: ignore[no-untyped-def]
    """Release 25 signers at once; return what each got and how many retries the database asked for."""
    barrier = threading.Barrier(PARTIES)
    retries = Counter[str]()
    lock = threading.Lock()

    def run(key: str) -> str:
        barrier.wait(timeout=30)
        for _ in range(RETRIES):
            try:
                return str(sign_one(key))
            except Conflict:
                with lock:
                    retries["conflict"] += 1
        return "gave up"

    outcomes = Counter(pool.map(run, cast.keys))
    return outcomes, retries["conflict"]


@pytest.mark.slow
def test_signing_race_through_the_engine(ctx: AppContext) -> None:
    rounds = 50
    cast = Cast(ctx)
    total_retries = 0
    with ThreadPoolExecutor(max_workers=PARTIES) as pool:
        for round_no in range(rounds):
            agreement_id = cast.approved_agreement(round_no)

            def sign_one(key: str, agreement_id: int = agreement_id) -> str:
                record = ctx.engine.run(lambda uow: service.sign(uow, agreement_id, key, cast.signers[key].actor))
                return "signed" if record[1] else "repeat"

            outcomes, retries = race(pool, cast, sign_one)
            total_retries += retries
            assert outcomes == Counter({"signed": PARTIES}), (round_no, outcomes)
            check_in_force_once(ctx, agreement_id)
    with ctx.db.read_session() as s:
        _cases, _events, problems = verify_all(s)
        in_force = s.execute(select(func.count()).select_from(Event)
                             .where(Event.name == "AgreementEnteredIntoForce")).scalar_one()
    assert problems == []
    assert in_force == rounds
    # with row locks (PG) and BEGIN IMMEDIATE plus a busy timeout (SQLite) nobody should be told to retry
    assert total_retries == 0


@pytest.mark.slow
def test_signing_race_through_the_api_gives_no_500(ctx: AppContext) -> None:
    rounds = 5
    cast = Cast(ctx)
    with TestClient(create_app(ctx=ctx)) as client, ThreadPoolExecutor(max_workers=PARTIES) as pool:
        for round_no in range(rounds):
            agreement_id = cast.approved_agreement(round_no)

            def sign_one(key: str, agreement_id: int = agreement_id) -> str:
                r = client.post(f"/api/v1/agreements/{agreement_id}/parties/{key}/signatures",
                                headers=cast.signers[key].headers)
                assert r.status_code < 500, r.text
                return f"{r.status_code} {r.json().get('party_state', r.json().get('error'))}"

            outcomes, _ = race(pool, cast, sign_one)
            assert outcomes == Counter({"201 signed": PARTIES}), (round_no, outcomes)
            check_in_force_once(ctx, agreement_id)
            read = client.get(f"/api/v1/agreements/{agreement_id}", headers=cast.coordinator.headers).json()
            assert read["state"] == "in_force" and read["parties_signed"] == PARTIES
            assert read["in_force_sha256"] == read["document_sha256"]
