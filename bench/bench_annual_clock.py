"""Benchmark: the annual clock (SVG, page, iCalendar) and the annual report (HTML, PDF) for a whole network.

18 regional councils, one cycle of 200 measures, 50 decided nominations each asking all 18 councils, 20 meetings.
Run: .venv/bin/python -m bench.bench_annual_clock   (SQLite file in a temporary folder)
"""

from __future__ import annotations

import statistics
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from api.context import build_context
from api.schema import metadata
from engine.actors import Actor
from engine.clock import ManualClock
from engine.db import make_database
from engine.directory import DEFAULT_ORGANISATIONS, import_organisations
from engine.models import Case, Organisation, Person
from engine.settings import Settings
from workflows.annual_clock.ical import render_ics
from workflows.annual_clock.items import collect, scope_for
from workflows.annual_clock.svg import render_page, render_svg
from workflows.cycle import service as cycles
from workflows.cycle.annual_report import render_html, render_pdf, report_data
from workflows.cycle.schemas import AgreeIn, CycleCreate
from workflows.nomination import appointments
from workflows.nomination import service as nominations
from workflows.nomination.schemas import DecisionIn, NominationCreate, ProposalIn
from workflows.registers import service as registers
from workflows.registers.schemas import MeetingIn

THEMES = ["climate", "operating_model", "contract_based_cooperation", "work_based_immigration", "advocacy"]
NETWORKS = ["network:alke", "network:alsu", "network:hallintojohtajat", "network:viestinta"]


def build(folder: Path) -> Any:
    """Create the network's data; return the context."""
    db = make_database(f"sqlite:///{folder / 'bench.db'}")
    metadata().create_all(db.engine)
    clock = ManualClock(datetime(2026, 1, 12, 8, 0, tzinfo=UTC))
    ctx = build_context(Settings(environment="test", database_url=db.url, scheduler_enabled=False), clock=clock, db=db)
    with Session(db.engine, expire_on_commit=False) as s:
        import_organisations(s, DEFAULT_ORGANISATIONS, clock.now())
        coord = Person(name="Koordinaattori", email="coord@bench.fi", roles="coordinator", created_at=clock.now())
        s.add(coord)
        s.commit()
        councils = list(s.execute(select(Organisation).where(Organisation.kind == "regional_council")
                                  .order_by(Organisation.code)).scalars())
    actor = Actor(coord.id, coord.name, frozenset({"coordinator"}), None)
    responsibles = [o.key for o in councils] + NETWORKS
    cycle = ctx.engine.run(lambda uow: cycles.create_cycle(uow, CycleCreate(year=2026), actor)).id
    measures = [{"title": f"Toimenpide {i}", "theme": THEMES[i % 5], "responsible": responsibles[i % 22],
                 "due_date": date(2026, 1 + i % 12, 1 + i % 28).isoformat()} for i in range(200)]
    ctx.engine.run(lambda uow: cycles.agree(uow, cycle, AgreeIn.model_validate({"measures": measures}), actor))
    for n in range(50):
        deadline = date(2026, 2 + n % 10, 10 + n % 15)
        body = NominationCreate.model_validate({
            "requester": {"name": "Ministeriö", "email": "kirjaamo@example.fi"}, "group": f"Työryhmä {n}",
            "seats": [{"has_deputy": True}], "term_start": date(2026, 12, 1).isoformat(),
            "term_end": date(2028, 11, 30).isoformat(), "deadline": deadline.isoformat(),
            "asked": {"all_regional_councils": True}})
        nid = ctx.engine.run(lambda uow, b=body: nominations.create_nomination(uow, b, actor)).id
        for org in councils[:2]:
            cands = [{"seat": 1, "position": p, "name": f"{g} {org.code} {p} {n}", "gender": g}
                     for p in ("member", "deputy") for g in ("woman", "man")]
            ctx.engine.run(lambda uow, k=org.key, c=cands: nominations.propose(
                uow, nid, k, ProposalIn.model_validate({"candidates": c}), actor))
        ctx.engine.run(lambda uow, i=nid: nominations.close_proposals(uow, i, actor))
        with db.read_session() as s:
            ids = [c.id for c in s.execute(select(Case).where(Case.parent_id == nid)).scalars()]
            from workflows.nomination.models import Candidate
            cands = list(s.execute(select(Candidate.id).where(Candidate.nomination_id == nid)).scalars())
        decision = DecisionIn.model_validate({"meeting_date": clock.now().date().isoformat(), "section": str(n + 1),
                                              "seats": [{"seat": 1, "member": cands[0], "deputy": cands[3]}],
                                              "justification": "Yksi paikka"})
        ctx.engine.run(lambda uow, i=nid, d=decision: appointments.decide(uow, i, d, actor))
        assert ids
    with Session(db.write_engine) as s:
        for m in range(20):
            registers.add_meeting(s, MeetingIn(kind="regional_directors", title=f"Maakuntajohtajakokous {m}",
                                               held_on=date(2026, 1 + m % 12, 5)), actor, clock.now())
        s.commit()
    clock.set(datetime(2026, 11, 15, 8, 0, tzinfo=UTC))
    return ctx, cycle


def measure(label: str, fn: Callable[[], Any], repeat: int = 5) -> dict[str, Any]:
    """Time a function (median of runs) and its peak Python memory (tracemalloc, one run)."""
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    tracemalloc.start()
    fn()
    _cur, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    size = len(out) if isinstance(out, (str, bytes)) else 0
    return {"what": label, "median_ms": round(statistics.median(times) * 1000, 1),
            "peak_mib": round(peak / 2**20, 1), "bytes": size}


def main() -> None:
    """Build the data, run each measurement, print a Markdown table."""
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        ctx, cycle = build(Path(tmp))
        built = time.perf_counter() - t0
        now = ctx.clock.now()
        results = []
        with ctx.db.read_session() as s:
            network = scope_for(s)
            org = scope_for(s, organisation_key="regional_council:06")
            year = (date(2026, 1, 1), date(2026, 12, 31))
            items = collect(s, network, *year, now)
            results.append(measure("collect items, whole network", lambda: collect(s, network, *year, now)))
            results.append(measure("wheel SVG, whole network (collect + render)",
                                   lambda: render_svg(collect(s, network, *year, now), 2026, "fi", "verkosto")))
            results.append(measure("printable page, whole network",
                                   lambda: render_page(collect(s, network, *year, now), 2026, "fi", "verkosto")))
            results.append(measure("wheel SVG, one council",
                                   lambda: render_svg(collect(s, org, *year, now), 2026, "fi", "Pirkanmaan liitto")))
            results.append(measure("iCalendar, whole network",
                                   lambda: render_ics(collect(s, network, *year, now), "verkosto", "fi", now)))
            case = s.get(Case, cycle)
            results.append(measure("annual report data (queries)", lambda: report_data(s, case)))
            results.append(measure("annual report HTML (data + render)", lambda: render_html(report_data(s, case))))
            results.append(measure("annual report PDF (data + render)", lambda: render_pdf(report_data(s, case)),
                                   repeat=3))
        print(f"data built in {built:.1f} s; {len(items)} items on the network's wheel\n")
        print("| what | median ms | peak MiB (tracemalloc) | output bytes |\n|---|---:|---:|---:|")
        for r in results:
            print(f"| {r['what']} | {r['median_ms']} | {r['peak_mib']} | {r['bytes']} |")
        import resource

        print(f"\nprocess peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
