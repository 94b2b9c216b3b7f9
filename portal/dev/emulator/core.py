"""The Emulator facade: directory, app registrations, grants, knobs and the HTTPS server."""

from __future__ import annotations

import random
import secrets
import threading
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import pki, sample
from .credentials import FederatedCredential
from .directory import GROUP, USER, Directory, DirObject
from .faults import GraphFaults, Latency, RetryTracker, RuBudget
from .models import DEFAULT_APP_ROLES, AuthCode, Client, RefreshGrant, TokenFault
from .server import ServerThread
from .tokens import Tamper, TokenSigner

if TYPE_CHECKING:
    from .sample import SampleData


class Emulator:
    """Entra ID v2.0 + Microsoft Graph v1.0 emulator; see the package docstring for the API."""

    def __init__(self, state_dir: str | Path) -> None:
        self.state_dir = Path(state_dir)
        self.ca_path: Path = pki.ensure_tls_files(self.state_dir)
        self.directory = Directory()
        self.signer = TokenSigner(pki.load_or_create_signing_key(self.state_dir))
        self.clients: dict[str, Client] = {}
        self.codes: dict[str, AuthCode] = {}
        self.refresh_tokens: dict[str, RefreshGrant] = {}
        self.graph_faults = GraphFaults()
        self.retries = RetryTracker()
        self.ru_budget: RuBudget | None = None
        self.group_claim_limit = 200
        self.account_notes: dict[str, str] = {}  # object id -> what the account shows (picker)
        self.member_groups_limit = 11000
        self.get_by_ids_limit = 1000
        self.code_lifetime = 600
        # Delta queries: links issued before the epoch changed are refused (410 syncStateNotFound).
        self.delta_epoch = 0
        self.delta_page_size = 100  # Graph's page size when the client states no preference
        self.delta_members_per_entry = 20  # a bigger group's members spread over several entries
        self.token_lifetime = 3600
        self.lock = threading.RLock()
        self._latency = Latency()
        self._latency_endpoints: frozenset[str] | None = None
        self._counters: Counter[str] = Counter()
        self._token_faults: list[TokenFault] = []
        self._idp_errors: list[tuple[str, str | None]] = []
        self.stopping = threading.Event()
        # Signs $skiptoken values, so a nextLink stays opaque and cannot be forged.
        self.page_key = secrets.token_bytes(32)
        self._rng = random.Random()  # noqa: S311 - only shuffles answers, no secrecy involved
        self._server: ServerThread | None = None
        self.url = ""

    # -- lifecycle -----------------------------------------------------------------------

    def start(self, port: int = 0) -> Emulator:
        """Serve HTTPS on 127.0.0.1:port (0 = ephemeral) in a background thread."""
        if self._server is not None:
            raise RuntimeError("emulator already started")
        self.stopping.clear()
        self._server = ServerThread(self, port)
        self._server.start()
        self.url = f"https://127.0.0.1:{self._server.port}"
        return self

    def stop(self) -> None:
        """Stop serving; hanging and delayed requests are released."""
        self.stopping.set()
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> Emulator:
        return self if self._server else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def shuffle(self, items: list[Any]) -> None:
        """Shuffle a list in place (answers whose order Graph does not document)."""
        with self.lock:
            self._rng.shuffle(items)

    def sleep(self, seconds: float) -> None:
        """Wait, but return early when the emulator stops."""
        if seconds > 0:
            self.stopping.wait(seconds)

    # -- directory -----------------------------------------------------------------------

    def add_tenant(self, tenant_id: str | None = None, name: str = "Contoso") -> str:
        """Create a tenant and return its GUID; the first one is the default tenant."""
        return self.directory.add_tenant(tenant_id, name)

    @property
    def default_tenant_id(self) -> str:
        """The first tenant's id (one is created on demand)."""
        return self.directory.default_tenant_id or self.add_tenant()

    def _tid(self, tenant_id: str | None) -> str:
        return self.directory.tenant(tenant_id or self.default_tenant_id).id

    def add_user(
        self,
        tenant_id: str | None,
        display_name: str,
        upn: str,
        email: str | None = None,
        object_id: str | None = None,
        user_type: str = "Member",
        idp: str | None = None,
    ) -> str:
        """Create a user ("Member" or "Guest"; guests get an `idp`) and return its object id."""
        if user_type not in ("Member", "Guest"):
            raise ValueError("user_type must be 'Member' or 'Guest'")
        if user_type == "Guest" and idp is None:
            idp = "live.com"
        return self.directory.add_user(
            self._tid(tenant_id),
            display_name,
            upn,
            email=email,
            object_id=object_id,
            user_type=user_type,
            idp=idp,
        )

    def add_group(
        self,
        tenant_id: str | None,
        display_name: str,
        object_id: str | None = None,
        security_enabled: bool = True,
    ) -> str:
        """Create a group and return its object id."""
        return self.directory.add_group(
            self._tid(tenant_id), display_name, object_id, security_enabled
        )

    def add_directory_role(
        self,
        tenant_id: str | None,
        display_name: str,
        role_template_id: str,
        object_id: str | None = None,
    ) -> str:
        """Activate a directory role (shows up in memberOf as #microsoft.graph.directoryRole)."""
        return self.directory.add_role(
            self._tid(tenant_id), display_name, role_template_id, object_id
        )

    def add_member(self, group_id: str, member_id: str) -> None:
        """Add a user or group to a group (or a user to a directory role)."""
        self.directory.add_member(group_id, member_id)

    def add_members(self, group_id: str, member_ids: Iterable[str]) -> None:
        """Add several members to one group."""
        for member_id in member_ids:
            self.directory.add_member(group_id, member_id)

    def remove_member(self, group_id: str, member_id: str) -> None:
        """Remove a direct membership."""
        self.directory.remove_member(group_id, member_id)

    def rename_group(self, group_id: str, name: str) -> None:
        """Change a group's display name."""
        self.directory.rename_group(group_id, name)

    def delete_group(self, group_id: str) -> None:
        """Delete a group (Graph then answers 404 for it)."""
        self.directory.delete_group(group_id)

    def set_user(
        self,
        object_id: str,
        *,
        email: str | None = None,
        display_name: str | None = None,
        upn: str | None = None,
        account_enabled: bool | None = None,
    ) -> None:
        """Change a user's profile (None = unchanged, email="" removes it) for the next token."""
        changes: dict[str, Any] = {
            "email": email,
            "display_name": display_name,
            "upn": upn,
            "account_enabled": account_enabled,
        }
        kept = {k: v for k, v in changes.items() if v is not None}
        if kept.get("email") == "":
            kept["email"] = None
        self.directory.update_user(object_id, **kept)

    def delete_user(self, object_id: str) -> None:
        """Delete a user: Graph answers 404 for it, and groups/delta leaves its memberships out."""
        self.directory.delete_user(object_id)

    def expire_delta_links(self) -> None:
        """Make every delta and next link issued so far answer 410 Gone (syncStateNotFound)."""
        with self.lock:
            self.delta_epoch += 1

    def user(self, object_id: str) -> DirObject:
        """Return a user object (KeyError when unknown)."""
        return self.directory.require(object_id, USER)

    def group(self, object_id: str) -> DirObject:
        """Return a group object (KeyError when unknown or deleted)."""
        return self.directory.require(object_id, GROUP)

    def transitive_group_ids(self, member_id: str) -> list[str]:
        """Return the ids of every group member_id belongs to, nesting included."""
        return self.directory.transitive_group_ids(member_id)

    # -- app registrations and consent ---------------------------------------------------

    def register_client(
        self,
        client_id: str,
        client_secret: str,
        redirect_uris: Iterable[str],
        tenant_id: str | None = None,
        *,
        multi_tenant: bool = True,
        post_logout_redirect_uris: Iterable[str] = (),
        app_roles: Iterable[str] = DEFAULT_APP_ROLES,
        display_name: str = "Portal",
    ) -> Client:
        """Register (or replace) a confidential client app."""
        client = Client(
            client_id=client_id,
            secret=client_secret,
            redirect_uris=list(redirect_uris),
            tenant_id=self._tid(tenant_id),
            multi_tenant=multi_tenant,
            post_logout_redirect_uris=list(post_logout_redirect_uris),
            app_roles=list(app_roles),
            display_name=display_name,
        )
        with self.lock:
            self.clients[client_id] = client
        return client

    def assign_app_role(self, client_id: str, principal_id: str, role: str) -> None:
        """Assign one of the app's roles to a user or a group (its direct members get it)."""
        principal = self.directory.require(principal_id, USER, GROUP)
        with self.lock:
            self.clients[client_id].role_assignments.setdefault(principal.id, set()).add(role)

    def add_client_certificate(self, client_id: str, cert_pem: str | bytes) -> str:
        """Upload a certificate to an app registration; return its SHA-256 thumbprint (hex)."""
        with self.lock:
            return self.clients[client_id].credentials.add_certificate(cert_pem)

    def add_federated_credential(
        self, client_id: str, issuer: str, subject: str, public_key_pem: str
    ) -> None:
        """Trust an outside issuer's tokens for one subject (audience api://AzureADTokenExchange)."""
        credential = FederatedCredential(issuer, subject, public_key_pem)
        with self.lock:
            self.clients[client_id].credentials.federated.append(credential)

    def set_optional_claims(self, client_id: str, claims: Iterable[str]) -> None:
        """Switch optional ID-token claims on for one app (only "acct" is emulated)."""
        with self.lock:
            self.clients[client_id].optional_claims = set(claims)

    def set_group_claims(self, client_id: str, enabled: bool) -> None:
        """Turn the groups claim (and its overage marker) on or off for one app."""
        self.clients[client_id].group_claims = enabled

    def grant_consent(self, tenant_id: str | None, scopes: Iterable[str]) -> None:
        """Switch the tenant to explicit consent and grant these delegated scopes."""
        tenant = self.directory.tenant(self._tid(tenant_id))
        wanted = {s.lower() for s in scopes}
        with self.lock:
            tenant.granted = (tenant.granted or set()) | wanted
            tenant.revoked -= wanted

    def revoke_scope(self, tenant_id: str | None, scope: str) -> None:
        """Withdraw consent for one scope (delegated, and the same app role) in a tenant."""
        tenant = self.directory.tenant(self._tid(tenant_id))
        with self.lock:
            tenant.revoked.add(scope.lower())
            if tenant.granted is not None:
                tenant.granted.discard(scope.lower())

    # -- keys and tampering --------------------------------------------------------------

    def rotate_signing_key(self) -> str:
        """Sign with a new key from now on; the old one leaves the JWKS. Returns the new kid."""
        new_key = pki.rotate_signing_key(self.state_dir)
        self.signer.rotate(new_key)
        return new_key.kid

    @property
    def kid(self) -> str:
        """The key id currently signing tokens."""
        return self.signer.current.kid

    def tamper_next_id_token(
        self,
        claims: dict[str, Any] | None = None,
        drop: Iterable[str] = (),
        header: dict[str, Any] | None = None,
        sign: str = "ok",
    ) -> None:
        """Alter the next issued id_token only: claim overrides, dropped claims, header, signing."""
        tamper = Tamper(claims=dict(claims or {}), drop=tuple(drop), header=dict(header or {}))
        tamper.sign = sign
        self.signer.set_tamper(tamper)

    def idp_error_next(self, error: str = "access_denied", description: str | None = None) -> None:
        """Make the next successful authorize redirect carry this error instead of a code."""
        with self.lock:
            self._idp_errors.append((error, description))

    def take_idp_error(self) -> tuple[str, str | None] | None:
        """Consume the armed authorize error, if any."""
        with self.lock:
            return self._idp_errors.pop(0) if self._idp_errors else None

    def token_fault_next(self, status: int = 500, retry_after: int | None = None) -> None:
        """Make the next token request fail with this HTTP status (Entra-shaped body)."""
        with self.lock:
            self._token_faults.append(TokenFault(status, retry_after))

    def take_token_fault(self) -> TokenFault | None:
        """Consume the armed token-endpoint fault, if any."""
        with self.lock:
            return self._token_faults.pop(0) if self._token_faults else None

    # -- latency, budgets, counters ------------------------------------------------------

    @property
    def latency(self) -> float:
        """Fixed delay in seconds added to every request (0 = none)."""
        return self._latency.fixed

    @latency.setter
    def latency(self, seconds: float) -> None:
        """Set a fixed delay in seconds for every endpoint."""
        self.set_latency(fixed=seconds)

    def set_latency(
        self,
        fixed: float | None = None,
        profile: str = "typical",
        seed: int = 1,
        endpoints: Iterable[str] | None = None,
    ) -> None:
        """Use a fixed delay, or a seeded distribution ("typical" ≈ 100 ms, "fast", "slow").

        endpoints limits the delay to requests counted under those names (e.g. {"token"}).
        """
        self._latency.set(fixed=fixed, profile=profile, seed=seed)
        self._latency_endpoints = None if endpoints is None else frozenset(endpoints)

    def next_delay(self, endpoint: str | None = None) -> float:
        """Return the delay for a request to endpoint (a counter name)."""
        if self._latency_endpoints is not None and endpoint not in self._latency_endpoints:
            return 0.0
        return self._latency.next_delay()

    def enforce_ru_budget(self, ru_per_10s: float | None = 8000) -> None:
        """Throttle Graph per app+tenant by resource units (None switches it off)."""
        self.ru_budget = RuBudget(ru_per_10s) if ru_per_10s else None

    @property
    def early_retries(self) -> int:
        """How often a caller came back before its Retry-After had elapsed."""
        return self.retries.early_retries

    def count(self, name: str, amount: int = 1) -> None:
        """Add to a counter (thread-safe)."""
        with self.lock:
            self._counters[name] += amount

    @property
    def counters(self) -> dict[str, int]:
        """A snapshot of the counters: requests per endpoint plus fault and RU tallies."""
        with self.lock:
            return dict(self._counters)

    def reset_counters(self) -> None:
        """Zero every counter and the early-retry tally."""
        with self.lock:
            self._counters.clear()
        self.retries.reset()

    def reset_faults(self) -> None:
        """Disarm faults, tampering, latency and the RU budget; forget Retry-After records."""
        self.graph_faults.clear()
        self.signer.set_tamper(None)
        with self.lock:
            self._token_faults.clear()
            self._idp_errors.clear()
        self.set_latency(fixed=0.0)
        self.ru_budget = None
        self.retries.reset()

    # -- sample data ---------------------------------------------------------------------

    def load_sample_data(
        self,
        client_id: str,
        client_secret: str,
        redirect_uris: Iterable[str],
        tenant_id: str | None = None,
        post_logout_redirect_uris: Iterable[str] = (),
    ) -> SampleData:
        """Create the demo tenant "Contoso" with users and groups; return their ids."""
        return sample.load(
            self,
            tenant_id or sample.DEMO_TENANT_ID,
            client_id,
            client_secret,
            list(redirect_uris),
            list(post_logout_redirect_uris),
        )

    # -- grants (used by the Entra blueprint) --------------------------------------------

    def store_code(self, code: str, grant: AuthCode) -> None:
        """Remember an issued authorization code, dropping long-expired ones."""
        horizon = time.time() - 2 * self.code_lifetime
        with self.lock:
            if len(self.codes) > 1000:
                self.codes = {k: v for k, v in self.codes.items() if v.issued_at > horizon}
            self.codes[code] = grant
