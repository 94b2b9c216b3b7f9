"""unique local group name, whatever the letter case

Revision ID: 0005localname
Revises: 0004auditnames
Create Date: 2026-12-06 03:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0005localname"
down_revision = "0004auditnames"
branch_labels = None
depends_on = None

LOCAL_UNLINKED = sa.text("source = 'local' AND entra_group_id IS NULL")


def upgrade():
    # Existing duplicates (the old code accepted them) get a numbered suffix, so the index can
    # be built: "Finance", "finance" become "Finance", "finance (2)".
    groups = sa.table(
        "groups",
        sa.column("id", sa.Integer),
        sa.column("name", sa.String),
        sa.column("source", sa.String),
        sa.column("entra_group_id", sa.Integer),
    )
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(groups.c.id, groups.c.name)
        .where(groups.c.source == "local", groups.c.entra_group_id.is_(None))
        .order_by(groups.c.id)
    ).all()
    seen: dict[str, int] = {}
    for group_id, name in rows:
        key = name.lower()
        seen[key] = seen.get(key, 0) + 1
        if seen[key] > 1:
            new_name = f"{name} ({seen[key]})"
            connection.execute(groups.update().where(groups.c.id == group_id).values(name=new_name))
    with op.batch_alter_table("groups", schema=None) as batch_op:
        batch_op.create_index(
            "uq_groups_local_name",
            [sa.text("lower(name)")],
            unique=True,
            sqlite_where=LOCAL_UNLINKED,
            postgresql_where=LOCAL_UNLINKED,
        )


def downgrade():
    with op.batch_alter_table("groups", schema=None) as batch_op:
        batch_op.drop_index("uq_groups_local_name")
