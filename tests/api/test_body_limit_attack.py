"""The attack of issue 10, finding 7, re-run against the real server process: six anonymous 100 MB posts (three
with a Content-Length, three chunked without one, to a form route and a JSON route). Before the limit they took
the server from 183 MB to 1.73 GB; now each is a 413 after at most the limit was read, and the server's memory
stays where it was. `python -m tests.api.test_body_limit_attack [limit]` prints the figures (a huge limit shows
the server without one)."""

from __future__ import annotations

import socket
import sys
import tempfile
from pathlib import Path

import psutil  # type: ignore[import-untyped]  # no stubs in the test extra (bench/ uses it the same way)
import pytest

from tests.support.http_server import HttpServer

MB = 1024 * 1024
POST_SIZE = 100 * MB
CHUNK = b"a" * MB


def _post(url: str, path: str, content_type: str, *, declared: bool) -> int:
    """Send one 100 MB post over a raw socket (as an attacker would) and return the status the server answered."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=60) as sock:
        head = f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\n"
        head += f"Content-Length: {POST_SIZE}\r\n" if declared else "Transfer-Encoding: chunked\r\n"
        sock.sendall((head + "\r\n").encode())
        try:
            for _ in range(POST_SIZE // MB):
                sock.sendall(CHUNK if declared else b"%x\r\n%s\r\n" % (len(CHUNK), CHUNK))
            if not declared:
                sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed before the body was through: what the limit is for
        answer = b""
        try:
            while b"\r\n" not in answer:
                part = sock.recv(4096)
                if not part:
                    break
                answer += part
        except (ConnectionResetError, TimeoutError):
            pass
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/") else 0


def attack(url: str, pid: int) -> tuple[float, float, list[int]]:
    """Run the six posts; return the server's RSS in MB before and after, and the statuses."""
    process = psutil.Process(pid)
    before = process.memory_info().rss / MB
    statuses = []
    for declared in (True, False):
        statuses.append(_post(url, "/signin/email", "application/x-www-form-urlencoded", declared=declared))
        statuses.append(_post(url, "/api/v1/agreements", "application/json", declared=declared))
        statuses.append(_post(url, "/api/v1/agreements", "application/octet-stream", declared=declared))
    return before, process.memory_info().rss / MB, statuses


def _serve(tmp: Path, limit: int | None) -> HttpServer:
    env = {"VUOSIKELLO_DATABASE_URL": f"sqlite:///{tmp / 'vuosikello.db'}", "VUOSIKELLO_SCHEDULER_ENABLED": "false",
           "VUOSIKELLO_ENVIRONMENT": "development"}
    if limit is not None:
        env["VUOSIKELLO_MAX_REQUEST_BYTES"] = str(limit)
    return HttpServer.start(env, tmp / "server.log")


@pytest.mark.slow
def test_six_anonymous_100_mb_posts_leave_the_server_as_it_was(tmp_path: Path) -> None:
    server = _serve(tmp_path, None)
    try:
        before, after, statuses = attack(server.url, server.pid)
    finally:
        server.stop()
    assert statuses == [413] * 6, statuses
    assert after - before < 40, f"RSS {before:.0f} MB -> {after:.0f} MB"


if __name__ == "__main__":
    limit = int(sys.argv[1]) if len(sys.argv) > 1 else None
    with tempfile.TemporaryDirectory() as folder:
        served = _serve(Path(folder), limit)
        try:
            rss_before, rss_after, answers = attack(served.url, served.pid)
        finally:
            served.stop()
    print(f"limit {limit or 'default'}: statuses {answers}; server RSS {rss_before:.0f} MB -> {rss_after:.0f} MB")
