"""uploaded workloads keep the weights of their .keras file (init: saved)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 22:30:00

A workload uploaded as a ``.keras`` file with weights keeps its
``model.weights.h5`` bytes, so that a sweep with ``init: saved`` can start
every seed from them on any worker. NULL for every other workload.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("workloads") as batch:
        batch.add_column(sa.Column("initial_weights", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("workloads") as batch:
        batch.drop_column("initial_weights")
