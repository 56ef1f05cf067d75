"""The one settings object. Read once from ``SWEEPS_*`` environment variables.

Nothing else in the project reads ``os.environ``: code takes a ``Settings``.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SWEEPS_", extra="ignore")

    database_url: str = Field(
        "sqlite:///./sweeps.db",
        description="SQLAlchemy URL: sqlite:///path.db (default) or postgresql+psycopg://user:pw@host/db",
    )

    # Connections to PostgreSQL per process (service/core/connections.py): at most
    # db_pool_size + db_max_overflow + db_optuna_pool_size. SQLite ignores them.
    db_pool_size: int = Field(5, ge=1, description="connections kept open for our transactions")
    db_max_overflow: int = Field(5, ge=0, description="extra connections opened under load, closed after use")
    # 2 at least: Optuna's schema check opens a connection inside one of its sessions.
    db_optuna_pool_size: int = Field(2, ge=2, description="connections of Optuna's storage (no overflow)")
    db_pool_timeout_s: float = Field(30.0, gt=0, description="wait for a free pooled connection, then 503")
    db_pgbouncer: bool = Field(
        False, description="the URL points at PgBouncer (transaction pooling): no prepared statements"
    )

    # Limits per sweep (clear 4xx when exceeded).
    max_configs: int = Field(20_000, ge=1)
    max_seeds: int = Field(64, ge=1)
    max_epochs: int = Field(5_000, ge=1)
    max_runs: int = Field(200_000, ge=1, description="configurations x seeds")
    max_sweeps_in_flight_per_token: int = Field(20, ge=1)
    max_body_bytes: int = Field(1_000_000, ge=1024)
    max_upload_bytes: int = Field(100_000_000, ge=1024)

    # Worker liveness (docs/architecture.md, "Invariants"): heartbeats mark live work; a trial whose
    # heartbeat is older than the grace period is failed and re-enqueued.
    heartbeat_interval_s: float = Field(5.0, gt=0)
    heartbeat_grace_s: float = Field(60.0, gt=0)
    max_retries: int = Field(3, ge=0)

    # Workers
    workers: int = Field(2, ge=0, description="local worker processes started by `sweeps serve`")
    device: str = Field("cpu", description="cpu, gpu, gpu:N or auto")
    pack_max_replicas: int = Field(64, ge=1)
    poll_interval_s: float = Field(1.0, gt=0)

    # HTTP access
    read_access: Literal["public", "token"] = "public"
    require_token_for_writes: bool = True
    cors_origins: list[str] = Field(default_factory=list)
    optuna_dashboard_url: str | None = None

    log_level: str = "INFO"
    log_json: bool = False

    @field_validator("database_url")
    @classmethod
    def _known_backend(cls, v: str) -> str:
        if not (v.startswith("sqlite") or v.startswith("postgresql")):
            raise ValueError("SWEEPS_DATABASE_URL must be a sqlite:/// or postgresql+psycopg:// URL")
        return v

    @field_validator("heartbeat_grace_s")
    @classmethod
    def _grace_positive(cls, v: float) -> float:
        return v

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
