"""pinned group links, Entra group names indexed

Revision ID: 0008pinnedlinks
Revises: 0007reconcile
Create Date: 2026-12-06 03:30:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0008pinnedlinks"
down_revision = "0007reconcile"
branch_labels = None
depends_on = None


def upgrade():
    # Match mode links by name only while one Entra group has that name; an admin can pin a
    # link by object ID, which then holds whatever names Entra shows later. No batch mode: a
    # rebuilt SQLite table would lose uq_groups_local_name, an index on an expression.
    op.add_column(
        "groups",
        sa.Column("is_link_pinned", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.create_index("ix_entra_groups_display_name", "entra_groups", ["display_name"])


def downgrade():
    op.drop_index("ix_entra_groups_display_name", table_name="entra_groups")
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE groups DROP COLUMN is_link_pinned")  # in place, SQLite 3.35+
    else:
        op.drop_column("groups", "is_link_pinned")
