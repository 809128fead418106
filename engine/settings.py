"""Runtime configuration from the environment (prefix VUOSIKELLO_) and an optional .env file."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

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
    scheduler_enabled: bool = True
    scheduler_interval_seconds: float = 1.0
    sqlite_busy_timeout_ms: int = 30000

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
