"""Bundled Microsoft Entra ID (v2.0) + Microsoft Graph (v1.0) emulator over HTTPS.

Used by ``make demo``, the test suite and the benchmarks; the portal's runtime code never imports
it. Shapes follow ``entra-graph.md`` (Entra §3, Graph §5). One server answers both halves: the
authority host is ``emu.url`` and Graph lives under ``emu.url + "/v1.0"``.

Lifecycle and trust::

    emu = Emulator(state_dir=path)    # creates/loads ca.pem, server cert, RSA signing key there
    emu.start(port=0)                 # background thread; 0 = ephemeral port; emu.stop()
    emu.url                           # "https://127.0.0.1:PORT"
    emu.ca_path                       # Path to ca.pem (use requests.Session with trust_env=False)

Directory (object ids are lower-case GUID strings; ``tenant_id=None`` means the default tenant)::

    add_tenant(tenant_id=None, name="Contoso") -> str          # the first tenant is the default
    register_client(client_id, client_secret, redirect_uris, tenant_id=None, *,
                    multi_tenant=True, post_logout_redirect_uris=(), app_roles=DEFAULT_APP_ROLES,
                    display_name="Portal") -> Client
    add_user(tenant_id, display_name, upn, email=None, object_id=None,
             user_type="Member" | "Guest", idp=None) -> str   # guests default to idp "live.com"
    add_group(tenant_id, display_name, object_id=None, security_enabled=True) -> str
    add_directory_role(tenant_id, display_name, role_template_id, object_id=None) -> str
    add_member(group_id, member_id); add_members(group_id, member_ids)  # users or nested groups
    remove_member(group_id, member_id); rename_group(group_id, name); delete_group(group_id)
    set_user(object_id, *, email=None, display_name=None, upn=None, account_enabled=None)
                                        # None = unchanged; email="" removes the email
    delete_user(object_id)              # groups/delta then omits its memberships, as Graph may
    transitive_group_ids(member_id) -> list[str]; user(oid); group(oid)
    load_sample_data(client_id, client_secret, redirect_uris, tenant_id=None,
                     post_logout_redirect_uris=()) -> SampleData   # see sample.py

Tokens and consent::

    group_claim_limit = 200             # above it: no `groups`, the `_claim_names` overage marker
    set_group_claims(client_id, enabled)   # False: neither `groups` nor the marker
    assign_app_role(client_id, user_or_group_id, role)   # `roles` claim; groups: direct members
    set_optional_claims(client_id, {"acct"})   # acct: 0 member, 1 guest
    add_client_certificate(client_id, cert_pem) -> sha256 hex   # private_key_jwt, x5t#S256
    add_federated_credential(client_id, issuer, subject, public_key_pem)   # workload identity
    credentials.make_certificate(common_name) -> PEM with key and self-signed certificate
    grant_consent(tenant_id, scopes)    # explicit consent (default: whatever is asked for)
    revoke_scope(tenant_id, "GroupMember.Read.All")   # also removes the same app role
    rotate_signing_key() -> new kid     # the old key leaves the JWKS
    tamper_next_id_token(claims=None, drop=(), header=None,
                         sign="ok" | "unknown_key" | "bad_signature" | "none")
    idp_error_next(error="access_denied", description=None)   # next authorize redirect
    token_fault_next(status=500 | 429 | ..., retry_after=None)  # next token request
    code_lifetime = 600; token_lifetime = 3600   # seconds

Graph limits and faults::

    member_groups_limit = 11000; get_by_ids_limit = 1000
    delta_page_size = 100               # /users/delta, /groups/delta without Prefer maxpagesize
    delta_members_per_entry = 20        # a group's members@delta spread over several entries
    expire_delta_links()                # every issued delta/next link: 410 syncStateNotFound
    graph_faults.add(kind, times=1, path_contains=None, retry_after=None)
    graph_faults.rate(kind, probability, seed=None, retry_after=None); graph_faults.clear()
        # kind: "429" (always with Retry-After, default 1), "503", "500", "hang"
        # (graph_faults.hang_seconds = 30, released by stop()), "malformed" (alternates
        # "malformed_text": 200 non-JSON, and "malformed_json": 200 JSON without `value`)
    enforce_ru_budget(ru_per_10s=8000)  # token bucket per app+tenant; None switches it off
    latency = 0.1                       # seconds added to every (outer) request
    set_latency(fixed=None, profile="typical" | "fast" | "slow", seed=1, endpoints=None)
                                        # endpoints: only these counter names, e.g. {"token"}
    early_retries                       # callers back before their Retry-After elapsed
    counters -> dict; reset_counters()  # also zeroes early_retries
    reset_faults()   # disarms faults, tampering, latency, RU budget; zeroes early_retries

Counter names: "discovery", "jwks", "authorize", "token", "logout", "token.<grant_type>",
"token.fault", "graph.me", "graph.user", "graph.memberOf", "graph.transitiveMemberOf" (the
``/microsoft.graph.group`` casts included), "graph.getMemberGroups", "graph.getMemberObjects",
"graph.getByIds", "graph.group", "graph.groups", "graph.users", "graph.usersDelta",
"graph.groupsDelta", "graph.batch" (each inner request also counts under its own name),
"graph.throttled" (429s sent), "graph.fault.<kind>", "graph.early_retry", "graph.ru" and
"graph.ru_throttled" (with a budget), "unmatched".
"""

from __future__ import annotations

from .core import Emulator
from .faults import FAULT_KINDS, GraphFaults
from .models import DEFAULT_APP_ROLES, Client
from .sample import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_TENANT_ID, SampleData

__all__ = [
    "DEFAULT_APP_ROLES",
    "DEMO_CLIENT_ID",
    "DEMO_CLIENT_SECRET",
    "DEMO_TENANT_ID",
    "FAULT_KINDS",
    "Client",
    "Emulator",
    "GraphFaults",
    "SampleData",
]
