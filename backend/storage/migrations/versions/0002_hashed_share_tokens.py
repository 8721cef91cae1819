"""Share tokens stored as SHA-256, like API tokens; users get ``cookies_valid_after`` (cookie rotation).

Existing links keep working: each stored token is replaced by its digest. Downgrading cannot bring the tokens
back, so it drops every share link (their holders get "revoked").

Revision ID: 0002_hashed_share_tokens
Revises: 0001_initial
Create Date: 2026-12-03
"""

from __future__ import annotations

import hashlib

import sqlalchemy as sa
from alembic import op

revision = "0002_hashed_share_tokens"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def _share_links(name: str, key: str) -> None:
    op.create_table(
        name,
        sa.Column(key, sa.String(64), primary_key=True),
        sa.Column("job_id", sa.String(32), sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
    )


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("cookies_valid_after", sa.DateTime(), nullable=True))

    _share_links("share_links_hashed", "token_sha256")
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT token, job_id, created_at, revoked_at FROM share_links")).all()
    if rows:
        bind.execute(
            sa.text(
                "INSERT INTO share_links_hashed (token_sha256, job_id, created_at, revoked_at) "
                "VALUES (:digest, :job_id, :created_at, :revoked_at)"
            ),
            [
                {
                    "digest": hashlib.sha256(token.encode()).hexdigest(),
                    "job_id": job_id,
                    "created_at": created_at,
                    "revoked_at": revoked_at,
                }
                for token, job_id, created_at, revoked_at in rows
            ],
        )
    op.drop_index("ix_share_links_job_id", "share_links")
    op.drop_table("share_links")
    op.rename_table("share_links_hashed", "share_links")
    op.create_index("ix_share_links_job_id", "share_links", ["job_id"])


def downgrade() -> None:
    op.drop_index("ix_share_links_job_id", "share_links")
    op.drop_table("share_links")
    _share_links("share_links", "token")
    op.create_index("ix_share_links_job_id", "share_links", ["job_id"])
    with op.batch_alter_table("users") as batch:
        batch.drop_column("cookies_valid_after")
