"""configurations that finished are 'completed', like sweeps and runs

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 18:00:00

Configurations were stored as 'complete' while sweeps and runs were
'completed'; service.core.states has one spelling for each state now.
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("UPDATE configs SET state = 'completed' WHERE state = 'complete'")


def downgrade() -> None:
    op.execute("UPDATE configs SET state = 'complete' WHERE state = 'completed'")
