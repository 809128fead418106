"""Runtime configuration from the environment (prefix VUOSIKELLO_) and an optional .env file."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PLACEHOLDER_SECRETS = {"", "changethis", "change-me", "secret"}


class Settings(BaseSettings):
    """Every setting the service reads; defaults give the embedded SQLite demo."""

    model_config = SettingsConfigDict(env_prefix="VUOSIKELLO_", env_file=".env", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    database_url: str = "sqlite:///./vuosikello.db"
    base_url: str = "http://127.0.0.1:8000"
    admin_token: str | None = None
    secret_key: str = "dev-only-secret-key-change-me-in-production"  # noqa: S105 - refused in production
    mail_from: str = "Vuosikello <no-reply@vuosikello.local>"
    mail_domain: str = "vuosikello.local"
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    smtp_tls: bool = False
    smtp_timeout: float = 10.0
    smtp_connections: int = Field(default=4, ge=1, le=32)  # sessions the outbox sends over side by side
    scheduler_enabled: bool = True
    scheduler_interval_seconds: float = 1.0
    sqlite_busy_timeout_ms: int = 30000
    # The key of the signed audit checkpoints (engine/anchor.py, SECURITY.md): a file readable by the service only
    # (preferred), or the value itself. Never stored in the database; without it no checkpoint is stored.
    audit_key_file: Path | None = None
    audit_key: SecretStr | None = None
    # The seal of the sealed records (workflows/agreement/record.py, README "Sealed records"): the service's own key
    # and certificate, as a PKCS#12 file or as PEM key + certificate files, and the password of either (if any).
    # Unset: records stay pending until a seal is configured (the demo generates a self-signed one).
    seal_pkcs12_file: Path | None = None
    seal_key_file: Path | None = None
    seal_cert_file: Path | None = None
    seal_password: SecretStr | None = None
    # A request body over this many bytes is refused with 413 before it is read (README: the largest real document
    # is 11 kB; an agreement text may be 500,000 characters, 3 MB even when JSON escapes every one as \uXXXX).
    max_request_bytes: int = 4 * 1024 * 1024
    max_json_depth: int = 32  # arrays and objects within each other in a JSON body (real requests nest 3 deep)
    # Addresses (or CIDR networks) of reverse proxies whose X-Forwarded-For names the client; none by default,
    # so the sign-in limiter counts the connecting address unless it is one of these.
    trusted_proxies: Annotated[list[str], NoDecode] = []
    # Logs: "json" writes one JSON object per line (with the request id); "plain" is the usual text
    log_format: Literal["plain", "json"] = "plain"
    # A bearer token a Prometheus scraper presents at /metrics (an administrator's token works too); unset: admins only
    metrics_token: SecretStr | None = None

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_proxies(cls, value: Any) -> Any:
        """Read `VUOSIKELLO_TRUSTED_PROXIES=10.0.0.1,10.1.0.0/16` (comma-separated) as a list."""
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @model_validator(mode="after")
    def _refuse_placeholders(self) -> Settings:
        if self.environment == "production":
            if self.secret_key in PLACEHOLDER_SECRETS or "change-me" in self.secret_key:
                raise ValueError("VUOSIKELLO_SECRET_KEY must be set to a real secret in production")
            if self.admin_token is not None and len(self.admin_token) < 24:
                raise ValueError("VUOSIKELLO_ADMIN_TOKEN must be at least 24 characters in production")
        return self

    @property
    def is_sqlite(self) -> bool:
        """Tell whether the configured database is SQLite."""
        return self.database_url.startswith("sqlite")


@lru_cache
def get_settings() -> Settings:
    """Return the process-wide settings (read once)."""
    return Settings()
