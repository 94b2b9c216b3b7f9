"""unique built-in group name

Revision ID: 0003builtin
Revises: 0002admin
Create Date: 2026-11-25 11:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0003builtin"
down_revision = "0002admin"
branch_labels = None
depends_on = None

BUILTIN = sa.text("source = 'builtin'")


def upgrade():
    # One built-in group per name: concurrent first sign-ins must not create two `All users`.
    with op.batch_alter_table("groups", schema=None) as batch_op:
        batch_op.create_index(
            "uq_groups_builtin_name",
            ["name"],
            unique=True,
            sqlite_where=BUILTIN,
            postgresql_where=BUILTIN,
        )


def downgrade():
    with op.batch_alter_table("groups", schema=None) as batch_op:
        batch_op.drop_index("uq_groups_builtin_name")
