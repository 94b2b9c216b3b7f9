"""audit action names from the contract's vocabulary

Revision ID: 0004auditnames
Revises: 0003builtin
Create Date: 2026-12-06 03:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0004auditnames"
down_revision = "0003builtin"
branch_labels = None
depends_on = None

# Old name -> the name the audit vocabulary (portal/services/audit.py) uses now. The admin
# console and the CLI used to write different words for the same change.
RENAMED = {
    "user.disable": "user.disabled",
    "user.enable": "user.enabled",
    "user.create_admin": "user.created",
    "membership.add": "membership.added",
    "group.add_member": "membership.added",
    "membership.remove": "membership.removed",
    "group.remove_member": "membership.removed",
    "group.create": "group.created",
    "group.rename": "group.renamed",
    "group.delete": "group.deleted",
    "users.export": "users.exported",
    "config.check": "config.checked",
}

AUDIT_EVENTS = sa.table("audit_events", sa.column("action", sa.String))


def _rename(pairs):
    for old, new in pairs:
        op.execute(AUDIT_EVENTS.update().where(AUDIT_EVENTS.c.action == old).values(action=new))


def upgrade():
    _rename(RENAMED.items())


def downgrade():
    # Several old names became one; the admin console's names come back.
    _rename({new: old for old, new in reversed(RENAMED.items())}.items())
