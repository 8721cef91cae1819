"""Jobs get a revision: one more at every change of the row, so clients can tell an old event from a new one.

Events about one job are published by several processes (a web process's dispatcher round, the worker's stage
writes) and can arrive out of order; with ``revision`` in every job's JSON a page keeps the newest. Existing
rows start at 0.

Revision ID: 0005_job_revision
Revises: 0004_finished_index
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_job_revision"
down_revision = "0004_finished_index"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("revision", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("revision")
