"""runs.training: how each run was trained (pack size, compaction, compiled function, fallback)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 22:30:00

Issue 15 (stream "compact"): every run says how it was trained. A nullable
JSON column; runs trained before it have NULL (not recorded).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("training", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("training")
