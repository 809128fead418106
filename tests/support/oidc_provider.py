"""A real OpenID Connect provider process on loopback for the sign-in tests: the `oidc-provider-mock` package.

It is a Flask app built on Authlib's authorization server: discovery, JWKS, the authorization endpoint (a form
where the test chooses the subject), the token endpoint issuing RS256 id tokens with the request's `nonce`, and
`PUT /users/<sub>` to set a subject's claims. `running_provider` starts it as a process of its own
(`python -m tests.support.oidc_provider <token seconds>`, werkzeug on 127.0.0.1 and a free port), so the
provider's own warnings and threads stay out of the test process. It stamps tokens with the real time.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import httpx

ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 60.0  # importing Flask and Authlib takes a few seconds on a busy machine


@dataclass
class Provider:
    """A running provider: its issuer URL, and helpers a browser would otherwise click through."""

    issuer: str

    def set_user(self, sub: str, **claims: object) -> None:
        """Set a subject's claims (email, email_verified, name...)."""
        r = httpx.put(f"{self.issuer}/users/{sub}", json=claims, timeout=10)
        assert r.status_code == 204, r.text

    def authorize(self, authorization_url: str, sub: str) -> str:
        """Sign in at the provider as a subject (the form's POST); return where it sends the browser back."""
        assert authorization_url.startswith(self.issuer + "/"), authorization_url
        r = httpx.post(authorization_url, data={"sub": sub}, timeout=10, follow_redirects=False)
        assert r.status_code == 302, r.text[:500]
        return str(r.headers["location"])


@contextmanager
def running_provider(token_max_age: timedelta = timedelta(hours=1)) -> Iterator[Provider]:
    """Run a provider process on 127.0.0.1 (a free port) for the block; its id tokens live `token_max_age`."""
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "tests.support.oidc_provider", str(int(token_max_age.total_seconds()))],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"})
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + READY_TIMEOUT
        line = ""
        while not line.startswith("ready "):
            left = deadline - time.monotonic()
            ready, _, _ = select.select([process.stdout], [], [], max(left, 0))
            assert ready and process.poll() is None, "the provider process did not start"
            line = process.stdout.readline()
        yield Provider(issuer=f"http://127.0.0.1:{int(line.split()[1])}")
    finally:
        if process.stdout is not None:
            process.stdout.close()
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def local_path(url: str) -> str:
    """Return a callback URL's path and query (the test client speaks to the app directly)."""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def main(token_seconds: int) -> None:
    """Serve the provider until terminated; print `ready <port>` once it listens."""
    import oidc_provider_mock
    import werkzeug.serving

    app = oidc_provider_mock.app(require_nonce=True, access_token_max_age=timedelta(seconds=token_seconds))
    server = werkzeug.serving.make_server("127.0.0.1", 0, app, threaded=True)
    print(f"ready {server.server_port}", flush=True)  # noqa: T201 - the parent reads it
    server.serve_forever()


if __name__ == "__main__":
    main(int(sys.argv[1]))
