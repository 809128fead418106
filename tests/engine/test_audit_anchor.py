"""The complete, anchored audit: the records beside the log checked against their events, and checkpoints.

Which tampering is found how:
- found with or without the key: a text, a decision (body, §, outcome), a signature's person, a substitute's record
  or its delegation edited, added or deleted beside its event (the events keep the truth; `audit verify` compares).
- found only with the key (stored checkpoints) or a checkpoint exported earlier: a chain recomputed after an edit
  of both record and event, a case's last event deleted and the head fixed, a whole agreement deleted. Without
  either, verify passes them: each test below asserts exactly that too.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, text
from sqlmodel import Session
from typer.testing import CliRunner

from api.cli import app as cli
from api.context import AppContext
from api.schema import metadata
from api.web.delegation import acting_actor, create_delegation, wire
from engine.anchor import Anchor, build_checkpoint
from engine.audit import AuditProblem, Checkpoint, NoTrustedCheckpoint, canonical_json, event_hash, verify_all
from engine.calendar import HELSINKI
from engine.clock import ManualClock
from engine.db import Database
from engine.models import Person
from engine.settings import get_settings
from tests.conftest import context_for
from tests.support.builders import AgreementFixture, User, create_agreement, make_user
from workflows.agreement import cases, service
from workflows.agreement.schemas import DecisionIn

KEY = "k" * 40


@pytest.fixture
def keyed(database: Database, clock: ManualClock) -> AppContext:
    """A service with an audit key, as production should run (the key only in the settings, never in the database)."""
    ctx = context_for(database, clock, audit_key=KEY)
    wire(ctx.registry)
    return ctx


@pytest.fixture
def plain(database: Database, clock: ManualClock) -> AppContext:
    """The same database read without the key."""
    ctx = context_for(database, clock)
    wire(ctx.registry)
    return ctx


class World:
    """An agreement in force: party 0 decided and signed by a substitute of its signatory, party 1 by itself."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        fx = create_agreement(ctx, parties=2, signatures=1)
        self.fx: AgreementFixture = fx
        self.sub_key, self.own_key = fx.keys
        self.principal: User = fx.signatories[self.sub_key][0]
        self.substitute = make_user(ctx, org_key=self.sub_key, roles="", name="Sijainen Saarinen")
        today = ctx.clock.now().astimezone(HELSINKI).date()

        def delegate(uow: Any) -> int:
            person = uow.session.get(Person, self.principal.id)
            return int(create_delegation(uow.session, principal=person, substitute_email=self.substitute.person.email,
                                         starts_on=today, ends_on=today + timedelta(days=7), note=None, today=today,
                                         now=uow.now).id or 0)

        self.delegation_id = ctx.engine.run(delegate)
        with Session(ctx.db.engine) as session:
            acting = acting_actor(session, self.substitute.actor, self.principal.id, today)
        body = DecisionIn(outcome="approved", body="Kunnanhallitus", decided_on=today, section="58")
        ctx.engine.run(lambda uow: service.decide(uow, fx.id, self.sub_key, body, acting))
        ctx.engine.run(lambda uow: service.sign(uow, fx.id, self.sub_key, acting))
        own = fx.signatories[self.own_key][0]
        ctx.engine.run(lambda uow: service.decide(uow, fx.id, self.own_key, body.model_copy(
            update={"body": "Kunnanvaltuusto", "section": "12"}), own.actor))
        ctx.engine.run(lambda uow: service.sign(uow, fx.id, self.own_key, own.actor))
        self.in_request = self.q("SELECT count(*) FROM audit_checkpoint")[0][0]
        assert ctx.anchor is not None and ctx.anchor.catch_up() == 1  # the leader's checkpoint job, after it
        self.sub_party = self.party(self.sub_key)
        self.own_party = self.party(self.own_key)

    def party(self, key: str) -> int:
        return int(self.ctx.engine.run(lambda uow: cases.party_case(uow, self.fx.id, key).id))

    def q(self, sql: str, **params: Any) -> list[Any]:
        with self.ctx.db.engine.connect() as conn:
            return list(conn.execute(text(sql), params).all())


@pytest.fixture
def world(keyed: AppContext) -> World:
    return World(keyed)


def verify(ctx: AppContext, conn: Connection | None = None, **kwargs: Any) -> list[AuditProblem]:
    if conn is None:
        with Session(ctx.db.engine) as session:
            return verify_all(session, checks=ctx.registry.audit_checks, **kwargs).problems
    with Session(bind=conn) as session:
        return verify_all(session, checks=ctx.registry.audit_checks, **kwargs).problems


def after(ctx: AppContext, tamper: Callable[[Connection], None], **kwargs: Any) -> list[AuditProblem]:
    """Tamper in a transaction, verify inside it, roll back."""
    with ctx.db.engine.connect() as conn:
        trans = conn.begin()
        try:
            tamper(conn)
            return verify(ctx, conn, **kwargs)
        finally:
            trans.rollback()


def sql(statement: str, **params: Any) -> Callable[[Connection], None]:
    def tamper(conn: Connection) -> None:
        conn.execute(text(statement), params)
    return tamper


# -- an untouched log, and the checkpoint written at entry into force -------------------------------------------


def test_entry_into_force_writes_a_signed_checkpoint_and_everything_verifies(world: World, plain: AppContext) -> None:
    state = world.q('SELECT state FROM "case" WHERE id = :id', id=world.fx.id)[0][0]
    assert world.ctx.registry.machine("agreement").definition.has_tag(state, "anchor")
    assert world.in_request == 0  # the request that put it into force did not hash the log; the job did
    rows = world.q("SELECT seq, reason, cases, events, mac FROM audit_checkpoint")
    assert len(rows) == 1 and "AgreementEnteredIntoForce" in rows[0][1] and len(rows[0][4]) == 64
    assert rows[0][2] == world.q('SELECT count(*) FROM "case"')[0][0]
    assert rows[0][3] == world.q("SELECT count(*) FROM event")[0][0]
    assert verify(world.ctx, key=KEY.encode()) == []
    assert verify(plain) == []
    # the key itself is nowhere in the database
    for table in metadata().sorted_tables:
        for row in world.q(f'SELECT * FROM "{table.name}"'):
            assert not any(isinstance(v, str) and KEY in v for v in row), table.name


# -- found with and without the key: a record beside the log edited, added or deleted -------------------------

RECORD_TAMPERING: dict[str, str] = {
    "text edited": "UPDATE document_version SET text = text || ' (muutettu)'",
    "text and its sha256 replaced consistently": "UPDATE document_version SET text = :text, sha256 = :sha",
    "decision body edited": "UPDATE decision SET body = 'Kunnanvaltuusto' WHERE body = 'Kunnanhallitus'",
    "decision section edited": "UPDATE decision SET section = '§ 59' WHERE section = '§ 58'",
    "decision outcome edited": "UPDATE decision SET outcome = 'declined' WHERE section = '§ 12'",
    "decision deleted": "DELETE FROM decision WHERE section = '§ 12'",
    "signature moved to another person": "UPDATE signature SET person_id = :other WHERE on_behalf_of_person_id IS NULL",
    "signature's substitute erased": "UPDATE signature SET on_behalf_of_person_id = NULL",
    "signature deleted": "DELETE FROM signature WHERE on_behalf_of_person_id IS NULL",
    "substitute's principal changed": "UPDATE delegated_act SET principal_id = :other",
    "substitute's act deleted": "DELETE FROM delegated_act",
    "decision's substitute erased": "UPDATE decision SET on_behalf_of_person_id = NULL",
    "delegation period moved": "UPDATE delegation SET starts_on = :later, ends_on = :later",
    "document version added": "INSERT INTO document_version (case_id, number, text, sha256, created_at) "
                              "SELECT case_id, 2, :text, :sha, created_at FROM document_version",
}


@pytest.mark.parametrize("name", sorted(RECORD_TAMPERING))
def test_a_record_edited_beside_its_event_is_found_with_and_without_the_key(world: World, plain: AppContext,
                                                                         name: str) -> None:
    params = {"other": world.fx.coordinator.id, "text": "Toinen teksti\n",
              "sha": service.sha256_text("Toinen teksti\n"),
              "later": (world.ctx.clock.now() + timedelta(days=30)).date().isoformat()}
    tamper = sql(RECORD_TAMPERING[name], **params)
    without = after(plain, tamper)
    with_key = after(world.ctx, tamper, key=KEY.encode())
    assert without, f"{name}: not found without the key"
    assert with_key, f"{name}: not found with the key"
    assert all(p.case_id in (world.fx.id, world.sub_party, world.own_party) for p in without), without


# -- found only with the key or a checkpoint ----------------------------------------------------------------------


def rechain(conn: Connection, case_id: int, edit: Callable[[dict[str, Any]], None]) -> None:
    """Rewrite a case's events (an edit of their payloads) and recompute every hash and the head, as an attacker
    with write access to the database can."""
    rows = conn.execute(text("SELECT * FROM event WHERE case_id = :c ORDER BY seq"), {"c": case_id}).mappings().all()
    prev = "0" * 64
    for row in rows:
        payload = json.loads(row["payload"])
        edit(payload)
        payload_json = canonical_json(payload)
        at = row["at"] if isinstance(row["at"], datetime) else datetime.fromisoformat(row["at"])
        at = at.replace(tzinfo=UTC) if at.tzinfo is None else at
        digest = event_hash(case_id=case_id, seq=row["seq"], at=at, actor_id=row["actor_id"],
                            on_behalf_of_id=row["on_behalf_of_id"], trigger=row["trigger"], name=row["name"],
                            from_state=row["from_state"], to_state=row["to_state"], payload_json=payload_json,
                            document_hash=row["document_hash"], prev_hash=prev)
        conn.execute(text("UPDATE event SET payload = :p, prev_hash = :prev, hash = :h WHERE id = :id"),
                     {"p": payload_json, "prev": prev, "h": digest, "id": row["id"]})
        prev = digest
    conn.execute(text('UPDATE "case" SET head_hash = :h WHERE id = :c'), {"h": prev, "c": case_id})


def forge_decision(world: World) -> Callable[[Connection], None]:
    """Change the decision's § in the record *and* in its event, and recompute the party's chain."""
    def tamper(conn: Connection) -> None:
        conn.execute(text("UPDATE decision SET section = '§ 99' WHERE party_case_id = :c"), {"c": world.own_party})

        def edit(payload: dict[str, Any]) -> None:
            if payload.get("section"):
                payload["section"] = "§ 99"
        rechain(conn, world.own_party, edit)
    return tamper


def truncate(world: World) -> Callable[[Connection], None]:
    """Delete the party's last event (its signature) and the signature, and fix the head and count."""
    def tamper(conn: Connection) -> None:
        last = conn.execute(text("SELECT id, seq, prev_hash FROM event WHERE case_id = :c ORDER BY seq DESC"),
                            {"c": world.own_party}).first()
        assert last is not None
        conn.execute(text("DELETE FROM signature WHERE party_case_id = :c"), {"c": world.own_party})
        conn.execute(text("DELETE FROM event WHERE id = :id"), {"id": last.id})
        conn.execute(text('UPDATE "case" SET event_count = :n, head_hash = :h WHERE id = :c'),
                     {"n": last.seq - 1, "h": last.prev_hash, "c": world.own_party})
    return tamper


def delete_agreement(world: World) -> Callable[[Connection], None]:
    """Delete the agreement, its parties and everything that refers to them, table by table."""
    def tamper(conn: Connection) -> None:
        cases = [world.sub_party, world.own_party, world.fx.id]
        doomed: dict[str, list[int]] = {"case": cases}
        doomed["event"] = [r[0] for r in conn.execute(text("SELECT id FROM event WHERE case_id IN (:a, :b, :c)"),
                                                     dict(zip("abc", cases, strict=True)))]
        doomed["timer"] = [r[0] for r in conn.execute(text("SELECT id FROM timer WHERE case_id IN (:a, :b, :c)"),
                                                     dict(zip("abc", cases, strict=True)))]
        for table in reversed(metadata().sorted_tables):
            if table.name == "case":
                continue
            for fk in table.foreign_keys:
                target = fk.column.table.name
                if target in doomed and doomed[target] and fk.parent.name != "parent_id":
                    ids = ", ".join(str(i) for i in doomed[target])
                    conn.execute(text(f'DELETE FROM "{table.name}" WHERE "{fk.parent.name}" IN ({ids})'))
        for cid in cases:
            conn.execute(text('DELETE FROM "case" WHERE id = :id'), {"id": cid})
    return tamper


KEY_ONLY = {"recomputed chain": forge_decision, "truncated case": truncate, "deleted agreement": delete_agreement}


@pytest.mark.parametrize("name", sorted(KEY_ONLY))
def test_a_rewrite_that_recomputes_the_hashes_is_found_only_with_the_key(world: World, plain: AppContext,
                                                                        name: str) -> None:
    tamper = KEY_ONLY[name](world)
    assert after(plain, tamper) == [], f"{name}: the chain alone cannot see this (so the test is honest)"
    found = after(world.ctx, tamper, key=KEY.encode())
    assert any("checkpoint #1" in p.problem for p in found), found


@pytest.mark.parametrize("name", sorted(KEY_ONLY))
def test_a_checkpoint_exported_earlier_finds_it_without_the_key(world: World, plain: AppContext, name: str) -> None:
    exported = Checkpoint.from_json(build_checkpoint(world.ctx.engine, "export", None).to_json())
    assert exported.mac is None  # without a key: unsigned, not stored, trusted as the file kept elsewhere
    tamper = KEY_ONLY[name](world)
    found = after(plain, tamper, checkpoint=exported)
    assert any("checkpoint file" in p.problem for p in found), found
    assert after(plain, lambda conn: None, checkpoint=exported) == []


def test_a_forged_or_deleted_checkpoint_is_found_with_the_key(world: World) -> None:
    build_checkpoint(world.ctx.engine, "second", KEY.encode())
    build_checkpoint(world.ctx.engine, "third", KEY.encode())
    forged = after(world.ctx, sql("UPDATE audit_checkpoint SET cases = cases + 1 WHERE seq = 3"), key=KEY.encode())
    assert any("#3: its signature does not match" in p.problem for p in forged), forged
    gap = after(world.ctx, sql("DELETE FROM audit_checkpoint WHERE seq = 2"), key=KEY.encode())
    assert any("does not follow #1" in p.problem for p in gap), gap
    wrong_key = after(world.ctx, lambda conn: None, key=b"x" * 40)
    assert any("none of the 3 stored checkpoints is signed with this key" in p.problem for p in wrong_key)
    first_deleted = after(world.ctx, sql("DELETE FROM audit_checkpoint WHERE seq = 1"), key=KEY.encode())
    assert any("#2 does not follow the first of this key" in p.problem for p in first_deleted), first_deleted


def test_after_a_key_rotation_the_new_key_anchors_and_the_old_rows_are_only_noted(world: World) -> None:
    new_key = b"n" * 40
    build_checkpoint(world.ctx.engine, "rotated", new_key)
    with Session(world.ctx.db.engine) as session:
        report = verify_all(session, checks=world.ctx.registry.audit_checks, key=new_key)
    assert report.problems == [] and report.anchor is not None and report.anchor.seq == 2
    assert any("1 stored checkpoints are signed with another" in n for n in report.notes)
    assert any("checkpoint #2" in p.problem for p in after(world.ctx, truncate(world), key=new_key))


# -- since a checkpoint -----------------------------------------------------------------------------------------


def test_since_re_hashes_only_what_came_after_and_still_finds_a_rewrite_before(world: World) -> None:
    key = KEY.encode()
    newer = create_agreement(world.ctx, parties=1, signatures=1)
    with Session(world.ctx.db.engine) as session:
        report = verify_all(session, checks=world.ctx.registry.audit_checks, key=key, since=True)
    assert report.problems == []
    assert report.cases == 2  # the new agreement and its party: the cases before are covered by the digest
    old_edit = sql("UPDATE event SET payload = :p WHERE case_id = :c AND seq = 1", p='{"x":1}', c=world.own_party)
    assert after(world.ctx, old_edit, key=key, since=True) == []  # an old event edited in place: full verify only
    assert after(world.ctx, old_edit, key=key)
    new_edit = sql("UPDATE event SET payload = :p WHERE case_id = :c AND seq = 1", p='{"x":1}', c=newer.id)
    assert after(world.ctx, new_edit, key=key, since=True)
    for name, make in KEY_ONLY.items():
        assert after(world.ctx, make(world), key=key, since=True), name


def test_since_needs_a_trusted_checkpoint(plain: AppContext) -> None:
    create_agreement(plain, parties=1)
    with Session(plain.db.engine) as session, pytest.raises(NoTrustedCheckpoint):
        verify_all(session, since=True)


def test_an_entry_into_force_is_anchored_by_the_next_leader_after_a_crash_and_only_once(world: World) -> None:
    # as if the leader died after the commit and before its job ran: a new process's Anchor finds it in the log
    with world.ctx.db.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_checkpoint"))
    fresh = Anchor(world.ctx.engine, KEY.encode())
    assert fresh.catch_up() == 1
    rows = world.q("SELECT reason, last_event_id FROM audit_checkpoint")
    assert len(rows) == 1 and rows[0][0] == f"agreement {world.fx.id} AgreementEnteredIntoForce"
    assert rows[0][1] == world.q("SELECT max(id) FROM event")[0][0]
    # covered now: neither this process nor another one writes it again, however often the job runs
    assert fresh.catch_up() == 0 and Anchor(world.ctx.engine, KEY.encode()).catch_up() == 0
    assert world.ctx.anchor is not None and world.ctx.anchor.catch_up() == 0
    assert len(world.q("SELECT reason FROM audit_checkpoint")) == 1


def test_the_checkpoint_job_anchors_entries_since_the_newest_checkpoint(keyed: AppContext) -> None:
    anchor = keyed.anchor
    assert isinstance(anchor, Anchor)
    assert anchor.daily() == 1  # the first daily checkpoint; no entry into force yet
    World(keyed)  # its own catch_up anchors the entry into force
    assert anchor.daily() == 0  # covered, and the daily one is not due
    with keyed.db.engine.connect() as conn:
        reasons = [r[0] for r in conn.execute(text("SELECT reason FROM audit_checkpoint ORDER BY seq"))]
    assert reasons[0] == "daily" and reasons[1].endswith("AgreementEnteredIntoForce") and len(reasons) == 2


# -- daily ------------------------------------------------------------------------------------------------------


def test_the_daily_job_writes_one_checkpoint_a_day(keyed: AppContext, clock: ManualClock) -> None:
    anchor = keyed.anchor
    assert isinstance(anchor, Anchor)
    create_agreement(keyed, parties=1)
    assert anchor.daily() == 1
    clock.advance(timedelta(hours=23))
    assert anchor.daily() == 0
    clock.advance(timedelta(hours=1, minutes=1))
    assert anchor.daily() == 1
    with keyed.db.engine.connect() as conn:
        assert [r[0] for r in conn.execute(text("SELECT reason FROM audit_checkpoint ORDER BY seq"))] == ["daily"] * 2
    assert "checkpoint_job" in [job.__name__ for job in keyed.scheduler_jobs()]


# -- the command line ---------------------------------------------------------------------------------------------


@pytest.fixture
def run_cli(world: World, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Callable[..., Any]]:
    monkeypatch.setenv("VUOSIKELLO_DATABASE_URL", world.ctx.db.url)
    monkeypatch.delenv("VUOSIKELLO_AUDIT_KEY", raising=False)
    get_settings.cache_clear()
    runner = CliRunner()
    yield lambda *args: runner.invoke(cli, list(args))
    get_settings.cache_clear()


def test_cli_exports_a_checkpoint_and_verifies_against_it(world: World, run_cli: Callable[..., Any],
                                                          tmp_path: Path) -> None:
    key_file = tmp_path / "audit.key"
    key_file.write_text(KEY + "\n")
    out = tmp_path / "cp.json"
    made = run_cli("audit", "checkpoint", "--out", str(out), "--key-file", str(key_file))
    assert made.exit_code == 0, (made.stdout, made.stderr, made.exception)
    cp = Checkpoint.from_json(out.read_text())
    assert cp.seq == 2 and cp.mac and cp.cases == world.q('SELECT count(*) FROM "case"')[0][0]
    ok = run_cli("audit", "verify", "--checkpoint", str(out))
    assert ok.exit_code == 0 and "0 problems" in ok.stdout and "signature not checked" in ok.stdout
    assert run_cli("audit", "verify", "--since").exit_code == 2  # no key, no file: nothing to start from
    since = run_cli("audit", "verify", "--checkpoint", str(out), "--since", "--key-file", str(key_file))
    assert since.exit_code == 0 and "checked 0 cases" in since.stdout
    with world.ctx.db.engine.begin() as conn:
        truncate(world)(conn)
    assert run_cli("audit", "verify").exit_code == 0  # the chain alone: passes
    bad = run_cli("audit", "verify", "--checkpoint", str(out))
    assert bad.exit_code == 1 and "TAMPERED  log: checkpoint file #2" in bad.stderr
    assert run_cli("audit", "verify", "--key-file", str(key_file)).exit_code == 1
