"""`audit verify` at scale on PostgreSQL: a full verification, and one `--since` the last checkpoint.

Builds, in a scratch database of its own (created here and dropped at the end), agreements in force with three
parties each, every row written set-based (`INSERT ... SELECT generate_series`), hashes computed by PostgreSQL's
sha256() exactly as engine/audit.py computes them (the full verification must find 0 problems, which proves it):
per agreement 3 events (created, circulated, in force) and one document version; per party 3 events (created,
approved, signed), a decision and a signature. Then it takes a signed checkpoint, adds `--after` more cases the
same way (the activity since), and times:

  checkpoint   build_checkpoint: the boundary, the digest of every case's head, the signed row
  since        verify_all(since=True): the digest re-derived as of the checkpoint, the heads of all cases, the
               chains and records of the cases after it, every document text re-hashed
  full         verify_all(): every chain re-hashed, every record checked against its event

    .venv/bin/python -m bench.audit_verify [--cases 1000000] [--after 4000] [--no-full]
"""

from __future__ import annotations

import argparse
import os
import time

from sqlalchemy import create_engine, make_url, text
from sqlalchemy.pool import NullPool
from sqlmodel import Session

from api.schema import metadata
from api.web.delegation import wire
from bench.common import PG_URL, machine_facts
from engine.anchor import build_checkpoint
from engine.audit import verify_all
from engine.clock import SystemClock
from engine.db import make_database
from engine.service import Engine
from workflows.registry import build_registry

KEY = b"bench-audit-key-" + b"0" * 32
PARTIES = 3
PARTY_BASE = 100_000_000  # party case ids: PARTY_BASE + 10·a + k, apart from the agreements' ids a


def H(expr: str) -> str:
    """SQL for the hex SHA-256 of a text expression's UTF-8 bytes."""
    return f"encode(sha256(convert_to({expr}, 'UTF8')), 'hex')"


def ISO(expr: str) -> str:
    """SQL for Python's isoformat() of an aware UTC timestamp without microseconds."""
    return f"(to_char({expr}, 'YYYY-MM-DD\"T\"HH24:MI:SS') || '+00:00')"


def event_insert(seq: int, cases: str, trigger: str, name: str, from_state: str | None, to_state: str,
                 payload: str, actor: str) -> str:
    """One set-based INSERT of event #seq for a set of cases (`c` rows), chained to event #seq-1 by hash."""
    prev = "repeat('0', 64)" if seq == 1 else "p.hash"
    join = "" if seq == 1 else f"JOIN event p ON p.case_id = c.id AND p.seq = {seq - 1}"
    at = f"(timestamp '2026-03-02 07:00:00' + (c.id % 86400) * interval '1 second' + interval '{seq} minute')"
    body = ("concat_ws(chr(31), c.id::text, '{seq}', {at}, {actor}, 'None', '{trigger}', '{name}', {frm}, '{to}', "
            "{payload}, c.doc_sha, {prev})").format(seq=seq, at=ISO(at), actor=actor, trigger=trigger, name=name,
                                                     frm=f"'{from_state}'" if from_state else "'None'", to=to_state,
                                                     payload=payload, prev=prev)
    return f"""
        INSERT INTO event (case_id, seq, at, actor_id, on_behalf_of_id, trigger, name, from_state, to_state,
                           payload, document_hash, prev_hash, hash)
        SELECT c.id, {seq}, {at}, NULLIF({actor}, 'None')::int, NULL, '{trigger}', '{name}',
               {f"'{from_state}'" if from_state else 'NULL'}, '{to_state}', {payload}, c.doc_sha, {prev}, {H(body)}
        FROM ({cases}) c {join} ORDER BY c.id"""


def build(conn: object, first: int, agreements: int) -> None:
    """Write `agreements` agreements in force, ids from `first`, with PARTIES parties each."""
    def run(statement: str) -> None:  # JSON's `":` would read as a bind parameter to text(): escape it
        conn.execute(text(statement.replace('":', '"\\:')))  # type: ignore[attr-defined]
    last = first + agreements - 1
    p_first, p_last = PARTY_BASE + 10 * first, PARTY_BASE + 10 * last + 9
    run(f"""
        INSERT INTO "case" (id, workflow, workflow_version, state, version, organisation_id, coordinator_id, title,
                            data, event_count, head_hash, created_at, updated_at)
        SELECT a, 'agreement', 1, 'in_force', 4, NULL, 2, 'Sopimus ' || a,
               json_build_object('sha256', {H("'Sopimuksen teksti ' || a || chr(10)")}, 'document_version', 1,
                                 'document_version_id', a), 0, '', now(), now()
        FROM generate_series({first}, {last}) a""")
    run(f"""
        INSERT INTO "case" (id, workflow, workflow_version, state, version, parent_id, organisation_id, title, data,
                            event_count, head_hash, created_at, updated_at)
        SELECT {PARTY_BASE} + 10 * a + k, 'agreement_party', 1, 'signed', 4, a, 1,
               'Sopimus ' || a || ': osapuoli ' || k,
               json_build_object('organisation_key', 'municipality:' || k, 'required_signatures', 1), 0, '',
               now(), now()
        FROM generate_series({first}, {last}) a, generate_series(1, {PARTIES}) k""")
    run(f"""
        INSERT INTO document_version (id, case_id, number, text, sha256, created_at)
        SELECT a, a, 1, 'Sopimuksen teksti ' || a || chr(10), {H("'Sopimuksen teksti ' || a || chr(10)")}, now()
        FROM generate_series({first}, {last}) a""")
    sha = H("'Sopimuksen teksti ' || a || chr(10)")
    agreements_sql = f"SELECT a AS id, {sha} AS doc_sha FROM generate_series({first}, {last}) a"
    parties_sql = (f"SELECT {PARTY_BASE} + 10 * a + k AS id, {sha} AS doc_sha FROM generate_series({first}, {last}) a, "
                   f"generate_series(1, {PARTIES}) k")
    created = f"""'{{"parties":{PARTIES},"sha256":"' || c.doc_sha || '","title":"Sopimus ' || c.id || '"}}'"""
    run(event_insert(1, agreements_sql, "create", "Created", None, "draft", created, "'1'"))
    run(event_insert(2, agreements_sql, "circulate", "AgreementCirculated", "draft", "circulating", "'{}'",
                          "'2'"))
    run(event_insert(3, agreements_sql, "enter_into_force", "AgreementEnteredIntoForce", "circulating",
                          "in_force", """'{"sha256":"' || c.doc_sha || '"}'""", "'None'"))
    party_created = """'{"organisation":"municipality:' || (c.id % 10) || '","required_signatures":1}'"""
    run(event_insert(1, parties_sql, "create", "Created", None, "invited", party_created, "'2'"))
    approved = ("""'{"body":"Kunnanhallitus","decided_on":"2026-03-02","decision_id":' || c.id || """
                """',"section":"§ 1"}'""")
    run(event_insert(2, parties_sql, "approve", "PartyApproved", "invited", "approved", approved, "'1'"))
    signed = """'{"signatory":1,"signature_id":' || c.id || '}'"""
    run(event_insert(3, parties_sql, "sign", "PartySigned", "approved", "signed", signed, "'1'"))
    run(f"""
        INSERT INTO decision (id, party_case_id, outcome, body, decided_on, section, document_version_id,
                              document_sha256, recorded_by, recorded_at)
        SELECT e.case_id, e.case_id, 'approved', 'Kunnanhallitus', date '2026-03-02', '§ 1', c.parent_id,
               e.document_hash, 1, e.at
        FROM event e JOIN "case" c ON c.id = e.case_id
        WHERE e.trigger = 'approve' AND e.case_id BETWEEN {p_first} AND {p_last}""")
    run(f"""
        INSERT INTO signature (id, party_case_id, person_id, document_version_id, document_sha256, signed_at)
        SELECT e.case_id, e.case_id, 1, c.parent_id, e.document_hash, e.at
        FROM event e JOIN "case" c ON c.id = e.case_id
        WHERE e.trigger = 'sign' AND e.case_id BETWEEN {p_first} AND {p_last}""")
    run(f"""
        UPDATE "case" c SET event_count = e.seq, head_hash = e.hash
        FROM event e WHERE e.case_id = c.id AND e.seq = 3
          AND (c.id BETWEEN {first} AND {last} OR c.id BETWEEN {p_first} AND {p_last})""")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=1_000_000, help="cases before the checkpoint")
    parser.add_argument("--after", type=int, default=4_000, help="cases added after the checkpoint")
    parser.add_argument("--no-full", action="store_true", help="skip the full verification")
    args = parser.parse_args()
    agreements = args.cases // (1 + PARTIES)
    later = max(1, args.after // (1 + PARTIES))
    if not PG_URL:
        raise SystemExit("VUOSIKELLO_BENCH_PG_URL is not set: it names the server (and a database of the benchmark's "
                         "own) where this creates and drops vk_bench_audit_<pid>")
    name = f"vk_bench_audit_{os.getpid()}"
    admin = create_engine(make_url(PG_URL).set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    db = make_database(url)
    try:
        facts = machine_facts(url)
        print("  " + ", ".join(f"{k}: {v}" for k, v in facts.items()))
        metadata().create_all(db.engine)
        t0 = time.perf_counter()
        with db.engine.begin() as conn:
            conn.execute(text("""INSERT INTO organisation (id, key, kind, code, name_fi, active, updated_at)
                                 VALUES (1, 'municipality:1', 'municipality', '1', 'Kunta', true, now())"""))
            conn.execute(text("""INSERT INTO person (id, name, email, language, organisation_id, roles, active, digest,
                                                     created_at)
                                 VALUES (1, 'Allekirjoittaja', 's@x.fi', 'fi', 1, 'signatory', true, false, now()),
                                        (2, 'Koordinaattori', 'c@x.fi', 'fi', 1, 'coordinator', true, false, now())"""))
            build(conn, 1, agreements)
        with db.engine.connect() as conn:
            conn.execute(text("ANALYZE"))
            conn.commit()
            n_cases, n_events = conn.execute(text('SELECT (SELECT count(*) FROM "case"), '
                                                  '(SELECT count(*) FROM event)')).one()
        print(f"  built {n_cases:,} cases, {n_events:,} events in {time.perf_counter() - t0:.1f} s")
        registry = build_registry()
        wire(registry)
        engine = Engine(db, registry, SystemClock())
        t0 = time.perf_counter()
        cp = build_checkpoint(engine, "bench", KEY)
        t_cp = time.perf_counter() - t0
        print(f"  checkpoint #{cp.seq}: {cp.cases:,} cases, {cp.events:,} events, {t_cp:.1f} s")
        with db.engine.begin() as conn:
            build(conn, agreements + 1, later)
        with db.engine.connect() as conn:
            conn.execute(text("ANALYZE"))
            conn.commit()
        t0 = time.perf_counter()
        with Session(db.engine) as session:
            report = verify_all(session, checks=registry.audit_checks, key=KEY, since=True)
        t_since = time.perf_counter() - t0
        assert report.problems == [], report.problems[:5]
        print(f"  verify --since checkpoint #{cp.seq}: {report.cases:,} cases re-hashed after it, "
              f"{len(report.problems)} problems, {t_since:.1f} s")
        if not args.no_full:
            t0 = time.perf_counter()
            with Session(db.engine) as session:
                full = verify_all(session, checks=registry.audit_checks, key=KEY)
            t_full = time.perf_counter() - t0
            assert full.problems == [], full.problems[:5]
            print(f"  verify (full): {full.cases:,} cases, {full.events:,} events, {len(full.problems)} problems, "
                  f"{t_full:.1f} s")
    finally:
        db.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
