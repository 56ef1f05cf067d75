"""sharpness curves: the Hessian's top eigenvalue and its stability threshold per epoch

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 22:30:00

Runs of a sweep with ``record_sharpness`` store, per measured epoch, the sharpness,
the preconditioned sharpness (adaptive optimizers) and the threshold the optimizer's
stability is compared to (docs/sharpness.md). Nullable: other runs leave them empty.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_COLUMNS = ("sharpness", "preconditioned_sharpness", "stability_threshold")


def upgrade() -> None:
    with op.batch_alter_table("curve_points") as batch:
        for name in _COLUMNS:
            batch.add_column(sa.Column(name, sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("curve_points") as batch:
        for name in reversed(_COLUMNS):
            batch.drop_column(name)
