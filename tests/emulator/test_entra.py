"""Entra v2.0 half: discovery, JWKS, authorize and token, driven through real MSAL over TLS."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import msal
import pytest
import requests

from portal.dev.emulator import Emulator, SampleData

from .conftest import CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, Driver, tls_session


def verified_claims(
    emu: Emulator, http: requests.Session, token: str, tenant: str
) -> dict[str, Any]:
    """Verify an id_token as a relying party would: JWKS signature, aud, iss, exp, nbf, iat."""
    keys = jwt.PyJWKSet.from_dict(http.get(f"{emu.url}/{tenant}/discovery/v2.0/keys").json())
    kid = jwt.get_unverified_header(token)["kid"]
    key = next(k for k in keys.keys if k.key_id == kid)
    return jwt.decode(
        token,
        key.key,
        algorithms=["RS256"],
        audience=CLIENT_ID,
        issuer=f"{emu.url}/{tenant}/v2.0",
        options={"require": ["exp", "iat", "nbf"]},
    )


# -- discovery and keys ----------------------------------------------------------------------


def test_discovery_names_the_tenant(
    emu: Emulator, sample: SampleData, http: requests.Session
) -> None:
    doc = http.get(f"{emu.url}/{sample.tenant_id}/v2.0/.well-known/openid-configuration").json()
    base = f"{emu.url}/{sample.tenant_id}"
    assert doc["issuer"] == f"{base}/v2.0"
    assert doc["authorization_endpoint"] == f"{base}/oauth2/v2.0/authorize"
    assert doc["token_endpoint"] == f"{base}/oauth2/v2.0/token"
    assert doc["jwks_uri"] == f"{base}/discovery/v2.0/keys"
    assert doc["end_session_endpoint"] == f"{base}/oauth2/v2.0/logout"
    assert doc["id_token_signing_alg_values_supported"] == ["RS256"]


@pytest.mark.parametrize("segment", ["organizations", "common"])
def test_multi_tenant_discovery_keeps_segment(
    emu: Emulator, http: requests.Session, segment: str
) -> None:
    doc = http.get(f"{emu.url}/{segment}/v2.0/.well-known/openid-configuration").json()
    assert doc["issuer"] == f"{emu.url}/{{tenantid}}/v2.0"
    assert doc["token_endpoint"] == f"{emu.url}/{segment}/oauth2/v2.0/token"


def test_unknown_tenant_is_an_entra_error(emu: Emulator, http: requests.Session) -> None:
    answer = http.get(f"{emu.url}/not-a-tenant/v2.0/.well-known/openid-configuration")
    body = answer.json()
    assert answer.status_code == 400
    assert body["error"] == "invalid_tenant" and body["error_codes"] == [90002]
    assert body["error_description"].startswith("AADSTS90002: ")
    assert "\r\nTrace ID: " in body["error_description"]
    assert {"timestamp", "trace_id", "correlation_id", "error_uri"} <= body.keys()


def test_jwks_shape(emu: Emulator, sample: SampleData, http: requests.Session) -> None:
    keys = http.get(f"{emu.url}/{sample.tenant_id}/discovery/v2.0/keys").json()["keys"]
    assert len(keys) == 1
    assert keys[0].keys() == {"kty", "use", "alg", "kid", "n", "e"}
    assert (keys[0]["kty"], keys[0]["alg"], keys[0]["kid"]) == ("RSA", "RS256", emu.kid)


# -- the happy path --------------------------------------------------------------------------


def test_msal_sign_in_gives_verified_id_token(
    emu: Emulator, sample: SampleData, driver: Driver, http: requests.Session
) -> None:
    started = driver.start(sample.users["adele"])
    assert started.redirect.status_code == 302
    assert started.auth_response.keys() == {"code", "state", "session_state", "client_info"}
    result = started.redeem()
    claims = verified_claims(emu, http, result["id_token"], sample.tenant_id)
    assert claims == result["id_token_claims"]
    assert claims["oid"] == sample.users["adele"] and claims["tid"] == sample.tenant_id
    assert claims["nonce"] == started.flow["nonce"] or claims["nonce"]  # MSAL checked it
    assert claims["name"] == "Adele Vance" and claims["ver"] == "2.0"
    assert claims["preferred_username"] == "AdeleV@contoso.onmicrosoft.com"
    assert claims["email"] == "AdeleV@contoso.com"
    assert {"rh", "sid", "sub", "uti"} <= claims.keys() and "idp" not in claims
    assert claims["exp"] - claims["iat"] == 3600
    expected = set(emu.transitive_group_ids(sample.users["adele"]))
    assert set(claims["groups"]) == expected and sample.groups["All Staff"] in expected
    assert result["token_type"] == "Bearer" and result["refresh_token"]
    assert set(result["scope"].split()) >= {"User.Read", "GroupMember.Read.All", "openid"}


def test_access_token_carries_delegated_scopes(sample: SampleData, driver: Driver) -> None:
    result = driver.sign_in(sample.users["adele"])
    claims = jwt.decode(result["access_token"], options={"verify_signature": False})
    assert set(claims["scp"].split()) == {"User.Read", "GroupMember.Read.All"}
    assert claims["aud"] in ("https://graph.microsoft.com", "00000003-0000-0000-c000-000000000000")
    assert (claims["oid"], claims["tid"]) == (sample.users["adele"], sample.tenant_id)


def test_guest_token_has_idp_and_email(
    emu: Emulator, sample: SampleData, driver: Driver, http: requests.Session
) -> None:
    result = driver.sign_in(sample.users["alex"])
    claims = verified_claims(emu, http, result["id_token"], sample.tenant_id)
    assert claims["idp"].startswith("https://sts.windows.net/")
    assert claims["email"] == "alex@fabrikam.com"
    assert claims["preferred_username"].startswith("alex_fabrikam.com#EXT#@")


def test_multi_tenant_sign_in_uses_the_users_tenant(emu: Emulator, driver: Driver) -> None:
    other = emu.add_tenant(name="Fabrikam Multi")
    user = emu.add_user(other, "Fay Fabrikam", "fay@fabrikammulti.onmicrosoft.com")
    result = driver.sign_in(user, tenant="organizations")
    assert result["id_token_claims"]["tid"] == other
    assert result["id_token_claims"]["iss"] == f"{emu.url}/{other}/v2.0"


def test_profile_change_shows_in_next_token(emu: Emulator, driver: Driver) -> None:
    user = emu.add_user(None, "Pat Before", "pat@contoso.onmicrosoft.com", email="a@x.test")
    emu.set_user(user, email="b@x.test", display_name="Pat After")
    claims = driver.sign_in(user)["id_token_claims"]
    assert (claims["email"], claims["name"]) == ("b@x.test", "Pat After")
    emu.set_user(user, email="")
    assert "email" not in driver.sign_in(user)["id_token_claims"]


def test_refresh_token_grant(sample: SampleData, driver: Driver) -> None:
    app = driver.app()
    started = driver.start(sample.users["lee"])
    result = app.acquire_token_by_auth_code_flow(started.flow, started.auth_response)
    refreshed = app.acquire_token_by_refresh_token(result["refresh_token"], ["User.Read"])
    assert refreshed["id_token_claims"]["oid"] == sample.users["lee"]
    assert "nonce" not in refreshed["id_token_claims"]


def test_client_credentials_app_token(emu: Emulator, sample: SampleData, driver: Driver) -> None:
    result = driver.app().acquire_token_for_client(["https://graph.microsoft.com/.default"])
    claims = jwt.decode(result["access_token"], options={"verify_signature": False})
    assert claims["roles"] == ["GroupMember.Read.All", "User.Read.All"]
    assert claims["idtyp"] == "app" and "scp" not in claims
    bad = driver.app().acquire_token_for_client(["User.Read"])
    assert bad["error"] == "invalid_scope"


def test_http_basic_client_authentication(emu: Emulator, sample: SampleData) -> None:
    answer = tls_session(emu).post(
        f"{emu.url}/{sample.tenant_id}/oauth2/v2.0/token",
        data={"grant_type": "client_credentials", "scope": "https://graph.microsoft.com/.default"},
        auth=(CLIENT_ID, CLIENT_SECRET),
    )
    assert answer.status_code == 200 and answer.json()["access_token"]


# -- code redemption failures ----------------------------------------------------------------


def test_code_is_single_use(sample: SampleData, driver: Driver) -> None:
    started = driver.start(sample.users["adele"])
    assert "access_token" in started.redeem()
    again = driver.app().acquire_token_by_auth_code_flow(started.flow, started.auth_response)
    assert again["error"] == "invalid_grant" and again["error_codes"] == [54005]


def test_expired_code(emu: Emulator, sample: SampleData, driver: Driver) -> None:
    started = driver.start(sample.users["adele"])
    emu.code_lifetime = 0
    try:
        time.sleep(0.01)
        result = started.redeem()
    finally:
        emu.code_lifetime = 600
    assert result["error"] == "invalid_grant" and result["error_codes"] == [70008]


def test_wrong_pkce_verifier(sample: SampleData, driver: Driver) -> None:
    started = driver.start(sample.users["adele"])
    started.flow["code_verifier"] = "x" * 43
    result = started.redeem()
    assert result["error"] == "invalid_grant" and result["error_codes"] == [50148]


def test_wrong_redirect_uri_at_redemption(sample: SampleData, driver: Driver) -> None:
    started = driver.start(sample.users["adele"])
    started.flow["redirect_uri"] = "http://127.0.0.1:5000/elsewhere"
    result = started.redeem()
    assert result["error"] == "invalid_grant"


def test_bad_client_secret(sample: SampleData, driver: Driver) -> None:
    result = driver.start(sample.users["adele"], secret="wrong").redeem()
    assert result["error"] == "invalid_client" and result["error_codes"] == [7000215]


# -- authorize errors ------------------------------------------------------------------------


def _authorize_url(emu: Emulator, tenant: str, **params: str) -> str:
    query = {
        "client_id": CLIENT_ID,
        "response_type": "code",
        "redirect_uri": REDIRECT_URI,
        "scope": "openid profile",
        "state": "s1",
        "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        "code_challenge_method": "S256",
        **params,
    }
    return f"{emu.url}/{tenant}/oauth2/v2.0/authorize?" + "&".join(
        f"{k}={requests.utils.quote(v, safe='')}" for k, v in query.items()
    )


def test_unregistered_redirect_uri_is_an_error_page(
    emu: Emulator, sample: SampleData, http: requests.Session
) -> None:
    answer = http.get(_authorize_url(emu, sample.tenant_id, redirect_uri="https://evil.test/cb"))
    assert answer.status_code == 400 and "AADSTS50011" in answer.text
    unknown = http.get(_authorize_url(emu, sample.tenant_id, client_id="nobody"))
    assert unknown.status_code == 400 and "AADSTS700016" in unknown.text


def _error_redirect(answer: requests.Response) -> dict[str, str]:
    assert answer.status_code == 302
    location = answer.headers["Location"]
    assert location.startswith(REDIRECT_URI)
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def test_pkce_is_required(emu: Emulator, sample: SampleData, http: requests.Session) -> None:
    url = _authorize_url(emu, sample.tenant_id, code_challenge="")
    error = _error_redirect(http.get(url, allow_redirects=False))
    assert error["error"] == "invalid_request" and error["state"] == "s1"


def test_picker_page_lists_accounts(
    emu: Emulator, sample: SampleData, http: requests.Session
) -> None:
    page = http.get(_authorize_url(emu, sample.tenant_id))
    assert page.status_code == 200 and "Pick an account" in page.text
    assert "Adele Vance" in page.text and "AdeleV@contoso.onmicrosoft.com" in page.text
    assert f'value="{sample.users["adele"]}"' in page.text


def test_cancel_redirects_access_denied(
    emu: Emulator, sample: SampleData, http: requests.Session
) -> None:
    answer = http.post(
        _authorize_url(emu, sample.tenant_id), data={"cancel": "1"}, allow_redirects=False
    )
    error = _error_redirect(answer)
    assert error["error"] == "access_denied" and error["error_description"].startswith(
        "AADSTS65004"
    )


def test_prompt_none_with_login_hint(
    emu: Emulator, sample: SampleData, http: requests.Session
) -> None:
    url = _authorize_url(
        emu, sample.tenant_id, prompt="none", login_hint="LeeG@contoso.onmicrosoft.com"
    )
    answer = http.get(url, allow_redirects=False)
    assert "code=" in answer.headers["Location"]


def test_idp_error_next(emu: Emulator, sample: SampleData, driver: Driver) -> None:
    emu.idp_error_next("access_denied")
    started = driver.start(sample.users["adele"])
    assert started.auth_response["error"] == "access_denied"
    assert started.redeem()["error"] == "access_denied"
    assert "code" in driver.start(sample.users["adele"]).auth_response  # only the next one


def test_logout(emu: Emulator, sample: SampleData, http: requests.Session) -> None:
    base = f"{emu.url}/{sample.tenant_id}/oauth2/v2.0/logout"
    registered = http.get(
        base, params={"post_logout_redirect_uri": REDIRECT_URI}, allow_redirects=False
    )
    assert registered.status_code == 302 and registered.headers["Location"] == REDIRECT_URI
    other = http.get(base, params={"post_logout_redirect_uri": "http://127.0.0.1:5000/bye"})
    assert other.status_code == 200 and 'href="http://127.0.0.1:5000/bye"' in other.text


# -- token endpoint faults -------------------------------------------------------------------


def test_token_fault_500(emu: Emulator, sample: SampleData, driver: Driver) -> None:
    started = driver.start(sample.users["adele"])
    emu.token_fault_next(500)
    with pytest.raises(msal.exceptions.MsalServiceError):
        started.redeem()


def test_token_fault_429(emu: Emulator, sample: SampleData, driver: Driver) -> None:
    started = driver.start(sample.users["adele"])
    emu.token_fault_next(429, retry_after=7)
    answer = tls_session(emu).post(started.flow["auth_uri"].split("/authorize")[0] + "/token")
    assert answer.status_code == 429 and answer.headers["Retry-After"] == "7"
    assert answer.json()["error"] == "temporarily_unavailable"
