"""Webhook delivery throughput: the events of `agreements` 25-party agreements, queued by one subscription, delivered
by the sweep to a real HTTP receiver on loopback; wall time, deliveries per second and this process's CPU each.

    .venv/bin/python -m bench.webhooks [--agreements 8]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlmodel import Session, col

from api.app import create_app
from api.context import build_context
from api.schema import create_all
from engine.clock import ManualClock
from engine.db import make_database
from engine.directory import DEFAULT_ORGANISATIONS, import_organisations
from engine.settings import Settings
from notifications.webhooks.models import WebhookDelivery
from tests.support.builders import create_agreement, make_user
from tests.support.webhook_receiver import Receiver


def main() -> None:
    """Queue the events of some agreements for one subscription, deliver them all, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agreements", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        db = make_database(f"sqlite:///{Path(folder) / 'bench.db'}")
        create_all(db)
        clock = ManualClock(datetime(2026, 3, 2, 7, 0, tzinfo=UTC))
        ctx = build_context(Settings(environment="test", database_url=db.url, scheduler_enabled=False,
                                     base_url="http://testserver"), clock=clock, db=db)
        with Session(db.engine) as session:
            import_organisations(session, DEFAULT_ORGANISATIONS, clock.now())
            session.commit()
        receiver = Receiver().start()
        try:
            admin = make_user(ctx, roles="admin")
            client = TestClient(create_app(ctx=ctx))
            made = client.post("/api/v1/webhooks", json={"name": "bench", "url": receiver.url,
                                                         "allow_private": True}, headers=admin.headers)
            assert made.status_code == 201, made.text
            for _ in range(args.agreements):
                create_agreement(ctx, parties=25)
            with Session(db.engine) as session:
                queued = session.execute(select(func.count()).select_from(WebhookDelivery)).scalar_one()
            assert ctx.webhooks is not None
            wall, cpu, delivered = time.perf_counter(), time.process_time(), 0
            while (n := ctx.webhooks.deliver_due_sync()) > 0:
                delivered += n
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            with Session(db.engine) as session:
                left = session.execute(select(func.count()).select_from(WebhookDelivery).where(
                    col(WebhookDelivery.status) != "delivered")).scalar_one()
        finally:
            receiver.stop()
        print(f"queued {queued}, delivered {delivered}, left {left}, received {len(receiver.accepted())}")
        print(f"wall {wall:.2f} s, {delivered / wall:.0f} deliveries/s, {1000 * cpu / max(delivered, 1):.2f} ms CPU "
              f"each (this process; the receiver runs in a thread of it)")


if __name__ == "__main__":
    main()
