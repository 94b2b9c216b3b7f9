"""The admin console: users, groups, sync activity, audit log and configuration check."""

from portal.admin.routes import bp

__all__ = ["bp"]
