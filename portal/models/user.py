"""People who can sign in: External users from Entra ID and Local accounts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from flask_login import UserMixin
from sqlalchemy import orm as so

from portal.models.base import Base, intpk, optional_timestamp, timestamp

if TYPE_CHECKING:
    from portal.models.group import GroupMembership

EXTERNAL = "External"
LOCAL = "Local"


class User(UserMixin, Base):
    """A portal user; External users are keyed by (tenant_id, object_id) and nothing else."""

    __tablename__ = "users"
    __table_args__ = (
        sa.UniqueConstraint("tenant_id", "object_id"),
        sa.CheckConstraint("user_type IN ('External', 'Local')", name="user_type"),
        # Keyset pagination of the admin users list: each sort column with the id tiebreak.
        sa.Index("ix_users_display_name_id", "display_name", "id"),
        sa.Index("ix_users_email_id", "email", "id"),
        sa.Index("ix_users_last_login_at_id", "last_login_at", "id"),
        # The overview's admins, in name order, without scanning every user.
        sa.Index(
            "ix_users_admins",
            "display_name",
            "username",
            "id",
            postgresql_where=sa.text("is_admin"),
            sqlite_where=sa.text("is_admin = 1"),  # as SQLAlchemy writes `is_admin` there
        ),
    )

    id: so.Mapped[intpk]
    tenant_id: so.Mapped[str | None] = so.mapped_column(sa.String(36))
    object_id: so.Mapped[str | None] = so.mapped_column(sa.String(36), index=True)
    username: so.Mapped[str | None] = so.mapped_column(sa.String(150), unique=True)
    user_type: so.Mapped[str] = so.mapped_column(sa.String(16))
    email: so.Mapped[str | None] = so.mapped_column(sa.String(320))
    display_name: so.Mapped[str] = so.mapped_column(sa.String(256), default="")
    upn: so.Mapped[str | None] = so.mapped_column(sa.String(320))
    password_hash: so.Mapped[str | None] = so.mapped_column(sa.String(256))
    is_active: so.Mapped[bool] = so.mapped_column(default=True)
    is_admin: so.Mapped[bool] = so.mapped_column(default=False)
    # True while the user is disabled because Entra disabled or deleted them (reconciliation):
    # only such a user is enabled again when Entra enables them; an admin's disable wins.
    is_entra_disabled: so.Mapped[bool] = so.mapped_column(default=False, server_default=sa.false())
    created_at: so.Mapped[timestamp]
    last_login_at: so.Mapped[optional_timestamp]
    # The app roles (`roles` claim) of the last Entra sign-in.
    app_roles: so.Mapped[list[Any]] = so.mapped_column(
        sa.JSON, default=list, server_default=sa.text("'[]'")
    )

    memberships: so.Mapped[list[GroupMembership]] = so.relationship(
        back_populates="user", cascade="all, delete-orphan", passive_deletes=True
    )

    @property
    def is_external(self) -> bool:
        """Tell whether the user signs in through Entra ID."""
        return self.user_type == EXTERNAL

    @property
    def is_guest(self) -> bool:
        """Tell whether Entra invited the user from another organisation (a `#EXT#` UPN)."""
        return "#EXT#" in (self.upn or "").upper()

    @property
    def label(self) -> str:
        """Return the best human-readable name for the user."""
        return self.display_name or self.username or self.upn or self.email or f"user {self.id}"
