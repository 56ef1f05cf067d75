"""Engines and the one transaction helper.

Database errors become domain errors here and nowhere else (the way Optuna's
``_create_scoped_session`` does it), so routes and workers see
``DatabaseUnavailable`` / ``Conflict`` rather than driver exceptions.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import optuna
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker

from service.core.connections import ConnectionBudget
from service.core.errors import Conflict, DatabaseUnavailable, InvalidValue
from service.core.results.cache import AnalysisCache

log = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_S = 60.0


def make_engine(url: str, budget: dict[str, Any] | None = None, **kwargs: Any) -> Engine:
    """An engine on ``url``; ``budget`` is the pool's options on PostgreSQL (``ConnectionBudget.ours()``)."""
    if url.startswith("sqlite"):
        # Many worker processes share one file: wait for the write lock
        # instead of failing at once, and use WAL so readers never block.
        engine = create_engine(
            url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False}, **kwargs
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    return create_engine(url, **(budget if budget is not None else ConnectionBudget().ours()), **kwargs)


class Database:
    """An engine plus its session factory, and the Optuna storage on the same database; one per process."""

    def __init__(self, url: str, budget: ConnectionBudget | None = None) -> None:
        self.url = url
        self.budget = budget or ConnectionBudget()
        self.engine = make_engine(url, self.budget.ours())
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        # Analyses of this database's sweeps live as long as it does (and never serve another's).
        self.analysis_cache = AnalysisCache()
        self._optuna_lock = threading.Lock()
        self._optuna: optuna.storages.RDBStorage | None = None

    def optuna_storage(self) -> optuna.storages.RDBStorage:
        """Optuna's storage for this database, built once and kept on this object.

        Its pool is made by ``make_engine`` like ours, so Optuna's connections
        get the same SQLite busy timeout and pragmas, or the same pre-ping and
        PgBouncer driver options on PostgreSQL; it is a separate pool of the
        budget's fixed Optuna size, which keeps Optuna's sessions from waiting
        on connections our transactions hold.
        """
        with self._optuna_lock:
            if self._optuna is None:
                pool = make_engine(self.url, self.budget.optuna()).pool
                self._optuna = optuna.storages.RDBStorage(self.url, engine_kwargs={"pool": pool})
            return self._optuna

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session in one transaction: commit on success, roll back on error."""
        session = self._sessions()
        try:
            yield session
            session.commit()
        except IntegrityError as exc:
            session.rollback()
            raise Conflict(f"the change conflicts with stored data: {exc.orig}") from exc
        except (OperationalError, InterfaceError, PoolTimeout) as exc:
            # PoolTimeout: every connection of this process's budget stayed busy for pool_timeout_s.
            session.rollback()
            log.warning("database error: %s", getattr(exc, "orig", exc))
            raise DatabaseUnavailable("the database is unavailable or busy; retry in a few seconds") from exc
        except (DataError, OverflowError) as exc:
            # Hostile or careless input (NUL bytes in text on PostgreSQL, ids past
            # 64 bits) is the caller's error, not the server's: a 422, never a 500.
            session.rollback()
            reason = exc.orig if isinstance(exc, DataError) else exc
            raise InvalidValue(
                f"a value in the request cannot be stored or compared: {str(reason).splitlines()[0]}; "
                "remove NUL characters and keep integers within 64 bits"
            ) from exc
        except DBAPIError as exc:
            session.rollback()
            if exc.connection_invalidated:
                raise DatabaseUnavailable("the database connection was lost; retry") from exc
            raise
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def dispose(self) -> None:
        self.engine.dispose()
        with self._optuna_lock:
            if self._optuna is not None:
                self._optuna.engine.dispose()
                self._optuna = None
