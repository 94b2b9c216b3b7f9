"""Entra ID v2.0 endpoints: discovery, JWKS, authorize, token and logout."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlencode, urlsplit

from flask import Blueprint, Response, current_app, jsonify, redirect, render_template, request

from .credentials import ASSERTION_TYPE, AssertionRefused
from .directory import USER, DirObject, Tenant
from .models import AuthCode, Client, RefreshGrant
from .pki import b64url
from .tokens import (
    GRAPH_APP_ID,
    GRAPH_RESOURCE,
    client_info,
    new_id,
    now,
    pairwise_sub,
    random_uti,
    split_scopes,
)

if TYPE_CHECKING:
    from .core import Emulator

bp = Blueprint("entra", __name__)

MULTI_TENANT_SEGMENTS = ("organizations", "common")
PICKER_LIMIT = 100  # accounts shown on the picker page; tests POST an account id directly
_OAUTH_FORM_ONLY = ("account", "cancel")


def emu() -> Emulator:
    """Return the Emulator serving the current request."""
    return current_app.extensions["emulator"]


@dataclass(frozen=True)
class Authority:
    """The tenant path segment of a request, resolved."""

    segment: str
    tenant: Tenant | None  # None for organizations/common

    @property
    def path_tenant(self) -> str:
        """The segment endpoint URLs keep: the tenant GUID, or organizations/common."""
        return self.tenant.id if self.tenant else self.segment


def resolve_authority(segment: str) -> Authority | None:
    """Resolve a tenant segment; None when the tenant is unknown."""
    if segment.lower() in MULTI_TENANT_SEGMENTS:
        return Authority(segment.lower(), None)
    tenant = emu().directory.find_tenant(segment)
    return Authority(segment, tenant) if tenant else None


# -- error shapes ----------------------------------------------------------------------------


def _stamp() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def error_body(error: str, code: int, description: str) -> dict[str, Any]:
    """Return an Entra-shaped OAuth error body (reference §3.5)."""
    trace, correlation, stamp = new_id(), new_id(), _stamp()
    return {
        "error": error,
        "error_description": (
            f"AADSTS{code}: {description}\r\nTrace ID: {trace}\r\n"
            f"Correlation ID: {correlation}\r\nTimestamp: {stamp}"
        ),
        "error_codes": [code],
        "timestamp": stamp,
        "trace_id": trace,
        "correlation_id": correlation,
        "error_uri": f"{emu().url}/error?code={code}",
    }


def entra_error(
    error: str, code: int, description: str, status: int = 400, retry_after: int | None = None
) -> Response:
    """Return an Entra-shaped JSON error response."""
    response = jsonify(error_body(error, code, description))
    response.status_code = status
    response.headers["Cache-Control"] = "no-store, no-cache"
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


def error_page(code: int, message: str, status: int = 400) -> tuple[str, int]:
    """Render the error page Entra shows for errors it cannot redirect."""
    return render_template("error.html", code=code, message=message, trace=new_id()), status


def unknown_tenant(segment: str) -> Response:
    """Return the error for a tenant segment that names no tenant."""
    return entra_error(
        "invalid_tenant",
        90002,
        f"Tenant '{segment}' not found. Check to make sure you have the correct tenant ID "
        "and are signing into the correct cloud.",
    )


# -- discovery and keys ----------------------------------------------------------------------


@bp.get("/<tenant>/v2.0/.well-known/openid-configuration", endpoint="discovery")
def discovery(tenant: str) -> Response:
    """Serve the OpenID Connect discovery document."""
    authority = resolve_authority(tenant)
    if authority is None:
        return unknown_tenant(tenant)
    return jsonify(discovery_document(emu().url, authority))


def discovery_document(host: str, authority: Authority) -> dict[str, Any]:
    """Build the discovery document with every URL on host (reference §3.1)."""
    base = f"{host}/{authority.path_tenant}"
    issuer_tenant = authority.tenant.id if authority.tenant else "{tenantid}"
    return {
        "token_endpoint": f"{base}/oauth2/v2.0/token",
        "token_endpoint_auth_methods_supported": [
            "client_secret_post",
            "private_key_jwt",
            "client_secret_basic",
        ],
        "jwks_uri": f"{base}/discovery/v2.0/keys",
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": f"{host}/{issuer_tenant}/v2.0",
        "request_uri_parameter_supported": False,
        "userinfo_endpoint": f"{host}/oidc/userinfo",
        "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
        "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
        "http_logout_supported": True,
        "frontchannel_logout_supported": True,
        "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
        "claims_supported": [
            "sub",
            "iss",
            "cloud_instance_name",
            "cloud_instance_host_name",
            "cloud_graph_host_name",
            "msgraph_host",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "acr",
            "nonce",
            "preferred_username",
            "name",
            "tid",
            "ver",
            "at_hash",
            "c_hash",
            "email",
        ],
        "kerberos_endpoint": f"{base}/kerberos",
        "tenant_region_scope": "NA",
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
        "rbac_url": "https://pas.windows.net",
    }


@bp.get("/<tenant>/discovery/v2.0/keys", endpoint="jwks")
def jwks(tenant: str) -> Response:
    """Serve the signing keys currently in use."""
    if resolve_authority(tenant) is None:
        return unknown_tenant(tenant)
    response = jsonify(emu().signer.jwks())
    response.headers["Cache-Control"] = "max-age=86400, private"
    return response


# -- authorize -------------------------------------------------------------------------------


def _oauth_params() -> dict[str, str]:
    params = request.args.to_dict()
    if request.method == "POST":
        form = request.form.to_dict()
        params.update({k: v for k, v in form.items() if k not in _OAUTH_FORM_ONLY})
    return params


def _with_query(uri: str, params: dict[str, str]) -> str:
    return f"{uri}{'&' if '?' in uri else '?'}{urlencode(params)}"


def _redirect_error(params: dict[str, str], error: str, code: int, description: str) -> Response:
    query = {"error": error, "error_description": f"AADSTS{code}: {description}"}
    if "state" in params:
        query["state"] = params["state"]
    return redirect(_with_query(params["redirect_uri"], query), code=302)


def _check_client(params: dict[str, str], authority: Authority) -> Client | tuple[str, int]:
    """Return the client, or the error page for problems that must not be redirected."""
    client_id = params.get("client_id", "")
    if not client_id:
        return error_page(
            900144, "The request body must contain the following parameter: 'client_id'."
        )
    client = emu().clients.get(client_id)
    if client is None or (authority.tenant and not client.allowed_in(authority.tenant.id)):
        where = authority.tenant.name if authority.tenant else authority.segment
        return error_page(
            700016,
            f"Application with identifier '{client_id}' was not found in the directory "
            f"'{where}'. This can happen if the application has not been installed by the "
            "administrator of the tenant or consented to by any user in the tenant.",
        )
    redirect_uri = params.get("redirect_uri", "")
    if redirect_uri not in client.redirect_uris:
        return error_page(
            50011,
            f"The redirect URI '{redirect_uri}' specified in the request does not match the "
            f"redirect URIs configured for the application '{client_id}'.",
        )
    return client


def _check_request(params: dict[str, str]) -> tuple[str, int, str] | None:
    """Return (error, AADSTS code, text) for a bad but redirectable request."""
    if params.get("response_type") != "code":
        return ("unsupported_response_type", 700054, "response_type must be 'code'.")
    if params.get("response_mode", "query") != "query":
        return ("invalid_request", 90008, "Only response_mode=query is supported here.")
    if not params.get("code_challenge"):
        return (
            "invalid_request",
            9002325,
            "Proof Key for Code Exchange is required for cross-origin authorization code "
            "redemption.",
        )
    if params.get("code_challenge_method") != "S256":
        return ("invalid_request", 501491, "Invalid code_challenge_method: only S256 is allowed.")
    if "openid" not in params.get("scope", "").split():
        return ("invalid_request", 900144, "The 'scope' parameter must include 'openid'.")
    return None


def _visible_users(authority: Authority) -> list[DirObject]:
    directory = emu().directory
    tenants = [authority.tenant] if authority.tenant else directory.all_tenants()
    users: list[DirObject] = []
    for tenant in tenants:
        users.extend(directory.listing(tenant.id, USER))
    return users


def _chosen_user(params: dict[str, str], authority: Authority) -> DirObject | None:
    directory = emu().directory
    if request.method == "POST" and request.form.get("account"):
        user = directory.get(request.form["account"])
    elif params.get("prompt") == "none" and params.get("login_hint"):
        tenants = [authority.tenant] if authority.tenant else directory.all_tenants()
        hint = params["login_hint"]
        user = next((u for t in tenants if (u := directory.user_by_upn(t.id, hint))), None)
    else:
        return None
    if user is None or user.kind != USER:
        return None
    if authority.tenant and user.tenant_id != authority.tenant.id:
        return None
    return user


def _picker(params: dict[str, str], authority: Authority, client: Client) -> str:
    users = _visible_users(authority)
    hint = params.get("login_hint", "").lower()
    users.sort(key=lambda u: (u.upn or "").lower() != hint)
    tenant_names = {t.id: t.name for t in emu().directory.all_tenants()}
    return render_template(
        "pick_account.html",
        action=_with_query(request.path, params),
        users=users[:PICKER_LIMIT],
        hidden=max(0, len(users) - PICKER_LIMIT),
        tenant_names=tenant_names,
        multi=authority.tenant is None,
        app_name=client.display_name,
        notes=emu().account_notes,
    )


@bp.route("/<tenant>/oauth2/v2.0/authorize", methods=["GET", "POST"], endpoint="authorize")
def authorize(tenant: str) -> Any:
    """Show the account picker, or redirect back with a code (or an error)."""
    authority = resolve_authority(tenant)
    if authority is None:
        return error_page(90002, f"Tenant '{tenant}' not found.")
    params = _oauth_params()
    client = _check_client(params, authority)
    if not isinstance(client, Client):
        return client
    problem = _check_request(params)
    if problem:
        return _redirect_error(params, *problem)
    if request.method == "POST" and request.form.get("cancel"):
        return _redirect_error(
            params, "access_denied", 65004, "User declined to consent to access the app."
        )
    user = _chosen_user(params, authority)
    if user is None:
        return _no_account(params, authority, client)
    return _complete(params, client, user)


def _no_account(params: dict[str, str], authority: Authority, client: Client) -> Any:
    if params.get("prompt") == "none":
        return _redirect_error(
            params,
            "login_required",
            50058,
            "A silent sign-in request was sent but no user is signed in.",
        )
    if request.method == "POST" and request.form.get("account"):
        return error_page(50034, "The user account does not exist in this directory.")
    return _picker(params, authority, client)


def _issue_code(params: dict[str, str], client: Client, user: DirObject) -> tuple[str, str]:
    """Store a new authorization code for the user; return (code, session id)."""
    code, sid = "1.A" + secrets.token_urlsafe(96), new_id()
    grant = AuthCode(
        client_id=client.client_id,
        redirect_uri=params["redirect_uri"],
        code_challenge=params["code_challenge"],
        nonce=params.get("nonce"),
        user_id=user.id,
        tenant_id=user.tenant_id,
        scope=params.get("scope", ""),
        sid=sid,
        issued_at=time.time(),
    )
    emu().store_code(code, grant)
    return code, sid


def _complete(params: dict[str, str], client: Client, user: DirObject) -> Response:
    if not client.allowed_in(user.tenant_id):
        return _redirect_error(
            params,
            "invalid_request",
            700016,
            "The application is not available in the user's tenant.",
        )
    armed = emu().take_idp_error()
    if armed:
        error, description = armed
        return _redirect_error(
            params,
            error,
            65004 if error == "access_denied" else 50000,
            description or "The identity provider reported an error.",
        )
    code, sid = _issue_code(params, client, user)
    query = {"code": code, "session_state": sid}
    if "state" in params:
        query["state"] = params["state"]
    if params.get("client_info") == "1":
        query["client_info"] = client_info(user.id, user.tenant_id)
    return redirect(_with_query(params["redirect_uri"], query), code=302)


# -- token -----------------------------------------------------------------------------------


def _client_credentials() -> tuple[str, str]:
    """Return (client_id, secret) from the form body or HTTP Basic."""
    auth = request.authorization
    if auth and auth.type == "basic" and auth.username:
        # RFC 6749 §2.3.1: Basic credentials are form-urlencoded before base64.
        return unquote(auth.username), unquote(auth.password or "")
    return request.form.get("client_id", ""), request.form.get("client_secret", "")


def _token_fault() -> Response | None:
    fault = emu().take_token_fault()
    if fault is None:
        return None
    emu().count("token.fault")
    if fault.status == 429:
        error, code, text = (
            "temporarily_unavailable",
            90055,
            "There are too many incoming requests.",
        )
    else:
        error, code, text = "server_error", 50000, "There was an error issuing a token."
    return entra_error(error, code, text, fault.status, fault.retry_after)


def _authenticate_client(authority: Authority) -> Client | Response:
    client_id, secret = _client_credentials()
    client = emu().clients.get(client_id)
    where = authority.tenant.id if authority.tenant else authority.segment
    if client is None or (authority.tenant and not client.allowed_in(authority.tenant.id)):
        return entra_error(
            "unauthorized_client",
            700016,
            f"Application with identifier '{client_id}' was not found in the directory '{where}'.",
        )
    assertion = request.form.get("client_assertion", "")
    if assertion:
        return _check_assertion(client, assertion)
    if not secret:
        return entra_error(
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or "
            "'client_secret'.",
            401,
        )
    if not hmac.compare_digest(secret.encode(), client.secret.encode()):
        return entra_error(
            "invalid_client",
            7000215,
            "Invalid client secret provided. Ensure the secret being sent in the request is the "
            "client secret value, not the client secret ID, for a secret added to app "
            f"'{client_id}'.",
            401,
        )
    return client


def _check_assertion(client: Client, assertion: str) -> Client | Response:
    """Authenticate the client by a certificate-signed or federated client assertion."""
    if request.form.get("client_assertion_type") != ASSERTION_TYPE:
        return entra_error(
            "invalid_request", 50027, f"client_assertion_type must be {ASSERTION_TYPE}.", 400
        )
    try:
        client.credentials.verify(client.client_id, assertion, f"{emu().url}{request.path}")
    except AssertionRefused as refused:
        emu().count("token.assertion_refused")
        return entra_error("invalid_client", refused.code, refused.message, 401)
    return client


@bp.post("/<tenant>/oauth2/v2.0/token", endpoint="token")
def token(tenant: str) -> Response:
    """Redeem a code or refresh token, or issue an app token (client_credentials)."""
    fault = _token_fault()
    if fault is not None:
        return fault
    authority = resolve_authority(tenant)
    if authority is None:
        return unknown_tenant(tenant)
    client = _authenticate_client(authority)
    if not isinstance(client, Client):
        return client
    grant_type = request.form.get("grant_type", "")
    handler = _GRANTS.get(grant_type)
    if handler is None:
        return entra_error(
            "unsupported_grant_type",
            70003,
            f"The app requested an unsupported grant type '{grant_type}'.",
        )
    emu().count(f"token.{grant_type}")
    return handler(client, authority)


def _pkce_ok(verifier: str, challenge: str) -> bool:
    digest = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
    expected = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    return hmac.compare_digest(expected, challenge)


def _redeem(code: str, client: Client) -> AuthCode | Response:
    """Look the code up and burn it: any redemption attempt uses a code up."""
    with emu().lock:
        grant = emu().codes.get(code)
        if grant is None or grant.client_id != client.client_id:
            return entra_error(
                "invalid_grant", 70000, "The provided value for the 'code' parameter is not valid."
            )
        if grant.used:
            return entra_error(
                "invalid_grant",
                54005,
                "OAuth2 Authorization code was already redeemed, please retry with a new valid "
                "code or use an existing refresh token.",
            )
        grant.used = True
    if time.time() - grant.issued_at > emu().code_lifetime:
        return entra_error(
            "invalid_grant",
            70008,
            "The provided authorization code or refresh token has expired due to inactivity. "
            "Send a new interactive authorization request for this user and resource.",
        )
    return grant


def _grant_authorization_code(client: Client, authority: Authority) -> Response:
    grant = _redeem(request.form.get("code", ""), client)
    if not isinstance(grant, AuthCode):
        return grant
    if authority.tenant and authority.tenant.id != grant.tenant_id:
        return entra_error("invalid_grant", 70000, "The code was issued for another tenant.")
    if request.form.get("redirect_uri") != grant.redirect_uri:
        return entra_error(
            "invalid_grant",
            500112,
            "The reply address does not match the reply address provided when requesting "
            "the authorization code.",
        )
    if not _pkce_ok(request.form.get("code_verifier", ""), grant.code_challenge):
        return entra_error(
            "invalid_grant",
            50148,
            "The code_verifier does not match the code_challenge supplied in the authorization "
            "request for PKCE.",
        )
    user = emu().directory.require(grant.user_id, USER)
    return _token_response(client, user, grant.scope, grant.nonce, grant.sid)


def _grant_refresh_token(client: Client, authority: Authority) -> Response:
    with emu().lock:
        grant = emu().refresh_tokens.get(request.form.get("refresh_token", ""))
    if grant is None or grant.client_id != client.client_id:
        return entra_error(
            "invalid_grant", 9002313, "Invalid request. The refresh token is malformed or invalid."
        )
    if authority.tenant and authority.tenant.id != grant.tenant_id:
        return entra_error(
            "invalid_grant", 70000, "The refresh token was issued for another tenant."
        )
    user = emu().directory.get(grant.user_id)
    if user is None:
        return entra_error(
            "invalid_grant", 50034, "The user account does not exist in this directory."
        )
    scope = request.form.get("scope") or grant.scope
    return _token_response(client, user, scope, None, grant.sid)


def _grant_client_credentials(client: Client, authority: Authority) -> Response:
    if authority.tenant is None:
        return entra_error(
            "invalid_request",
            900023,
            f"Specified tenant identifier '{authority.segment}' cannot be used with the "
            "client credentials flow: name a tenant.",
        )
    scope = request.form.get("scope", "")
    # The emulator serves Graph on its own host, so that host names the Graph resource too.
    graph_resources = (GRAPH_RESOURCE, GRAPH_APP_ID, request.host_url.rstrip("/"))
    if scope not in {f"{resource}/.default" for resource in graph_resources}:
        return entra_error(
            "invalid_scope",
            1002012,
            f"The provided value for scope {scope} is not valid. Client credential flows must "
            "have a scope value with /.default suffixed to the resource identifier.",
        )
    tenant = authority.tenant
    roles = [r for r in client.app_roles if r.lower() not in tenant.revoked]
    claims = _base_access_claims(client, tenant.id)
    sp_id = client.service_principal_id(tenant.id)
    claims.update({"idtyp": "app", "oid": sp_id, "sub": sp_id, "roles": roles})
    return _no_store(
        jsonify(
            {
                "token_type": "Bearer",
                "expires_in": emu().token_lifetime - 1,
                "ext_expires_in": emu().token_lifetime - 1,
                "access_token": emu().signer.sign(claims),
            }
        )
    )


_GRANTS = {
    "authorization_code": _grant_authorization_code,
    "refresh_token": _grant_refresh_token,
    "client_credentials": _grant_client_credentials,
}


def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store, no-cache"
    response.headers["Pragma"] = "no-cache"
    return response


def _times() -> dict[str, int]:
    issued = now()
    return {"iat": issued, "nbf": issued, "exp": issued + emu().token_lifetime}


def _base_access_claims(client: Client, tid: str) -> dict[str, Any]:
    return {
        "aud": GRAPH_APP_ID,
        "iss": f"https://sts.windows.net/{tid}/",
        **_times(),
        "app_displayname": client.display_name,
        "appid": client.client_id,
        "tid": tid,
        "uti": random_uti(),
        "ver": "1.0",
    }


def _group_claims(client: Client, user: DirObject) -> dict[str, Any]:
    if not client.group_claims:
        return {}
    ids = emu().directory.transitive_group_ids(user.id)
    if len(ids) <= emu().group_claim_limit:
        return {"groups": ids}
    endpoint = f"https://graph.windows.net/{user.tenant_id}/users/{user.id}/getMemberObjects"
    return {"_claim_names": {"groups": "src1"}, "_claim_sources": {"src1": {"endpoint": endpoint}}}


def _role_claims(client: Client, user: DirObject) -> dict[str, Any]:
    """Return the `roles` claim: roles assigned to the user or to a group they are directly in.

    Entra does not pass app roles down nested groups, so only direct parents count.
    """
    principals = [user.id, *(p.id for p in emu().directory.direct_parents(user.id))]
    with emu().lock:
        roles = {r for p in principals for r in client.role_assignments.get(p, ())}
    return {"roles": sorted(roles)} if roles else {}


def _optional_claims(client: Client, user: DirObject) -> dict[str, Any]:
    """Return the optional claims the registration asks for (`acct`: 0 member, 1 guest)."""
    if "acct" in client.optional_claims:
        return {"acct": 1 if user.user_type == "Guest" else 0}
    return {}


def id_token_claims(client: Client, user: DirObject, nonce: str | None, sid: str) -> dict[str, Any]:
    """Build the id_token claims of reference §3.4 for a user signing in to client."""
    claims: dict[str, Any] = {
        "aud": client.client_id,
        "iss": f"{emu().url}/{user.tenant_id}/v2.0",
        **_times(),
        "name": user.display_name,
        "nonce": nonce,
        "oid": user.id,
        "preferred_username": user.upn,
        "email": user.email,
        "idp": user.idp,
        "rh": "0.A" + b64url(secrets.token_bytes(24)) + ".",
        "sid": sid,
        "sub": pairwise_sub(user.id, client.client_id),
        "tid": user.tenant_id,
        "uti": random_uti(),
        "ver": "2.0",
    }
    claims.update(_group_claims(client, user))
    claims.update(_role_claims(client, user))
    claims.update(_optional_claims(client, user))
    return {k: v for k, v in claims.items() if v is not None}


def _delegated_access_token(client: Client, user: DirObject, scopes: list[str]) -> str:
    claims = _base_access_claims(client, user.tenant_id)
    claims.update(
        {
            "idtyp": "user",
            "name": user.display_name,
            "oid": user.id,
            "scp": " ".join(scopes),
            "sub": pairwise_sub(user.id, GRAPH_APP_ID),
            "upn": user.upn,
        }
    )
    return emu().signer.sign(claims)


def _token_response(
    client: Client, user: DirObject, scope: str, nonce: str | None, sid: str
) -> Response:
    oidc, resource = split_scopes(scope)
    tenant = emu().directory.tenant(user.tenant_id)
    # With nothing (left) to grant, Entra still issues a Graph token for User.Read.
    granted = tenant.effective_scopes(resource) or ["User.Read"]
    body: dict[str, Any] = {
        "token_type": "Bearer",
        "scope": " ".join(granted + oidc),
        "expires_in": emu().token_lifetime - 1,
        "ext_expires_in": emu().token_lifetime - 1,
        "access_token": _delegated_access_token(client, user, granted),
    }
    if "offline_access" in oidc:
        refresh = "1.A" + secrets.token_urlsafe(128)
        with emu().lock:
            emu().refresh_tokens[refresh] = RefreshGrant(
                client.client_id, user.id, user.tenant_id, scope, sid
            )
        body["refresh_token"] = refresh
    if "openid" in oidc:
        body["id_token"] = emu().signer.sign_id_token(id_token_claims(client, user, nonce, sid))
    if request.form.get("client_info") == "1":
        body["client_info"] = client_info(user.id, user.tenant_id)
    return _no_store(jsonify(body))


# -- logout ----------------------------------------------------------------------------------


def _logout_target_registered(uri: str) -> bool:
    with emu().lock:
        clients = list(emu().clients.values())
    return any(uri in c.redirect_uris or uri in c.post_logout_redirect_uris for c in clients)


@bp.get("/<tenant>/oauth2/v2.0/logout", endpoint="logout")
def logout(tenant: str) -> Any:
    """Sign out: redirect to a registered post_logout_redirect_uri, else show a page."""
    if resolve_authority(tenant) is None:
        return error_page(90002, f"Tenant '{tenant}' not found.")
    target = request.args.get("post_logout_redirect_uri", "")
    if target and _logout_target_registered(target):
        state = request.args.get("state")
        return redirect(_with_query(target, {"state": state}) if state else target, code=302)
    scheme = urlsplit(target).scheme
    link = target if scheme in ("http", "https") else None
    return render_template("signed_out.html", link=link)
