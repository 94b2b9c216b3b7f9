"""Plain records the emulator keeps: app registrations, codes, refresh grants, token faults."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from .credentials import ClientCredentials

DEFAULT_APP_ROLES = ("GroupMember.Read.All", "User.Read.All")
# Service-principal object ids are derived, so a client keeps the same one in a tenant.
_SP_NAMESPACE = uuid.UUID("8d6f3c55-2b41-4f0e-9a7e-5f3c1d2e6b70")


@dataclass
class Client:
    """An app registration (confidential client)."""

    client_id: str
    secret: str
    redirect_uris: list[str]
    tenant_id: str
    multi_tenant: bool = True
    group_claims: bool = True
    post_logout_redirect_uris: list[str] = field(default_factory=list)
    app_roles: list[str] = field(default_factory=lambda: list(DEFAULT_APP_ROLES))
    display_name: str = "Portal"
    # The app's own app roles assigned to users or groups: principal object id -> role values.
    role_assignments: dict[str, set[str]] = field(default_factory=dict)
    # Optional ID-token claims switched on in the registration (only "acct" is emulated).
    optional_claims: set[str] = field(default_factory=set)
    # Certificates and federated credentials: client authentication without the secret.
    credentials: ClientCredentials = field(default_factory=ClientCredentials)

    def allowed_in(self, tenant_id: str) -> bool:
        """Return whether users of tenant_id may sign in to this app."""
        return self.multi_tenant or tenant_id == self.tenant_id

    def service_principal_id(self, tenant_id: str) -> str:
        """Return the app's (stable) service principal object id in a tenant."""
        return str(uuid.uuid5(_SP_NAMESPACE, f"{self.client_id}:{tenant_id}"))


@dataclass
class AuthCode:
    """An issued authorization code and what it was issued for."""

    client_id: str
    redirect_uri: str
    code_challenge: str
    nonce: str | None
    user_id: str
    tenant_id: str
    scope: str
    sid: str
    issued_at: float
    used: bool = False


@dataclass
class RefreshGrant:
    """What a refresh token stands for."""

    client_id: str
    user_id: str
    tenant_id: str
    scope: str
    sid: str


@dataclass
class TokenFault:
    """A failure for the next token request."""

    status: int
    retry_after: int | None
