"""Approvals per second: Vuosikello's 25-party framework agreement against SpiffWorkflow 3.x, SQLite and PostgreSQL.

One approval is a party's decision and its signature, persisted. The project's side runs the service calls an API
request runs, one unit of work each: `decide` (body, date, §, minutes address) and then `sign` for each of the 25
parties of a circulating agreement; the last signature puts the agreement into force (its 26 emails queued, its
audit checkpoint signed with a key). SpiffWorkflow runs the same agreement in two models (the BPMN files are in
bench/bpmn/, for anyone to check the peer is fair):

- natural: a parallel multi-instance sub-process over the 25 parties, a `decide` user task then a `sign` user task
  in each instance, and a script task putting the agreement into force when all are done;
- one task: a parallel multi-instance user task, one per party, completed once with decision and signature.

After every completed task the whole workflow is serialised (BpmnWorkflowSerializer, JSON) and stored in the same
kind of database (one row per workflow, UPDATE and COMMIT: bare sqlite3 in WAL mode with synchronous=NORMAL as the
engine configures SQLite, or bare psycopg). Setting an agreement up (people, the agreement, circulation; for Spiff
the workflow's creation) is not timed. Rounds alternate between the three in one process; each ratio is the median
of the per-round ratios project/peer (not best against best). The PostgreSQL part uses only
VUOSIKELLO_BENCH_PG_URL (a database the bench user created: its tables are dropped and recreated) and is skipped
with a note when it is unset.

    .venv/bin/python -m bench.approvals [--rounds 7] [--json FILE] [--no-postgres] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench.common import fresh_postgres, fresh_sqlite, machine_facts, print_facts, psycopg_url

BPMN = Path(__file__).resolve().parent / "bpmn"
PARTIES = 25
AUDIT_KEY = "bench-audit-key-" + "0" * 32
LANGUAGES = ("fi", "sv", "en")


def _load() -> str:
    return "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


# -- the project's side -----------------------------------------------------------------------------------


class Project:
    """Vuosikello's 25-party agreement on one database, driven through the service calls a request makes."""

    def __init__(self, url: str, db: Any) -> None:
        from sqlmodel import Session

        from api.context import build_context
        from engine.directory import DEFAULT_ORGANISATIONS, import_organisations
        from engine.settings import Settings

        settings = Settings(environment="development", database_url=url, admin_token=None,
                            base_url="http://127.0.0.1", scheduler_enabled=False, audit_key=AUDIT_KEY)
        self.ctx = build_context(settings, db=db)
        with Session(db.engine) as session:
            import_organisations(session, DEFAULT_ORGANISATIONS, self.ctx.clock.now())
            session.commit()

    def prepare(self) -> Callable[[], int]:
        """Create and circulate a 25-party agreement; return the timed part: every party decides and signs."""
        from engine.calendar import HELSINKI
        from tests.support.builders import create_agreement, pirkanmaa_keys
        from workflows.agreement import service
        from workflows.agreement.schemas import DecisionIn

        ctx = self.ctx
        today = ctx.clock.now().astimezone(HELSINKI).date()
        keys = pirkanmaa_keys(ctx)[:PARTIES]
        fixture = create_agreement(ctx, parties=PARTIES, deadline=today + timedelta(days=60),
                                   languages={k: LANGUAGES[i % 3] for i, k in enumerate(keys)})
        sha = ctx.engine.run(lambda uow: uow.case(fixture.id).data["sha256"])
        plan = []
        for i, key in enumerate(fixture.keys):
            signer = fixture.signatories[key][0].actor
            body = DecisionIn(outcome="approved", body="Kunnanhallitus", decided_on=today, section=f"§ {40 + i}",
                              minutes_url=f"https://example.fi/poytakirjat/{40 + i}", document_sha256=sha)
            plan.append((key, signer, body))

        def run() -> int:
            for key, signer, body in plan:
                ctx.engine.run(lambda uow, k=key, s=signer, b=body: service.decide(uow, fixture.id, k, b, s))
                ctx.engine.run(lambda uow, k=key, s=signer: service.sign(uow, fixture.id, k, s, sha))
            return len(plan)

        self.last_agreement = fixture.id
        return run

    def check(self) -> None:
        """Fail loudly unless the last agreement is in force with its mail queued (a broken bench is no figure)."""
        from sqlalchemy import func, select

        from engine.models import OutboxMessage

        def read(uow: Any) -> tuple[str, int]:
            case = uow.case(self.last_agreement)
            mails = uow.session.execute(select(func.count()).select_from(OutboxMessage).where(
                OutboxMessage.case_id == case.id)).scalar_one()  # type: ignore[arg-type]
            return case.state, int(mails)

        state, mails = self.ctx.engine.run(read)
        if not self.ctx.registry.machine("agreement").definition.has_tag(state, "deadline_met") or mails < PARTIES + 1:
            raise SystemExit(f"the agreement ended in {state!r} with {mails} emails: the bench is broken")

    def close(self) -> None:
        self.ctx.db.dispose()


# -- SpiffWorkflow's side ---------------------------------------------------------------------------------


class SqliteStore:
    """One table of serialised workflows in a SQLite file, configured as the engine configures SQLite."""

    def __init__(self, path: Path) -> None:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON", "busy_timeout=30000"):
            self.conn.execute(f"PRAGMA {pragma}")
        self.conn.execute("CREATE TABLE spiff_workflow (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")

    def create(self, body: str) -> int:
        cur = self.conn.execute("INSERT INTO spiff_workflow (body) VALUES (?)", (body,))
        return int(cur.lastrowid or 0)

    def save(self, wid: int, body: str) -> None:
        self.conn.execute("BEGIN IMMEDIATE")
        self.conn.execute("UPDATE spiff_workflow SET body = ? WHERE id = ?", (body, wid))
        self.conn.execute("COMMIT")


class PostgresStore:
    """One table of serialised workflows in the bench's PostgreSQL database."""

    def __init__(self, url: str) -> None:
        import psycopg

        self.conn = psycopg.connect(psycopg_url(url))
        self.conn.execute("DROP TABLE IF EXISTS spiff_workflow")
        self.conn.execute("CREATE TABLE spiff_workflow (id BIGSERIAL PRIMARY KEY, body TEXT NOT NULL)")
        self.conn.commit()

    def create(self, body: str) -> int:
        row = self.conn.execute("INSERT INTO spiff_workflow (body) VALUES (%s) RETURNING id", (body,)).fetchone()
        self.conn.commit()
        return int(row[0]) if row else 0

    def save(self, wid: int, body: str) -> None:
        self.conn.execute("UPDATE spiff_workflow SET body = %s WHERE id = %s", (body, wid))
        self.conn.commit()


class Spiff:
    """One SpiffWorkflow model of the agreement, persisted after every task."""

    def __init__(self, model: str, store: SqliteStore | PostgresStore) -> None:
        from SpiffWorkflow.bpmn.parser import BpmnParser
        from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer

        parser = BpmnParser()
        parser.add_bpmn_file(str(BPMN / f"{model}.bpmn"))
        self.spec = parser.get_spec(model)
        self.subprocesses = parser.get_subprocess_specs(model)
        self.serializer = BpmnWorkflowSerializer()
        self.store = store
        self.model = model

    def prepare(self) -> Callable[[], int]:
        """Start a workflow over 25 parties and store it; return the timed part: every task, each one stored."""
        from SpiffWorkflow.bpmn import BpmnWorkflow
        from SpiffWorkflow.util.task import TaskState

        workflow = BpmnWorkflow(self.spec, self.subprocesses)
        workflow.get_tasks(state=TaskState.READY)[0].data["parties"] = [f"municipality:{i}" for i in range(PARTIES)]
        workflow.do_engine_steps()
        wid = self.store.create(self.serializer.serialize_json(workflow))
        decision = {"outcome": "approved", "body": "Kunnanhallitus", "decided_on": "2026-03-02", "section": "§ 58",
                    "minutes_url": "https://example.fi/poytakirjat/58"}
        signature = {"signatory": 1, "sha256": "ab" * 32}

        def run() -> int:
            tasks = 0
            while True:
                ready = workflow.get_tasks(state=TaskState.READY, manual=True)
                if not ready:
                    break
                task = ready[0]
                if task.task_spec.bpmn_id == "decide":
                    task.data["decision"] = dict(decision)
                elif task.task_spec.bpmn_id == "sign":
                    task.data["signature"] = dict(signature)
                else:  # the one-task model: the decision and the signature at once
                    task.data["approval"] = {"party": task.data["party"], "decision": dict(decision),
                                             "signature": dict(signature)}
                task.run()
                workflow.do_engine_steps()
                self.store.save(wid, self.serializer.serialize_json(workflow))
                tasks += 1
            if not (workflow.is_completed() and workflow.data.get("in_force")):
                raise SystemExit(f"SpiffWorkflow's {self.model} did not complete in force: the bench is broken")
            return PARTIES

        return run


# -- rounds -------------------------------------------------------------------------------------------------


def _timed(prepare: Callable[[], Callable[[], int]]) -> dict[str, float]:
    run = prepare()
    w0, c0 = time.perf_counter(), time.process_time()
    approvals = run()
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    return {"per_s": approvals / wall, "cpu_ms": 1000 * cpu / approvals}


def compare(name: str, project: Project, natural: Spiff, one_task: Spiff, rounds: int) -> dict[str, Any]:
    """Alternate rounds of the three; print and return the medians of the per-round ratios."""
    sides: dict[str, Callable[[], Callable[[], int]]] = {
        "vuosikello": project.prepare, "spiff_natural": natural.prepare, "spiff_one_task": one_task.prepare}
    for prepare in sides.values():  # warm up: imports, caches, prepared statements
        _timed(prepare)
    project.check()
    runs: dict[str, list[dict[str, float]]] = {side: [] for side in sides}
    order = list(sides)
    load_start = _load()
    for i in range(rounds):
        for side in order if i % 2 == 0 else order[::-1]:
            runs[side].append(_timed(sides[side]))
        print(f"  {name} round {i + 1}: " + "   ".join(
            f"{side} {runs[side][-1]['per_s']:6.1f}/s ({runs[side][-1]['cpu_ms']:.2f} ms CPU)" for side in order))
    project.check()
    ratio = statistics.median(v["per_s"] / s["per_s"] for v, s in zip(runs["vuosikello"], runs["spiff_natural"]))
    ratio_one = statistics.median(v["per_s"] / s["per_s"]
                                  for v, s in zip(runs["vuosikello"], runs["spiff_one_task"]))
    # the same by this process's CPU time (steadier on a loaded machine; on PostgreSQL the server's work is not in it)
    ratio_cpu = statistics.median(s["cpu_ms"] / v["cpu_ms"] for v, s in zip(runs["vuosikello"], runs["spiff_natural"]))
    ratio_one_cpu = statistics.median(s["cpu_ms"] / v["cpu_ms"]
                                      for v, s in zip(runs["vuosikello"], runs["spiff_one_task"]))
    result: dict[str, Any] = {
        "ratio": round(ratio, 3), "ratio_one_task": round(ratio_one, 3),
        "ratio_cpu": round(ratio_cpu, 3), "ratio_one_task_cpu": round(ratio_one_cpu, 3),
        **{f"{side}_per_s": round(statistics.median(r["per_s"] for r in runs[side]), 1) for side in order},
        **{f"{side}_cpu_ms": round(statistics.median(r["cpu_ms"] for r in runs[side]), 2) for side in order},
        "rounds": {side: [round(r["per_s"], 1) for r in runs[side]] for side in order},
        "load_start": load_start, "load_end": _load(),
    }
    print(f"  {name:<10} vuosikello {result['vuosikello_per_s']:6.1f} approvals/s "
          f"({result['vuosikello_cpu_ms']:.2f} ms CPU)   spiff natural {result['spiff_natural_per_s']:6.1f}/s   "
          f"spiff one task {result['spiff_one_task_per_s']:6.1f}/s   ratio {ratio:.2f}x   one-task ratio "
          f"{ratio_one:.2f}x   (medians of per-round ratios; load {load_start} -> {result['load_end']})")
    print(f"  {'':<10} by CPU time of this process: ratio {ratio_cpu:.2f}x   one-task ratio {ratio_one_cpu:.2f}x")
    return result


def bench_sqlite(workdir: Path, rounds: int) -> dict[str, Any]:
    """Compare on SQLite files: one for the project, one for SpiffWorkflow's rows."""
    path = workdir / "project.db"
    project = Project(f"sqlite:///{path}", fresh_sqlite(path))
    store = SqliteStore(workdir / "spiff.db")
    try:
        return compare("sqlite", project, Spiff("agreement_natural", store), Spiff("agreement_one_task", store),
                       rounds)
    finally:
        project.close()
        store.conn.close()


def bench_postgres(url: str, rounds: int) -> dict[str, Any] | None:
    """Compare on the bench's PostgreSQL database (both sides in it, disjoint tables)."""
    db = fresh_postgres(url)
    if db is None:
        return None
    project = Project(url, db)
    store = PostgresStore(url)
    try:
        return compare("postgresql", project, Spiff("agreement_natural", store), Spiff("agreement_one_task", store),
                       rounds)
    finally:
        project.close()
        store.conn.close()


def profile(workdir: Path, rounds: int) -> None:
    """Print the project's approval path on SQLite, by cumulative and own time."""
    path = workdir / "profile.db"
    project = Project(f"sqlite:///{path}", fresh_sqlite(path))
    _timed(project.prepare)
    runs = [project.prepare() for _ in range(rounds)]
    profiler = cProfile.Profile()
    profiler.runcall(lambda: [run() for run in runs])
    stats = pstats.Stats(profiler).strip_dirs()
    stats.sort_stats("cumulative").print_stats(60)
    stats.sort_stats("tottime").print_stats(30)
    project.close()


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the comparison on SQLite and (when configured) PostgreSQL; print and optionally write the ratios."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--profile", action="store_true", help="profile the project's side on SQLite instead")
    args = parser.parse_args(argv)
    pg_url = os.environ.get("VUOSIKELLO_BENCH_PG_URL")
    with tempfile.TemporaryDirectory(prefix="vk-bench-approvals-") as tmp:
        if args.profile:
            profile(Path(tmp), args.rounds)
            return {}
        print(f"approvals per second ({PARTIES}-party agreement: decision + signature, persisted; "
              f"{args.rounds} rounds)")
        facts = machine_facts(None if args.no_postgres else pg_url)
        import importlib.metadata

        facts["spiffworkflow"] = importlib.metadata.version("SpiffWorkflow")
        print_facts(facts)
        results: dict[str, Any] = {"facts": facts, "load_start": _load(),
                                   "sqlite": bench_sqlite(Path(tmp), args.rounds)}
        if args.no_postgres:
            print("  PostgreSQL skipped (--no-postgres)")
        elif not pg_url:
            print("  PostgreSQL skipped: VUOSIKELLO_BENCH_PG_URL is not set (a database of your own, e.g. "
                  "createdb -h 127.0.0.1 -U postgres vk_bench_$USER)")
        else:
            results["postgresql"] = bench_postgres(pg_url, args.rounds)
        results["load_end"] = _load()
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    return results


if __name__ == "__main__":
    main()
