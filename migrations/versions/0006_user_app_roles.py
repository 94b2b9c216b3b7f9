"""users.app_roles: the app roles of the last sign-in

Revision ID: 0006approles
Revises: 0005localname
Create Date: 2026-12-06 03:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0006approles"
down_revision = "0005localname"
branch_labels = None
depends_on = None


# Plain ALTER TABLE, not batch mode: SQLite's batch mode copies and drops `users`, and dropping
# it would cascade to every membership and sync record.
def upgrade():
    op.add_column(
        "users", sa.Column("app_roles", sa.JSON(), server_default=sa.text("'[]'"), nullable=False)
    )


def downgrade():
    op.drop_column("users", "app_roles")
