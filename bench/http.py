"""HTTP: the agreement read and two web pages under 50 concurrent clients, each against a bare one-row endpoint.

Both servers are the production stack, `uvicorn[standard]` (uvloop, httptools, no access log) started as
subprocesses with the same `--workers`, on loopback, over one SQLite file prepared here with the test builders:

- `api_agreement`: `GET /api/v1/agreements/{id}` of Pirkanmaa's 25-party agreement (20 parties approved, 10 of
  them signed), read with its coordinator's API token;
- `page_tasks`: "my tasks" of a wellbeing-county signatory with 50 open cases (web session cookie);
- `page_agreement`: the same 25-party agreement's page, as that signatory;
- `bare`: a FastAPI `def` endpoint on its own server reading one row of the same file through SQLAlchemy
  (the agreement routes run in the threadpool too).

The load is one asyncio stream per client speaking HTTP/1.1 keep-alive by hand (about a tenth of httpx's cost
per request, so the generator stays far below the server's). A warm-up round runs first and is not counted.
Then each round loads every endpoint in turn for `--duration` seconds, the order reversed every other round;
each ratio is the median of the per-round ratios (target's requests per second / the bare endpoint's in the
same round), never best against best. The first request of each path after start is timed too, against the
median of the next ones each on a new connection as the first is (templates are compiled and the open
agreements' bodies and pages built at start-up: the first read should cost what later ones do); the median on
one kept-alive connection is reported beside it, and the median of later ones that each came after a pause
(`PAUSE_S`), as the first one does: on this machine any request after a pause costs about twice one sent back to
back, the bare endpoint's too, whose own first and later requests are timed the same way. A first request is
one sample per start, so each server is started `--starts` times, one at a time, and the first request's figures
are medians over the starts.

    .venv/bin/python -m bench.http [--duration 4] [--rounds 5] [--clients 50] [--workers 1] [--starts 5]
                                   [--json FILE]

Goals (issue 11): the agreement read >= 0.3x the bare endpoint with p95 <= 100 ms; the pages >= 0.1x.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import psutil

HOST = "127.0.0.1"
UVICORN: dict[str, Any] = {"log_level": "warning", "access_log": False, "loop": "uvloop", "http": "httptools"}
TARGETS = ("api_agreement", "page_tasks", "page_agreement")
GOALS = {"api_agreement": {"ratio": 0.3, "p95_ms": 100.0}, "page_tasks": {"ratio": 0.1},
         "page_agreement": {"ratio": 0.1}}
OPEN_CASES = 50
# The first request after a start against later ones: back to back, a request on this machine costs about 1 ms;
# after a pause of 10 ms to 2 s it costs 1.5-2.5 ms, on the bare endpoint and `/healthz` as on the project's paths
# (4 December 2026: the sleeping event loop and worker thread, and the processor after idle time). The first
# request always comes after a pause (the start), so it is also compared with later ones that came after one.
PAUSE_S = 0.2
PAUSES = 7
# The first request is one sample per start, and one request here varies by half a millisecond either way: the
# server is started STARTS times and each figure of the first request is the median over the starts (the ratios:
# the median of each start's own ratio). Only one server runs while first requests are timed; the load rounds
# then start their own.
STARTS = 5


@dataclass
class Prepared:
    """What the load needs to know of the prepared database."""

    agreement_id: int
    token: str
    cookies: list[str]
    bare_case_id: int


def _settings(db_path: Path) -> Any:
    from engine.settings import Settings

    return Settings(environment="development", database_url=f"sqlite:///{db_path}", admin_token=None,
                    base_url=f"http://{HOST}", scheduler_enabled=False)


def prepare(db_path: Path, clients: int) -> Prepared:
    """Fill a SQLite file: the register, the 25-party agreement part-way, 49 more open cases of one signatory."""
    from sqlmodel import Session

    from api.context import build_context
    from api.web.config import WebConfig
    from api.web.sessions import start_session
    from bench.common import fresh_sqlite
    from engine.calendar import HELSINKI
    from engine.directory import DEFAULT_ORGANISATIONS, import_organisations
    from tests.support.builders import create_agreement, make_user
    from workflows.agreement import service
    from workflows.agreement.models import PartySignatory
    from workflows.agreement.schemas import DecisionIn

    db = fresh_sqlite(db_path)
    ctx = build_context(_settings(db_path), db=db)
    with Session(db.engine) as session:
        import_organisations(session, DEFAULT_ORGANISATIONS, ctx.clock.now())
        session.commit()
    today = ctx.clock.now().astimezone(HELSINKI).date()
    agreement = create_agreement(ctx, parties=25, deadline=today + timedelta(days=60))
    county = agreement.keys[0]  # wellbeing_county:08: the page reader's party stays open
    for i, key in enumerate(agreement.keys[1:21]):
        signer = agreement.signatories[key][0].actor
        body = DecisionIn(outcome="approved", body="Kunnanhallitus", decided_on=today, section=f"§ {40 + i}",
                          minutes_url=f"https://example.fi/poytakirjat/{40 + i}")
        ctx.engine.run(lambda uow, k=key, s=signer, b=body: service.decide(uow, agreement.id, k, b, s))
        if i < 10:
            ctx.engine.run(lambda uow, k=key, s=signer: service.sign(uow, agreement.id, k, s))
    me = make_user(ctx, org_key=county, name="Hyvinvointialuejohtaja")
    party_ids = [agreement.id + 1]  # the county's party case: the first child
    for i in range(OPEN_CASES - 1):
        more = create_agreement(ctx, parties=3, deadline=today + timedelta(days=20 + i % 28),
                                coordinator=agreement.coordinator)
        party_ids.append(more.id + 1)
    with Session(db.engine) as session:
        session.add_all([PartySignatory(party_case_id=pid, person_id=me.id) for pid in party_ids])
        session.commit()
    config = WebConfig(cookie_secure=False)
    cookies = [ctx.engine.run(lambda uow: start_session(uow.session, config, me.id, "link", uow.now))
               for _ in range(clients)]
    db.dispose()
    return Prepared(agreement.id, agreement.coordinator.token, cookies, agreement.id)


def app_factory() -> Any:
    """Build the server's app in each uvicorn worker (`VK_BENCH_KIND`, `VK_BENCH_DB` name what to serve)."""
    from fastapi import FastAPI

    db_path = Path(os.environ["VK_BENCH_DB"])
    if os.environ["VK_BENCH_KIND"] == "bare":
        from sqlalchemy import text

        from engine.db import make_database

        db = make_database(f"sqlite:///{db_path}")
        one_row = text('SELECT id, state, version FROM "case" WHERE id = :id')
        app = FastAPI()

        @app.get("/bare/{case_id}")
        def bare(case_id: int) -> dict[str, Any]:
            with db.engine.connect() as conn:
                row = conn.execute(one_row, {"id": case_id}).one()
            return {"id": row.id, "state": row.state, "version": row.version}

        return app
    from api.app import create_app
    from api.context import build_context
    from api.web.config import WebConfig

    return create_app(ctx=build_context(_settings(db_path)), web=WebConfig(cookie_secure=False))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


class Server:
    """A uvicorn subprocess serving `app_factory` with the given number of workers."""

    def __init__(self, kind: str, db_path: Path, workers: int, probe: str) -> None:
        self.port = _free_port()
        env = {**os.environ, "VK_BENCH_KIND": kind, "VK_BENCH_DB": str(db_path),
               "VUOSIKELLO_SCHEDULER_ENABLED": "false"}
        cmd = [sys.executable, "-m", "uvicorn", "bench.http:app_factory", "--factory", "--host", HOST,
               "--port", str(self.port), "--workers", str(workers), "--log-level", UVICORN["log_level"],
               "--no-access-log", "--loop", UVICORN["loop"], "--http", UVICORN["http"]]
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(cmd, env=env, cwd=Path(__file__).resolve().parent.parent)
        self.workers = workers
        deadline = time.monotonic() + 60
        import httpx

        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://{HOST}:{self.port}{probe}", timeout=2).status_code < 500:
                    self.ready_s = time.perf_counter() - self.started
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{kind} server did not start")

    def cpu(self) -> float:
        """Return the CPU seconds the server and its workers used so far."""
        procs = [psutil.Process(self.proc.pid)]
        procs += procs[0].children(recursive=True)
        total = 0.0
        for p in procs:
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except psutil.NoSuchProcess:
                pass
        return total

    def stop(self) -> None:
        """Stop the server."""
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


async def _get(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> tuple[int, int]:
    """Send one keep-alive GET and read the response; return (status, body bytes)."""
    writer.write(request)
    status = int((await reader.readline())[9:12])
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.lower() == b"content-length":
            length = int(value)
    return status, len(await reader.readexactly(length))


def _request(port: int, path: str, headers: dict[str, str]) -> bytes:
    return (f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
            + "\r\n").encode()


async def load(port: int, path: str, headers: list[dict[str, str]], clients: int, duration: float,
               server: Server) -> dict[str, Any]:
    """Keep `clients` requests in flight for `duration` seconds (after a short warm-up); return the figures."""
    requests = [_request(port, path, headers[i % len(headers)]) for i in range(clients)]
    latencies: list[float] = []
    bad: list[int] = []
    size = 0

    async def client(request: bytes, stop: float) -> None:
        nonlocal size
        reader, writer = await asyncio.open_connection(HOST, port)
        try:
            while time.perf_counter() < stop:
                t0 = time.perf_counter()
                status, size = await _get(reader, writer, request)
                latencies.append(time.perf_counter() - t0)
                if status != 200:
                    bad.append(status)
        finally:
            writer.close()

    warm = time.perf_counter() + min(1.0, duration / 4)
    await asyncio.gather(*[client(r, warm) for r in requests])
    if bad:
        raise RuntimeError(f"{path}: {len(bad)} responses were not 200 (e.g. {bad[0]}) during the warm-up")
    latencies.clear()
    cpu0, start = server.cpu(), time.perf_counter()
    await asyncio.gather(*[client(r, start + duration) for r in requests])
    wall = time.perf_counter() - start
    cpu = server.cpu() - cpu0
    q = statistics.quantiles(latencies, n=100)
    return {"rps": len(latencies) / wall, "p50_ms": q[49] * 1000, "p95_ms": q[94] * 1000, "errors": len(bad),
            "bytes": size, "requests": len(latencies), "server_cpu_cores": cpu / wall,
            "cpu_ms_per_request": cpu / max(len(latencies), 1) * 1000}


async def first_requests(port: int, paths: dict[str, tuple[str, dict[str, str]]], later: int) -> dict[str, Any]:
    """Time the first request of each path on a fresh server, then the median of `later` more, one at a time:
    on the same kept-alive connection, and each on a connection of its own. The first request opens its
    connection too, so `first_over_later` compares it with the later ones that did (the server's per-connection
    set-up is the same on every new connection; what start-up leaves cold is not). Then each path once more
    after the others ran (`after_other_paths_ms`): what a request costs when other work ran before it, long after
    start, which no warm-up can remove."""
    out: dict[str, Any] = {}
    await _warm_client()
    for name, (path, headers) in paths.items():
        out[name] = await _first_and_later(port, path, _request(port, path, headers), later)
    for name, (path, headers) in paths.items():  # each path once more, after the others: cold again, long after start
        out[name]["after_other_paths_ms"] = round(await _on_new_connection(port, path, _request(port, path, headers)),
                                                  2)
    return out


async def _warm_client(requests: int = 20) -> None:
    """Send a few requests to a one-line HTTP server in this loop: the first request timed should pay for the
    server's first use, not the client's (its event loop's first connections and this module's first calls)."""
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(answer, HOST, 0)
    port = int(server.sockets[0].getsockname()[1])
    try:
        for _ in range(requests):
            await _on_new_connection(port, "/", _request(port, "/", {}))
    finally:
        server.close()


async def _timed(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str, request: bytes) -> float:
    """One request on an open connection, in ms; anything but a 200 stops the bench."""
    t0 = time.perf_counter()
    status, _size = await _get(reader, writer, request)
    if status != 200:
        raise RuntimeError(f"{path}: status {status} on a first request")
    return (time.perf_counter() - t0) * 1000


async def _on_new_connection(port: int, path: str, request: bytes) -> float:
    """One request on a connection opened for it, the opening included, in ms."""
    t0 = time.perf_counter()
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        return (time.perf_counter() - t0) * 1000 + await _timed(reader, writer, path, request)
    finally:
        writer.close()


async def _first_and_later(port: int, path: str, request: bytes, later: int) -> dict[str, Any]:
    """One request on a new connection, then `later` kept alive on one, then `later` each on a new one, then
    PAUSES each on a new one after a pause of PAUSE_S (what a person's request meets: nobody clicks back to back)."""
    first = await _on_new_connection(port, path, request)
    reader, writer = await asyncio.open_connection(HOST, port)
    kept_alive = [await _timed(reader, writer, path, request) for _ in range(later)]
    writer.close()
    rest = statistics.median([await _on_new_connection(port, path, request) for _ in range(later)])
    paused = []
    for _ in range(PAUSES):
        await asyncio.sleep(PAUSE_S)
        paused.append(await _on_new_connection(port, path, request))
    after_pause = statistics.median(paused)
    return {"first_ms": round(first, 2), "later_median_ms": round(rest, 2),
            "later_kept_alive_median_ms": round(statistics.median(kept_alive), 2),
            "first_over_later": round(first / rest, 2),
            "after_pause_median_ms": round(after_pause, 2), "first_over_after_pause": round(first / after_pause, 2)}


def over_starts(per_start: list[dict[str, Any]]) -> dict[str, Any]:
    """Each figure of `_first_and_later` (and `after_other_paths_ms`) as its median over the server's starts;
    the ratios as the median of each start's own ratio; every start's figures kept under `per_start`."""
    out: dict[str, Any] = {key: round(statistics.median(s[key] for s in per_start), 2) for key in per_start[0]}
    out["starts"] = len(per_start)
    out["per_start"] = per_start
    return out


def _first_over_starts(runner: Any, kind: str, db_path: Path, workers: int, probe: str,
                       paths: dict[str, tuple[str, dict[str, str]]], starts: int,
                       first: dict[str, Any]) -> dict[str, Any]:
    """`first` timed on the server the load rounds use, then `starts - 1` more starts of a server of that kind,
    one at a time; per path, the figures over all starts (`over_starts`)."""
    per_start = [first]
    for _ in range(starts - 1):
        server = Server(kind, db_path, workers, probe)
        try:
            per_start.append(runner(first_requests(server.port, paths, later=20)))
        finally:
            server.stop()
    return {name: over_starts([s[name] for s in per_start]) for name in paths}


def _runner() -> Any:
    try:
        import uvloop

        return uvloop.run
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        return asyncio.run


def run(duration: float = 4.0, rounds: int = 5, clients: int = 50, workers: int = 1,
        targets: tuple[str, ...] = TARGETS, starts: int = STARTS) -> dict[str, Any]:
    """Prepare, start both servers, time first requests (over `starts` starts), alternate the load; return every
    figure."""
    from bench.common import load_average

    runner = _runner()
    result: dict[str, Any] = {"bench": "http", "workers": workers, "clients": clients, "duration_s": duration,
                              "rounds": rounds, "load_start": load_average(), "goals": GOALS}
    with tempfile.TemporaryDirectory(prefix="vk-bench-") as tmp:
        db_path = Path(tmp) / "http.db"
        t0 = time.perf_counter()
        prep = prepare(db_path, clients)
        result["prepare_s"] = round(time.perf_counter() - t0, 1)
        real = Server("real", db_path, workers, "/healthz")
        bare = None
        try:
            bearer = {"Authorization": f"Bearer {prep.token}"}
            sessions = [{"Cookie": f"vk_session={c}"} for c in prep.cookies]
            paths = {"api_agreement": (f"/api/v1/agreements/{prep.agreement_id}", [bearer]),
                     "page_tasks": ("/tasks", sessions),
                     "page_agreement": (f"/agreements/{prep.agreement_id}", sessions)}
            paths = {k: v for k, v in paths.items() if k in targets}
            result["server_ready_s"] = round(real.ready_s, 2)
            first_paths = {k: (p, h[0]) for k, (p, h) in paths.items()}
            first = runner(first_requests(real.port, first_paths, later=20))
            real.stop()  # one server at a time while first requests are timed
            result["first_request"] = _first_over_starts(runner, "real", db_path, workers, "/healthz", first_paths,
                                                         starts, first)
            real = Server("real", db_path, workers, "/healthz")
            bare_paths = {"bare": (f"/bare/{prep.bare_case_id}", {})}
            bare = Server("bare", db_path, workers, f"/bare/{prep.bare_case_id}")
            first = runner(first_requests(bare.port, bare_paths, later=20))
            bare.stop()
            result["first_request_bare"] = _first_over_starts(runner, "bare", db_path, workers,
                                                              f"/bare/{prep.bare_case_id}", bare_paths, starts,
                                                              first)["bare"]
            bare = Server("bare", db_path, workers, f"/bare/{prep.bare_case_id}")
            plan: list[tuple[str, Server, str, list[dict[str, str]]]] = [
                ("bare", bare, f"/bare/{prep.bare_case_id}", [{}])]
            plan += [(name, real, path, headers) for name, (path, headers) in paths.items()]
            print(f"HTTP: {clients} clients, {workers} worker(s), {duration:g} s per endpoint, 1 warm-up + "
                  f"{rounds} rounds, load {result['load_start']}")
            for name, server, path, headers in plan:  # the warm-up round, not counted
                runner(load(server.port, path, headers, clients, min(duration, 2.0), server))
            per_round: list[dict[str, Any]] = []
            for i in range(rounds):
                figures: dict[str, Any] = {}
                for name, server, path, headers in (plan if i % 2 == 0 else plan[::-1]):
                    figures[name] = runner(load(server.port, path, headers, clients, duration, server))
                figures["load"] = load_average()
                per_round.append(figures)
                print(f"  round {i + 1}: " + "  ".join(
                    f"{n} {figures[n]['rps']:.0f}/s p95 {figures[n]['p95_ms']:.0f} ms" for n, *_ in plan)
                    + f"  load {figures['load'][0]}")
        finally:
            real.stop()
            if bare is not None:
                bare.stop()
    result["per_round"] = per_round
    result["load_end"] = load_average()
    summary: dict[str, Any] = {}
    for name in ["bare", *paths]:
        rows = [r[name] for r in per_round]
        summary[name] = {"rps_median": statistics.median(r["rps"] for r in rows),
                         "p95_ms_median": statistics.median(r["p95_ms"] for r in rows),
                         "p95_ms_max": max(r["p95_ms"] for r in rows),
                         "cpu_ms_per_request_median": statistics.median(r["cpu_ms_per_request"] for r in rows),
                         "bytes": rows[-1]["bytes"]}
        if name != "bare":
            ratios = [r[name]["rps"] / r["bare"]["rps"] for r in per_round]
            summary[name]["ratio_rounds"] = [round(x, 4) for x in ratios]
            summary[name]["ratio"] = statistics.median(ratios)
    result["summary"] = summary
    for name in paths:
        s, goal = summary[name], GOALS[name]
        extra = f", p95 {s['p95_ms_median']:.0f} ms (goal <= {goal['p95_ms']:.0f})" if "p95_ms" in goal else ""
        fr = result["first_request"][name]
        print(f"  {name:<15} {s['ratio']:.3f}x the bare endpoint (median of {rounds} rounds; goal >= "
              f"{goal['ratio']}x){extra}; {s['cpu_ms_per_request_median']:.2f} ms server CPU per request; first "
              f"request (median of {fr['starts']} starts; first/after-pause {fr['first_over_after_pause']:.2f}x) "
              f"{result['first_request'][name]['first_ms']:.1f} ms vs "
              f"{result['first_request'][name]['later_median_ms']:.1f} ms later (each on a new connection, as the "
              f"first; {result['first_request'][name]['later_kept_alive_median_ms']:.1f} ms kept alive; "
              f"{result['first_request'][name]['after_other_paths_ms']:.1f} ms again after the other paths; "
              f"{result['first_request'][name]['after_pause_median_ms']:.1f} ms later after a {PAUSE_S:g} s pause)")
    fb = result["first_request_bare"]
    print(f"  {'bare':<15} first request {fb['first_ms']:.1f} ms vs {fb['later_median_ms']:.1f} ms later; "
          f"{fb['after_pause_median_ms']:.1f} ms later after a {PAUSE_S:g} s pause (first/after-pause "
          f"{fb['first_over_after_pause']:.2f}x; medians of {fb['starts']} starts)")
    print(f"  load {result['load_start']} -> {result['load_end']}")
    return result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the HTTP benchmark; with --json, write its figures there."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per endpoint and round")
    parser.add_argument("--rounds", type=int, default=5, help="measured rounds (after one warm-up round)")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (both servers)")
    parser.add_argument("--only", choices=["api", "pages"], help="only the agreement read, or only the pages")
    parser.add_argument("--starts", type=int, default=STARTS, help="server starts over which first requests are timed")
    parser.add_argument("--quick", action="store_true",
                        help="1 s per endpoint, 2 rounds, 10 clients, 2 starts (smoke test)")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.rounds, args.clients, args.starts = 1.0, 2, 10, 2
    targets = {"api": ("api_agreement",), "pages": ("page_tasks", "page_agreement"), None: TARGETS}[args.only]
    result = run(args.duration, args.rounds, args.clients, args.workers, targets, max(1, args.starts))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
