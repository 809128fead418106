"""Secrets out of the logs: sign-in link tokens and calendar-feed secrets travel in URL paths, so every line that
names a path (uvicorn's access log above all) has them replaced by `***` before it is written.

The link token and the feed secret are credentials (a token read from an access log signed a tester in), and the
access log is read by far more people and tools than the database is. Moving them out of the path is not possible:
the link is clicked from an email and calendar clients send no headers. Hence a logging filter on the loggers that
write paths; `scrub` is also used for the path kept with an access denial.
"""

from __future__ import annotations

import logging
import re

MASK = "***"
# /link/<token>[/renew], /calendar/feeds/<secret>.ics, and any query parameter that carries a credential
_PATH_SECRET = re.compile(r"(/link/|/feeds/)([^/?#\s\"']+?)(\.ics)?(?=[/?#\s\"']|$)")
_QUERY_SECRET = re.compile(r"([?&](?:token|secret|key|access_token)=)[^&#\s\"']+", re.IGNORECASE)
# the OpenID Connect callback's one-time code and state (useless without the PKCE verifier and the browser's
# cookie, but credentials of a sort all the same)
_OIDC_CALLBACK = re.compile(r"/signin/oidc/callback\?[^\s\"'#]*")
_OIDC_SECRET = re.compile(r"([?&](?:code|state)=)[^&]+")
LOGGERS = ("uvicorn.access", "uvicorn.error", "uvicorn", "vuosikello")


def scrub(text: str) -> str:
    """Return text with link tokens, feed secrets and credential query parameters replaced by ***."""
    if "/link/" not in text and "/feeds/" not in text and "=" not in text:
        return text
    text = _PATH_SECRET.sub(lambda m: f"{m.group(1)}{MASK}{m.group(3) or ''}", text)
    if "/signin/oidc/callback" in text:
        text = _OIDC_CALLBACK.sub(lambda u: _OIDC_SECRET.sub(lambda m: f"{m.group(1)}{MASK}", u.group(0)), text)
    return _QUERY_SECRET.sub(lambda m: f"{m.group(1)}{MASK}", text)


class ScrubSecrets(logging.Filter):
    """A logging filter that scrubs the message and its string arguments (it never drops a record)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Scrub the record in place and let it through."""
        if isinstance(record.msg, str):
            record.msg = scrub(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(scrub(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: scrub(v) if isinstance(v, str) else v for k, v in record.args.items()}
        return True


_FILTER = ScrubSecrets()


def install() -> None:
    """Put the filter on uvicorn's loggers and ours (once; logging's dictConfig keeps a logger's filters)."""
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, ScrubSecrets) for f in logger.filters):
            logger.addFilter(_FILTER)
