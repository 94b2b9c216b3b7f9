"""Who may sign in through Entra: PORTAL_ALLOW_GUESTS, PORTAL_ALLOWED_GROUP_IDS and _APP_ROLES.

The identity check needs only the token; the membership check needs the group IDs the sync
resolved (the claim, or Graph on the overage path). A policy that cannot be decided refuses.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from flask import current_app

if TYPE_CHECKING:
    from portal.services.sync import Resolution


class Refused(Exception):
    """The access policy refuses this sign-in; `reason` is for the audit trail and admins."""

    def __init__(self, reason: str, *, undecided: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.undecided = undecided  # the policy could not be checked, so nobody is let in


def app_roles(claims: Mapping[str, Any]) -> list[str]:
    """Return the token's app role values (the `roles` claim), sorted, without duplicates."""
    roles = claims.get("roles")
    if not isinstance(roles, list):
        return []
    return sorted({r for r in roles if isinstance(r, str) and r})


def guest_reason(claims: Mapping[str, Any]) -> str | None:
    """Say why the token is a guest's (`acct` 1, or an `idp` outside its tenant), else None."""
    if str(claims.get("acct", "")) == "1":
        return "guest account (acct claim 1)"
    idp = claims.get("idp")
    if not isinstance(idp, str) or not idp:
        return None
    tenant = str(claims.get("tid", "")).lower()
    own = {str(claims.get("iss", "")).lower().rstrip("/"), f"https://sts.windows.net/{tenant}"}
    if idp.lower().rstrip("/") in own:
        return None
    return f"guest account (signed in through {idp[:100]})"


def check_identity(claims: Mapping[str, Any]) -> None:
    """Refuse a guest when PORTAL_ALLOW_GUESTS is false."""
    if current_app.config.get("PORTAL_ALLOW_GUESTS", True):
        return
    reason = guest_reason(claims)
    if reason:
        raise Refused(f"{reason}: PORTAL_ALLOW_GUESTS is false")


def restricted() -> bool:
    """Tell whether PORTAL_ALLOWED_GROUP_IDS or PORTAL_ALLOWED_APP_ROLES limits who signs in."""
    config = current_app.config
    return bool(config.get("PORTAL_ALLOWED_GROUP_IDS") or config.get("PORTAL_ALLOWED_APP_ROLES"))


def check_membership(claims: Mapping[str, Any], resolution: Resolution) -> None:
    """Admit a holder of an allowed app role or a member of an allowed group, refuse the rest."""
    if not restricted():
        return
    config = current_app.config
    if set(app_roles(claims)) & set(config.get("PORTAL_ALLOWED_APP_ROLES") or []):
        return
    allowed_groups = set(config.get("PORTAL_ALLOWED_GROUP_IDS") or [])
    if not allowed_groups:
        raise Refused("no app role in PORTAL_ALLOWED_APP_ROLES")
    if resolution.group_ids is None:
        raise Refused(f"group membership could not be decided: {resolution.reason}", undecided=True)
    if allowed_groups.isdisjoint(resolution.group_ids):
        raise Refused("not a member of a group in PORTAL_ALLOWED_GROUP_IDS")
