"""HTTP: `GET /api/v1/agreements/{id}` (25 parties) under 50 concurrent clients, beside a bare FastAPI endpoint.

Both run in real uvicorn servers started as subprocesses with the same settings (one worker, uvloop, httptools,
no access log), on loopback. The agreement server serves a SQLite file prepared here with the test builders:
Pirkanmaa's 25 parties, 20 of them approved and 10 of those signed, read by its coordinator's token. The bare
server answers a constant from a plain `def` endpoint (the agreement route is a `def` too, so both go through
the threadpool) and from an `async def` one. The load is httpx.AsyncClient with 50 connections kept alive;
rounds alternate between the endpoints; the best round of each is reported. Goal: the agreement endpoint
gives at least 0.3x the bare endpoint's requests per second.

    .venv/bin/python -m bench.http [--duration 8] [--rounds 2] [--clients 50]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import psutil

HOST = "127.0.0.1"
SERVER_SETTINGS: dict[str, Any] = {"log_level": "warning", "access_log": False, "loop": "uvloop",
                                   "http": "httptools", "workers": 1}


def _settings(db_path: Path) -> Any:
    from engine.settings import Settings

    return Settings(environment="development", database_url=f"sqlite:///{db_path}", admin_token=None,
                    base_url=f"http://{HOST}", scheduler_enabled=False)


def prepare(db_path: Path) -> tuple[int, str]:
    """Fill a SQLite file: the register, a 25-party agreement part-way through; return its id and a token."""
    from sqlmodel import Session

    from api.context import build_context
    from bench.common import fresh_sqlite
    from engine.calendar import HELSINKI
    from engine.directory import DEFAULT_ORGANISATIONS, import_organisations
    from tests.support.builders import create_agreement
    from workflows.agreement import service
    from workflows.agreement.schemas import DecisionIn

    db = fresh_sqlite(db_path)
    ctx = build_context(_settings(db_path), db=db)
    with Session(db.engine) as session:
        import_organisations(session, DEFAULT_ORGANISATIONS, ctx.clock.now())
        session.commit()
    today = ctx.clock.now().astimezone(HELSINKI).date()
    agreement = create_agreement(ctx, parties=25, deadline=today + timedelta(days=60))
    for i, key in enumerate(agreement.keys[:20]):
        signer = agreement.signatories[key][0].actor
        body = DecisionIn(outcome="approved", body="Kunnanhallitus", decided_on=today, section=f"§ {40 + i}",
                          minutes_url=f"https://example.fi/poytakirjat/{40 + i}")
        ctx.engine.run(lambda uow, k=key, s=signer, b=body: service.decide(uow, agreement.id, k, b, s))
        if i < 10:
            ctx.engine.run(lambda uow, k=key, s=signer: service.sign(uow, agreement.id, k, s))
    db.dispose()
    return agreement.id, agreement.coordinator.token


def serve(kind: str, port: int, db_path: Path | None) -> None:
    """Run one server in this process (the subprocess entry point)."""
    import uvicorn
    from fastapi import FastAPI

    if kind == "bare":
        app = FastAPI()

        @app.get("/bare")
        def bare() -> dict[str, str]:
            return {"status": "ok"}

        @app.get("/bare-async")
        async def bare_async() -> dict[str, str]:
            return {"status": "ok"}
    else:
        from api.app import create_app
        from api.context import build_context

        assert db_path is not None
        app = create_app(ctx=build_context(_settings(db_path)))
    uvicorn.run(app, host=HOST, port=port, **{k: v for k, v in SERVER_SETTINGS.items() if k != "workers"})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def start(kind: str, db_path: Path | None, probe: str) -> tuple[subprocess.Popen[bytes], int]:
    """Start a server subprocess and wait until it answers."""
    port = _free_port()
    cmd = [sys.executable, "-m", "bench.http", "--serve", kind, "--port", str(port)]
    if db_path is not None:
        cmd += ["--db", str(db_path)]
    proc = subprocess.Popen(cmd, env={**os.environ, "VUOSIKELLO_SCHEDULER_ENABLED": "false"})
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://{HOST}:{port}{probe}", timeout=1).status_code < 500:
                return proc, port
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"{kind} server did not start")


async def _raw_get(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> tuple[int, int]:
    """Send one keep-alive GET and read the response; return (status, body bytes)."""
    writer.write(request)
    status = int((await reader.readline())[9:12])
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.lower() == b"content-length":
            length = int(value)
    return status, len(await reader.readexactly(length))


async def load(url: str, headers: dict[str, str], clients: int, duration: float, server_pid: int,
               client: str = "raw") -> dict[str, Any]:
    """Keep `clients` requests in flight for `duration` seconds; return throughput, latencies and CPU use.

    `raw`: one asyncio stream per client speaking HTTP/1.1 keep-alive by hand, so the load generator stays
    far below the server's cost; `httpx`: httpx.AsyncClient, about ten times heavier per request.
    """
    parsed = httpx.URL(url)
    latencies: list[float] = []
    errors = 0
    size = 0
    request = (f"GET {parsed.raw_path.decode()} HTTP/1.1\r\nHost: {parsed.host}:{parsed.port}\r\n"
               + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n").encode()
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=clients, max_keepalive_connections=clients),
                                 headers=headers, timeout=60) as http_client:

        async def worker(stop: float) -> None:
            nonlocal errors, size
            reader = writer = None
            if client == "raw":
                reader, writer = await asyncio.open_connection(parsed.host, parsed.port)
            try:
                while time.perf_counter() < stop:
                    t0 = time.perf_counter()
                    if reader is not None and writer is not None:
                        status, size = await _raw_get(reader, writer, request)
                    else:
                        response = await http_client.get(url)
                        status, size = response.status_code, len(response.content)
                    latencies.append(time.perf_counter() - t0)
                    errors += status != 200
            finally:
                if writer is not None:
                    writer.close()

        await asyncio.gather(*[worker(time.perf_counter() + min(1.0, duration / 4)) for _ in range(clients)])
        if errors:
            raise SystemExit(f"{url}: {errors} responses were not 200 during the warm-up")
        latencies.clear()
        server = psutil.Process(server_pid)
        server_cpu, client_cpu = sum(server.cpu_times()[:2]), time.process_time()
        start = time.perf_counter()
        await asyncio.gather(*[worker(start + duration) for _ in range(clients)])
        wall = time.perf_counter() - start
        server_cpu = (sum(server.cpu_times()[:2]) - server_cpu) / wall
        client_cpu = (time.process_time() - client_cpu) / wall
    q = statistics.quantiles(latencies, n=100)
    return {"rps": len(latencies) / wall, "p50_ms": q[49] * 1000, "p95_ms": q[94] * 1000, "errors": errors,
            "bytes": size, "server_cpu": server_cpu, "client_cpu": client_cpu, "requests": len(latencies)}


def _row(name: str, r: dict[str, Any]) -> str:
    return (f"  {name:<22} {r['rps']:7.0f} req/s   p50 {r['p50_ms']:6.1f} ms   p95 {r['p95_ms']:6.1f} ms   "
            f"{r['bytes']:6d} B   errors {r['errors']}   CPU server {r['server_cpu']:.2f} client {r['client_cpu']:.2f}")


def run(duration: float, rounds: int, clients: int, client: str = "raw") -> dict[str, Any]:
    """Prepare, start both servers, alternate the load between the endpoints, print the best rounds."""
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        runner = asyncio.run
    with tempfile.TemporaryDirectory(prefix="vk-bench-") as tmp:
        db_path = Path(tmp) / "http.db"
        agreement_id, token = prepare(db_path)
        real, real_port = start("real", db_path, "/healthz")
        bare, bare_port = start("bare", None, "/bare")
        targets = {
            "bare def": (f"http://{HOST}:{bare_port}/bare", {}, bare.pid),
            "bare async def": (f"http://{HOST}:{bare_port}/bare-async", {}, bare.pid),
            "GET agreement (25)": (f"http://{HOST}:{real_port}/api/v1/agreements/{agreement_id}",
                                   {"Authorization": f"Bearer {token}"}, real.pid),
        }
        best: dict[str, dict[str, Any]] = {}
        try:
            print(f"HTTP: {clients} concurrent clients ({client} client), {duration:.0f} s per round, "
                  f"{rounds} rounds (best shown)")
            for _ in range(rounds):
                for name, (url, headers, pid) in targets.items():
                    result = runner(load(url, headers, clients, duration, pid, client))
                    if name not in best or result["rps"] > best[name]["rps"]:
                        best[name] = result
            for name, result in best.items():
                print(_row(name, result))
        finally:
            for proc in (real, bare):
                proc.terminate()
                proc.wait(10)
    agreement = best["GET agreement (25)"]["rps"]
    for name in ("bare def", "bare async def"):
        print(f"  ratio vs {name:<15} {agreement / best[name]['rps']:.2f}x (goal >= 0.3x)")
    return best


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the HTTP benchmark, or one server (internal)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per round and endpoint")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--client", choices=["raw", "httpx"], default="raw",
                        help="load generator: hand-written HTTP/1.1 on asyncio streams (default) or httpx")
    parser.add_argument("--serve", choices=["real", "bare"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve, args.port, args.db)
        return {}
    return run(args.duration, args.rounds, args.clients, args.client)


if __name__ == "__main__":
    main()
