"""How many PostgreSQL connections one process may hold, and the driver options for PgBouncer.

Every process (an API process, a worker) opens two pools on its database: ours,
for the project's own transactions, and Optuna's storage (samplers ask and
tell through it, the API creates studies through it). Both are bounded, so one
process holds at most ``ConnectionBudget.max_connections`` connections, and
PostgreSQL's ``max_connections`` can be sized for N processes (see
docs/kubernetes.md, "Connection budget").

A worker needs two connections of ours at the same time (its training loop
and its heartbeat thread; no transaction is nested in another) and two for
Optuna (whose storage checks its schema version on a second connection while
its first session is open): the worker manifests set 2 + 0 + 2 = 4.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from service.core.config import Settings


@dataclass(frozen=True)
class ConnectionBudget:
    pool_size: int = 5
    max_overflow: int = 5
    optuna_pool_size: int = 2
    pool_timeout_s: float = 30.0
    # PgBouncer in transaction pooling hands each transaction to any server
    # connection, so a statement prepared on one is unknown on the next.
    pgbouncer: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> ConnectionBudget:
        return cls(
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            optuna_pool_size=settings.db_optuna_pool_size,
            pool_timeout_s=settings.db_pool_timeout_s,
            pgbouncer=settings.db_pgbouncer,
        )

    @property
    def max_connections(self) -> int:
        """The most connections one process opens to PostgreSQL (ours at full overflow plus Optuna's)."""
        return self.pool_size + self.max_overflow + self.optuna_pool_size

    def ours(self) -> dict[str, Any]:
        """``create_engine`` options of the project's own pool."""
        return self._options(self.pool_size, self.max_overflow)

    def optuna(self) -> dict[str, Any]:
        """``create_engine`` options of Optuna's pool: a fixed size, no overflow."""
        return self._options(self.optuna_pool_size, 0)

    def _options(self, size: int, overflow: int) -> dict[str, Any]:
        options: dict[str, Any] = {
            "pool_size": size,
            "max_overflow": overflow,
            "pool_timeout": self.pool_timeout_s,
            # a PostgreSQL (or PgBouncer) restart leaves dead pooled
            # connections; pinging on checkout replaces them instead of failing.
            "pool_pre_ping": True,
        }
        if self.pgbouncer:
            # psycopg 3 prepares a statement after its 5th execution on a
            # connection; None never prepares (psycopg's documented setting for
            # PgBouncer's transaction pooling).
            options["connect_args"] = {"prepare_threshold": None}
        return options
