"""kill -9 in the middle of the mail job rendering a committed transaction's emails: nothing lost, nothing doubled.

A real subprocess queues 1,200 reminders of a 3-party agreement in one transaction (fi, sv and en readers) and
commits; then, as the leader's mail job does before it sends, it renders them in batches
(notifications/deferred.py's `render_queued`). The test kills it with SIGKILL as soon as the first batch is
committed, so later batches die half-done. The mail job (run here, as the next leader would) renders what is still
queued; every email is then there once, rendered in its reader's language with a sign-in link of its own, and no
link row of the killed batch survives.

    .venv/bin/python -m tests.notifications.test_deferred_crash <database url> <count>   (the child)
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter

from sqlalchemy import text

from api.context import AppContext
from engine.links import LINK_PATH
from notifications import deferred
from tests.conftest import START
from tests.support.builders import create_agreement

COUNT = 1200
KEY = "deferred-crash"


def _child(url: str, count: int) -> None:
    """Queue `count` reminders of the newest agreement's parties in one transaction; then render them."""
    from api.context import build_context
    from engine.clock import ManualClock
    from engine.settings import Settings
    from notifications.reminders import _Mails

    settings = Settings(environment="test", database_url=url, admin_token=None, base_url="http://testserver",
                        scheduler_enabled=False)
    ctx = build_context(settings, clock=ManualClock(START))

    def work(uow: object) -> None:
        from engine.service import UnitOfWork

        assert isinstance(uow, UnitOfWork)
        parties = [int(r[0]) for r in uow.session.connection().execute(text(
            "SELECT id FROM \"case\" WHERE workflow = 'agreement_party' ORDER BY id"))]
        people = {p: int(uow.session.connection().execute(text(
            "SELECT person_id FROM party_signatory WHERE party_case_id = :p"), {"p": p}).scalar_one())
            for p in parties}
        uow.after_commit(lambda: print("committed", flush=True))
        for party in parties:
            mails = _Mails(uow, uow.case(party))
            for i in range(count // len(parties)):
                mails.add("party_reminder", f"{KEY}:{party}:{i}", people[party],
                          {"offset": "-P7D", "kind": "reminder", "overdue": False})
            mails.queue()

    ctx.engine.run(work)
    deferred.render_queued(ctx.engine)  # the mail job's first step
    print("rendered", flush=True)


def _counts(ctx: AppContext) -> Counter[str]:
    with ctx.db.engine.connect() as conn:
        return Counter(r[0] for r in conn.execute(text("SELECT status FROM outbox WHERE dedupe_key LIKE :k"),
                                                  {"k": f"{KEY}:%"}))


def test_kill_9_while_the_mail_job_renders_loses_and_doubles_nothing(ctx: AppContext) -> None:
    fx = create_agreement(ctx, parties=3, languages={"wellbeing_county:08": "sv"})
    languages = {}
    for key, users in fx.signatories.items():
        languages[users[0].id] = users[0].person.language
    ctx.tick()  # the circulation's own notices rendered (and their links issued) before the child starts
    with ctx.db.engine.connect() as conn:
        earlier = {r[0] for r in conn.execute(text("SELECT token_hash FROM sign_in_link"))}
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    child = subprocess.Popen([sys.executable, "-m", "tests.notifications.test_deferred_crash", ctx.db.url,
                              str(COUNT)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line.strip() == "committed", (line, child.stderr.read() if child.stderr else "")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            counts = _counts(ctx)
            if sum(counts.values()) - counts["queued"] >= deferred.BATCH:
                break
            time.sleep(0.005)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=30)
        for stream in (child.stdout, child.stderr):
            if stream is not None:
                stream.close()
    at_kill = _counts(ctx)
    assert child.returncode == -signal.SIGKILL
    assert sum(at_kill.values()) == COUNT  # every email was committed with its transaction, queued
    assert 0 < at_kill["queued"] < COUNT - deferred.BATCH + 1, at_kill  # killed half-way through the rendering

    assert deferred.render_queued(ctx.engine) == at_kill["queued"]  # the leader's mail job renders the rest
    assert deferred.render_queued(ctx.engine) == 0  # and nothing twice
    assert _counts(ctx) == {"pending": COUNT}
    with ctx.db.engine.connect() as conn:
        rows = conn.execute(text("SELECT person_id, language, subject, text, render_context FROM outbox "
                                 "WHERE dedupe_key LIKE :k"), {"k": f"{KEY}:%"}).all()
        links = {r[0]: r[1] for r in conn.execute(text("SELECT token_hash, person_id FROM sign_in_link"))
                 if r[0] not in earlier}
    tokens = Counter()
    for person_id, language, subject, body, render_context in rows:
        assert language == languages[person_id] and subject and render_context is None
        found = re.findall(re.escape(LINK_PATH) + r"([A-Za-z0-9_-]+)", body)
        assert found, body
        assert all(links[hashlib.sha256(t.encode()).hexdigest()] == person_id for t in found)
        tokens.update(set(found))
    assert len(tokens) == COUNT and set(tokens.values()) == {1}  # a link of its own for each email
    assert len(links) == COUNT  # no link of a killed batch survived it
    swedish = next(r for r in rows if r[1] == "sv")
    finnish = next(r for r in rows if r[1] == "fi")
    assert swedish[2] != finnish[2]  # the subject in the reader's language


if __name__ == "__main__":
    _child(sys.argv[1], int(sys.argv[2]))
