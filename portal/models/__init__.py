"""Every model, imported here so Alembic and `flask shell` see every table."""

from portal.models.audit import AuditEvent, LoginFailure
from portal.models.base import Base
from portal.models.group import EntraGroup, Group, GroupMembership
from portal.models.reconcile import DeltaState, DirectoryEdge, ReconcileLock, ReconcileRun
from portal.models.session import SignInFlow, UserSession
from portal.models.sync import SyncRecord
from portal.models.user import User

__all__ = [
    "AuditEvent",
    "Base",
    "DeltaState",
    "DirectoryEdge",
    "EntraGroup",
    "Group",
    "GroupMembership",
    "LoginFailure",
    "ReconcileLock",
    "ReconcileRun",
    "SignInFlow",
    "SyncRecord",
    "User",
    "UserSession",
]
