"""A real HTTP receiver on loopback for the webhook tests: it records what arrives and can be down, fail or be slow."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    """One request as it arrived, and the status the receiver answered with."""

    headers: dict[str, str]
    body: bytes
    status: int


@dataclass
class Receiver:
    """`mode` is "ok" (204), "fail" (500) or "slow" (answers after `delay` seconds); `stop()` takes it down."""

    port: int = 0
    mode: str = "ok"
    delay: float = 2.0
    fail_next: int = 0  # answer this many requests with 500 first
    received: list[Received] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/vuosikello"

    def start(self) -> Receiver:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real receivers do

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                status = 204
                if owner.fail_next > 0:
                    owner.fail_next -= 1
                    status = 500
                elif owner.mode == "fail":
                    status = 500
                elif owner.mode == "slow":
                    time.sleep(owner.delay)
                owner.received.append(Received({k.lower(): v for k, v in self.headers.items()}, body, status))
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self.port = server.server_address[1]
        self._server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def accepted(self) -> list[Received]:
        return [r for r in self.received if 200 <= r.status < 300]
