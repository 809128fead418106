"""Settings of the web interface: cookie security, session timeouts, sign-in and public-check rate limits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from pydantic_settings import BaseSettings, SettingsConfigDict

from engine.settings import Settings


class WebSettings(BaseSettings):
    """Environment overrides (prefix VUOSIKELLO_WEB_); unset values follow the service's settings."""

    model_config = SettingsConfigDict(env_prefix="VUOSIKELLO_WEB_", env_file=".env", extra="ignore")

    cookie_secure: bool | None = None  # None: Secure unless the service runs on plain http outside production
    idle_minutes: int = 30
    absolute_hours: int = 12
    failure_limit: int = 10
    account_failure_limit: int = 5
    failure_window_minutes: int = 15
    check_limit: int = 30  # public checks (POST /check, /api/v1/check) per client address ...
    check_window_minutes: int = 10  # ... within this window


@dataclass(frozen=True)
class WebConfig:
    """What the web layer needs to know, resolved once when the app is built."""

    cookie_secure: bool = True
    idle_timeout: timedelta = timedelta(minutes=30)
    absolute_timeout: timedelta = timedelta(hours=12)
    failure_limit: int = 10  # bad tokens or passwords per address ...
    account_failure_limit: int = 5  # bad passwords, and link requests, per email address (from any address) ...
    failure_window: timedelta = timedelta(minutes=15)  # ... within this window
    touch_interval: timedelta = timedelta(minutes=1)  # write last_seen_at at most this often
    check_limit: int = 30  # public checks per client address ...
    check_window: timedelta = timedelta(minutes=10)  # ... within this window
    check_max_bytes: int = 4 * 1024 * 1024  # the largest file the public check hashes (never above the body limit)

    @property
    def session_cookie(self) -> str:
        """Name the session cookie; `__Host-` makes browsers refuse it unless Secure, host-only and Path=/."""
        return "__Host-vk_session" if self.cookie_secure else "vk_session"

    @property
    def csrf_cookie(self) -> str:
        """Name the pre-session CSRF cookie (double-submit, for forms shown before signing in)."""
        return "__Host-vk_csrf" if self.cookie_secure else "vk_csrf"

    @classmethod
    def from_settings(cls, settings: Settings, web: WebSettings | None = None) -> WebConfig:
        """Resolve the configuration; production always gets Secure cookies."""
        web = web or WebSettings()
        secure = web.cookie_secure
        if secure is None:
            secure = settings.base_url.startswith("https://")
        if settings.environment == "production":
            secure = True
        return cls(cookie_secure=secure, idle_timeout=timedelta(minutes=web.idle_minutes),
                   absolute_timeout=timedelta(hours=web.absolute_hours), failure_limit=web.failure_limit,
                   account_failure_limit=web.account_failure_limit,
                   failure_window=timedelta(minutes=web.failure_window_minutes), check_limit=web.check_limit,
                   check_window=timedelta(minutes=web.check_window_minutes),
                   check_max_bytes=settings.max_request_bytes)
