"""add user sessions and sign-in flows

Revision ID: 0009sessions
Revises: 0008pinnedlinks
Create Date: 2026-12-06 02:37:06.934768

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0009sessions"
down_revision = "0008pinnedlinks"
branch_labels = None
depends_on = None


def upgrade():
    # Sessions and sign-in flows live on the server: a cookie names a row, it holds nothing itself.
    op.create_table(
        "sign_in_flows",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=128), nullable=False),
        sa.Column("browser_hash", sa.String(length=64), nullable=False),
        sa.Column("flow", sa.JSON(), nullable=False),
        sa.Column("next_url", sa.String(length=2048), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sign_in_flows")),
        sa.UniqueConstraint("state", name=op.f("uq_sign_in_flows_state")),
    )
    with op.batch_alter_table("sign_in_flows", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sign_in_flows_browser_hash"), ["browser_hash"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_sign_in_flows_expires_at"), ["expires_at"], unique=False
        )

    op.create_table(
        "user_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("address", sa.String(length=45), nullable=False),
        sa.Column("user_agent", sa.String(length=256), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_reason", sa.String(length=16), nullable=True),
        sa.CheckConstraint(
            "end_reason IS NULL OR end_reason IN ('logout', 'everywhere', 'admin', 'disabled', 'reconcile', 'idle', 'max_age')",
            name=op.f("ck_user_sessions_end_reason"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_user_sessions_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_user_sessions_token_hash")),
    )
    with op.batch_alter_table("user_sessions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_user_sessions_expires_at"), ["expires_at"], unique=False
        )
        batch_op.create_index(
            "ix_user_sessions_user_id_ended_at", ["user_id", "ended_at"], unique=False
        )


def downgrade():
    with op.batch_alter_table("user_sessions", schema=None) as batch_op:
        batch_op.drop_index("ix_user_sessions_user_id_ended_at")
        batch_op.drop_index(batch_op.f("ix_user_sessions_expires_at"))

    op.drop_table("user_sessions")
    with op.batch_alter_table("sign_in_flows", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sign_in_flows_expires_at"))
        batch_op.drop_index(batch_op.f("ix_sign_in_flows_browser_hash"))

    op.drop_table("sign_in_flows")
