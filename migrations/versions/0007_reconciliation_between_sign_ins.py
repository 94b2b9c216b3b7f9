"""reconciliation between sign-ins

Revision ID: 0007reconcile
Revises: 0006approles
Create Date: 2026-12-06 02:40:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0007reconcile"
down_revision = "0006approles"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "delta_states",
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("users_link", sa.Text(), nullable=True),
        sa.Column("groups_link", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_delta_states")),
    )
    op.create_table(
        "directory_edges",
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("group_id", sa.String(length=36), nullable=False),
        sa.Column("member_id", sa.String(length=36), nullable=False),
        sa.Column("is_group", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint(
            "tenant_id", "group_id", "member_id", name=op.f("pk_directory_edges")
        ),
    )
    with op.batch_alter_table("directory_edges", schema=None) as batch_op:
        batch_op.create_index(
            "ix_directory_edges_tenant_id_member_id", ["tenant_id", "member_id"], unique=False
        )

    op.create_table(
        "reconcile_locks",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_reconcile_locks")),
    )
    op.create_table(
        "reconcile_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("is_full", sa.Boolean(), nullable=False),
        sa.Column("users_disabled", sa.Integer(), nullable=False),
        sa.Column("users_enabled", sa.Integer(), nullable=False),
        sa.Column("memberships_added", sa.Integer(), nullable=False),
        sa.Column("memberships_removed", sa.Integer(), nullable=False),
        sa.Column("graph_calls", sa.Integer(), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.Column("actor", sa.String(length=320), nullable=False),
        sa.CheckConstraint(
            "status IN ('ok', 'held', 'failed')", name=op.f("ck_reconcile_runs_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reconcile_runs")),
    )
    with op.batch_alter_table("reconcile_runs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_reconcile_runs_started_at"), ["started_at"], unique=False
        )

    # In place, not batch mode: on SQLite batch mode copies and drops `users`, and with foreign
    # keys on that drop cascades to every membership and sync record.
    op.add_column(
        "users",
        sa.Column("is_entra_disabled", sa.Boolean(), server_default=sa.false(), nullable=False),
    )


def downgrade():
    # In place too (SQLite 3.35+ drops a column without copying the table).
    op.execute("ALTER TABLE users DROP COLUMN is_entra_disabled")

    with op.batch_alter_table("reconcile_runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reconcile_runs_started_at"))

    op.drop_table("reconcile_runs")
    op.drop_table("reconcile_locks")
    with op.batch_alter_table("directory_edges", schema=None) as batch_op:
        batch_op.drop_index("ix_directory_edges_tenant_id_member_id")

    op.drop_table("directory_edges")
    op.drop_table("delta_states")
