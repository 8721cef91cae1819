"""Jobs get a stage clock: when the current stage started, and the stage durations the worker expects.

``stage_started_at`` (set at each stage boundary) and ``stage_estimates`` (seconds per stage, the median of
recent finished jobs, written by the worker when it claims the job) let a page show overall progress and the
time left. Both are nullable: older rows simply have no estimate.

Revision ID: 0003_stage_clock
Revises: 0002_hashed_share_tokens
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_stage_clock"
down_revision = "0002_hashed_share_tokens"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("stage_started_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("stage_estimates", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("stage_estimates")
        batch.drop_column("stage_started_at")
