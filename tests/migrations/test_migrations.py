"""Alembic owns our schema: an empty database upgrades to head, and a database
left at an older revision, with data in it, upgrades without losing it."""

from __future__ import annotations

import threading

import pytest
from alembic import command
from sqlalchemy import inspect, text
from typer.testing import CliRunner

from service.cli import app as cli
from service.core.db import make_engine
from service.core.migrate import (
    VERSION_TABLE,
    _alembic_config,
    current_revision,
    head_revision,
    upgrade,
    wait_until_current,
)

OUR_TABLES = {"sweeps", "configs", "runs", "curve_points", "workers", "api_tokens", "datasets", "workloads"}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_url(request: pytest.FixtureRequest, tmp_path) -> str:  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'empty.db'}"
    # postgres_url is already migrated: drop everything to get an empty database back
    url: str = request.getfixturevalue("postgres_url")
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    return url


def test_empty_database_upgrades_to_head_beside_optunas_tables(empty_url: str) -> None:
    upgrade(empty_url)
    engine = make_engine(empty_url)
    tables = set(inspect(engine).get_table_names())
    assert OUR_TABLES | {"sweep_reports", VERSION_TABLE} <= tables
    assert {"studies", "trials", "alembic_version"} <= tables  # Optuna's, with its own version table
    assert current_revision(engine) == head_revision(empty_url)
    upgrade(empty_url)  # idempotent
    assert current_revision(engine) == head_revision(empty_url)
    engine.dispose()


def test_database_at_0001_with_data_upgrades_keeping_it(empty_url: str) -> None:
    command.upgrade(_alembic_config(empty_url), "0001")
    engine = make_engine(empty_url)
    assert current_revision(engine) == "0001"
    assert "sweep_reports" not in inspect(engine).get_table_names()
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO sweeps (id, name, study_name, study_id, spec, workload_key, sampler, state, "
                "n_configs, n_seeds, epochs, trials_asked, refine_round, created_at, updated_at) VALUES "
                "(1, 'old', 'sweep-old', 1, '{}', 'preset:sensor_lstm', 'grid', 'completed', 1, 1, 1, 0, 0, "
                "'2026-01-01 00:00:00', '2026-01-01 00:00:00')"
            )
        )
        # Before 0003 a finished configuration was spelled 'complete'.
        conn.execute(
            text(
                "INSERT INTO configs (id, sweep_id, key, params, state, attempts, refine_round) "
                "VALUES (1, 1, '{}', '{}', 'complete', 0, 0)"
            )
        )
    upgrade(empty_url)
    assert current_revision(engine) == head_revision(empty_url)
    assert "sweep_reports" in inspect(engine).get_table_names()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT name FROM sweeps WHERE id = 1")).scalar() == "old"
        assert conn.execute(text("SELECT state FROM configs WHERE id = 1")).scalar() == "completed"
    engine.dispose()


def test_models_and_migrations_have_not_drifted_apart(empty_url: str) -> None:
    """Autogenerate against a database at head finds nothing: every ORM change has its migration."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from service.core.repo.models import Base

    upgrade(empty_url)
    engine = make_engine(empty_url)
    ours = set(Base.metadata.tables)
    with engine.connect() as conn:
        ctx = MigrationContext.configure(
            conn,
            opts={
                "version_table": VERSION_TABLE,
                "compare_type": True,
                # Optuna's tables share the database; they are Optuna's to migrate.
                "include_name": lambda name, type_, _parent: type_ != "table" or name in ours,
            },
        )
        diff = compare_metadata(ctx, Base.metadata)
    engine.dispose()
    assert diff == [], f"models.py and migrations/ disagree; write a migration for: {diff}"


def test_pods_beside_the_migrations_job_wait_until_the_schema_is_current(empty_url: str) -> None:
    """`sweeps wait-for-migrations` (the Kubernetes initContainers): about 1 s."""
    engine = make_engine(empty_url)
    try:
        assert not wait_until_current(engine, empty_url, timeout_s=0.2, poll_s=0.05)
        args = ["wait-for-migrations", "--database-url", empty_url]
        result = CliRunner().invoke(cli, [*args, "--timeout", "0"])
        assert result.exit_code == 2
        migrating = threading.Timer(0.3, upgrade, args=(empty_url,))
        migrating.start()
        assert wait_until_current(engine, empty_url, timeout_s=60, poll_s=0.1)
        migrating.join()
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output
    finally:
        engine.dispose()


def test_runs_stored_before_0007_get_their_analysis_columns_from_metrics(empty_url: str) -> None:
    command.upgrade(_alembic_config(empty_url), "0006")
    engine = make_engine(empty_url)
    metrics = (
        '{"l0": 2.5, "l_chance": 1.79, "epochs_to_target": 4, "fluctuation": 0.1, "spikes": 2, '
        '"sharpness_reached_first": 1.0, "L_min": 0.3}'
    )
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO sweeps (id, name, study_name, study_id, spec, workload_key, sampler, state, "
                "n_configs, n_seeds, epochs, trials_asked, refine_round, created_at, updated_at) VALUES "
                "(1, 'old', 'sweep-old', 1, '{}', 'preset:sensor_lstm', 'grid', 'completed', 1, 2, 5, 0, 0, "
                "'2026-01-01 00:00:00', '2026-01-01 00:00:00')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO configs (id, sweep_id, key, params, state, attempts, refine_round) "
                "VALUES (1, 1, '{}', '{}', 'completed', 0, 0)"
            )
        )
        for run_id, seed, m in ((1, 0, metrics), (2, 1, "{}")):
            conn.execute(
                text(
                    "INSERT INTO runs (id, sweep_id, config_id, trial_id, seed, init_seed, data_seed, "
                    "status, flags, metrics, epochs_run) VALUES "
                    f"({run_id}, 1, 1, 0, {seed}, {seed}, {seed}, 'completed', '[]', '{m}', 5)"
                )
            )
    upgrade(empty_url)
    with engine.connect() as conn:
        got = conn.execute(
            text(
                "SELECT l0, l_chance, epochs_to_target, fluctuation, spikes, jump_p90, "
                "sharpness_reached_first, metrics FROM runs ORDER BY id"
            )
        ).all()
    engine.dispose()
    first, second = got
    assert tuple(first[:7]) == (2.5, 1.79, 4, 0.1, 2.0, None, 1.0)
    assert "L_min" in str(first[7])  # metrics itself is kept as it was
    assert tuple(second[:7]) == (None,) * 7
