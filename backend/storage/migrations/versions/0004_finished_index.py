"""Index finished jobs by state and finish time, so the worker's read of recent stage durations stays cheap.

Each claim asks for the timings of the latest done jobs (``repo.recent_stage_seconds``); without an index that
sorts every job in the table.

Revision ID: 0004_finished_index
Revises: 0003_stage_clock
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0004_finished_index"
down_revision = "0003_stage_clock"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_jobs_state_finished", "jobs", ["state", "finished_at"])


def downgrade() -> None:
    op.drop_index("ix_jobs_state_finished", table_name="jobs")
