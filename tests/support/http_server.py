"""The real HTTP server as a process: `vuosikello serve` (uvicorn, its own logging) on a free port, its output in a
file the test reads. For what only the real server shows: its access log, its memory under attack."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx

from tests.support.service_process import READY_TIMEOUT, ROOT, log_tail
from tests.support.waiting import wait_until


def free_port() -> int:
    """Return a TCP port nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@dataclass
class HttpServer:
    """One `vuosikello serve` process."""

    proc: subprocess.Popen[bytes]
    url: str
    log_path: Path
    _log: IO[bytes]

    @classmethod
    def start(cls, env: dict[str, str], log_path: Path) -> HttpServer:
        """Run `python -m api.cli serve` with extra environment; return once /healthz answers."""
        port = free_port()
        log = open(log_path, "ab")  # noqa: SIM115 - closed by stop()
        proc = subprocess.Popen([sys.executable, "-m", "api.cli", "serve", "--port", str(port)], cwd=ROOT,
                                env={**os.environ, "PYTHONUNBUFFERED": "1", **env}, stdout=log,
                                stderr=subprocess.STDOUT)
        server = cls(proc, f"http://127.0.0.1:{port}", log_path, log)
        try:
            wait_until(lambda: proc.poll() is not None or _answers(server.url), within=READY_TIMEOUT,
                       what=f"the server on port {port} answers /healthz", seen=lambda: log_tail(log_path))
            if proc.poll() is not None:
                raise AssertionError(f"the server exited ({proc.returncode}):\n{log_tail(log_path)}")
        except BaseException:
            server.stop()
            raise
        return server

    @property
    def pid(self) -> int:
        """The process id."""
        return self.proc.pid

    def log(self) -> str:
        """Return everything the server has written so far (stdout and stderr)."""
        self._log.flush()
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        """Ask for a clean shutdown, kill after 20 s, reap, close the log."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
