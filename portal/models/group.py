"""Local groups, their link to Entra groups, and who is in them."""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy import orm as so

from portal.models.base import Base, guid, intpk, timestamp

if TYPE_CHECKING:
    from portal.models.user import User

# Group.source: where a group comes from.
ENTRA = "entra"
LOCAL = "local"
BUILTIN = "builtin"
ALL_USERS = "All users"

LOCAL_UNLINKED = sa.text("source = 'local' AND entra_group_id IS NULL")

# GroupMembership.source: who put the user in the group.
MEMBERSHIP_ENTRA = "entra"
MEMBERSHIP_MANUAL = "manual"
MEMBERSHIP_BUILTIN = "builtin"


class EntraGroup(Base):
    """What Graph last said about an Entra object ID: its group name, or that it is no group."""

    __tablename__ = "entra_groups"

    id: so.Mapped[intpk]
    object_id: so.Mapped[guid] = so.mapped_column(unique=True)
    tenant_id: so.Mapped[guid]
    # None when Graph did not resolve the ID to a group (rows of older versions only).
    # Indexed: match mode counts the Entra groups that share a name.
    display_name: so.Mapped[str | None] = so.mapped_column(sa.String(256), index=True)
    read_at: so.Mapped[timestamp]

    group: so.Mapped[Group | None] = so.relationship(back_populates="entra_group")


class Group(Base):
    """A local group; `entra_group` links it to an Entra group by object ID."""

    __tablename__ = "groups"
    __table_args__ = (
        sa.CheckConstraint("source IN ('entra', 'local', 'builtin')", name="source"),
        # Keyset pagination of the admin groups list.
        sa.Index("ix_groups_name_id", "name", "id"),
        # One built-in group per name, so concurrent first sign-ins cannot create two `All users`.
        sa.Index(
            "uq_groups_builtin_name",
            "name",
            unique=True,
            sqlite_where=sa.text("source = 'builtin'"),
            postgresql_where=sa.text("source = 'builtin'"),
        ),
        # Local group names are the portal's own: one group per name, whatever the letter case.
        # Linked groups are left out, since their names follow Entra.
        sa.Index(
            "uq_groups_local_name",
            sa.func.lower(sa.literal_column("name")),
            unique=True,
            sqlite_where=LOCAL_UNLINKED,
            postgresql_where=LOCAL_UNLINKED,
        ),
    )

    id: so.Mapped[intpk]
    name: so.Mapped[str] = so.mapped_column(sa.String(256), index=True)
    source: so.Mapped[str] = so.mapped_column(sa.String(16))
    description: so.Mapped[str] = so.mapped_column(sa.Text, default="")
    entra_group_id: so.Mapped[int | None] = so.mapped_column(
        sa.ForeignKey("entra_groups.id", ondelete="SET NULL"), unique=True
    )
    # An admin pinned the link by object ID: match mode then never drops it for an ambiguous name.
    is_link_pinned: so.Mapped[bool] = so.mapped_column(default=False, server_default=sa.false())
    created_at: so.Mapped[timestamp]

    entra_group: so.Mapped[EntraGroup | None] = so.relationship(back_populates="group")
    memberships: so.Mapped[list[GroupMembership]] = so.relationship(
        back_populates="group", cascade="all, delete-orphan", passive_deletes=True
    )

    @property
    def object_id(self) -> str | None:
        """Return the linked Entra group's object ID, if any."""
        return self.entra_group.object_id if self.entra_group else None


class GroupMembership(Base):
    """One user in one group, and who put them there (`entra`, `manual` or `builtin`)."""

    __tablename__ = "group_memberships"
    __table_args__ = (
        sa.UniqueConstraint("group_id", "user_id"),
        sa.CheckConstraint("source IN ('entra', 'manual', 'builtin')", name="source"),
    )

    id: so.Mapped[intpk]
    group_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("groups.id", ondelete="CASCADE"))
    user_id: so.Mapped[int] = so.mapped_column(
        sa.ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    source: so.Mapped[str] = so.mapped_column(sa.String(16))
    created_at: so.Mapped[timestamp]

    group: so.Mapped[Group] = so.relationship(back_populates="memberships")
    user: so.Mapped[User] = so.relationship(back_populates="memberships")
