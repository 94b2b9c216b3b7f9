"""add admin console indexes

Revision ID: 0002admin
Revises: 0001
Create Date: 2026-11-25 10:30:00.000000

"""

from alembic import op

# revision identifiers, used by Alembic.
revision = "0002admin"
down_revision = "0001"
branch_labels = None
depends_on = None

# Keyset pagination of the admin lists: each sort column with the id tiebreak, so a deep page
# is an index range scan instead of OFFSET over 100,000 rows.
INDEXES = [
    ("users", "ix_users_display_name_id", ["display_name", "id"]),
    ("users", "ix_users_email_id", ["email", "id"]),
    ("users", "ix_users_last_login_at_id", ["last_login_at", "id"]),
    ("groups", "ix_groups_name_id", ["name", "id"]),
    ("audit_events", "ix_audit_events_actor_id", ["actor", "id"]),
]


def upgrade():
    for table, name, columns in INDEXES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_index(name, columns, unique=False)


def downgrade():
    for table, name, _columns in reversed(INDEXES):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(name)
