"""The admin console: users, groups, sync activity, audit log and configuration check."""

# Importing each view module registers its views on `bp` (defined, with the guard, in routes).
from portal.admin import audit, groups, overview, reconcile, settings, sync, user_sessions, users
from portal.admin.routes import bp

__all__ = [
    "audit",
    "bp",
    "groups",
    "overview",
    "reconcile",
    "settings",
    "sync",
    "user_sessions",
    "users",
]
