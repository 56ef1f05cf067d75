"""analysis metrics as columns: the run metrics every analysis aggregates, copied out of the JSON

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 04:15:00

A cold analysis reads, per run, the initial and chance losses, the epoch the
target was first reached, the fluctuation measures and the sharpness summary.
Extracted from the ``metrics`` JSON that was 13 ``json_extract`` calls per run
(SQLite; ``->>`` on PostgreSQL), ~20 ms of a 10,000-run sweep's 300 ms budget;
as columns it is a plain read. ``metrics`` keeps every value as before (third
parties reading it see no change); existing runs are filled from it here.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# (name, type) as in service/core/repo/models.py at this revision.
_COLUMNS = (
    ("l0", sa.Float()),
    ("l_chance", sa.Float()),
    ("epochs_to_target", sa.Integer()),
    ("fluctuation", sa.Float()),
    ("jump_p90", sa.Float()),
    ("running_fluctuation", sa.Float()),
    ("spikes", sa.Float()),
    ("largest_spike", sa.Float()),
    ("step_loss_var", sa.Float()),
    ("sharpness_peak_ratio", sa.Float()),
    ("sharpness_reached_epoch", sa.Float()),
    ("failure_onset_epoch", sa.Float()),
    ("sharpness_reached_first", sa.Float()),
)


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        for name, type_ in _COLUMNS:
            batch.add_column(sa.Column(name, type_, nullable=True))
    postgres = op.get_bind().dialect.name == "postgresql"
    sets = []
    for name, type_ in _COLUMNS:
        if postgres:  # metrics is json: ->> gives text, NULL where the key is absent
            cast = "integer" if isinstance(type_, sa.Integer) else "double precision"
            value = f"CAST(CAST(metrics ->> '{name}' AS double precision) AS {cast})"
        else:
            value = f"json_extract(metrics, '$.{name}')"
        sets.append(f"{name} = {value}")
    op.execute(f"UPDATE runs SET {', '.join(sets)} WHERE metrics IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        for name, _ in reversed(_COLUMNS):
            batch.drop_column(name)
