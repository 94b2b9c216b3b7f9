"""Token contents: group claims and overage, tampering knobs, key rotation, persisted PKI."""

from __future__ import annotations

import ipaddress
import time

import jwt
import pytest
import requests
from cryptography import x509

from portal.dev.emulator import Emulator, SampleData

from .conftest import CLIENT_ID, Driver
from .test_entra import verified_claims


def test_overage_marker_above_the_limit(emu: Emulator, sample: SampleData, driver: Driver) -> None:
    claims = driver.sign_in(sample.users["megan"])["id_token_claims"]
    assert "groups" not in claims
    assert claims["_claim_names"] == {"groups": "src1"}
    endpoint = claims["_claim_sources"]["src1"]["endpoint"]
    assert endpoint == (
        f"https://graph.windows.net/{sample.tenant_id}/users/{sample.users['megan']}"
        "/getMemberObjects"
    )


def test_exactly_the_limit_still_fits(emu: Emulator, driver: Driver) -> None:
    user = emu.add_user(None, "Limit Case", "limit@contoso.onmicrosoft.com")
    groups = [emu.add_group(None, f"Limit {n}") for n in range(3)]
    for group in groups:
        emu.add_member(group, user)
    emu.group_claim_limit = 3
    try:
        assert sorted(driver.sign_in(user)["id_token_claims"]["groups"]) == sorted(groups)
        emu.add_member(emu.add_group(None, "Limit 3"), user)
        assert "_claim_names" in driver.sign_in(user)["id_token_claims"]
    finally:
        emu.group_claim_limit = 200


def test_nested_groups_are_transitive(emu: Emulator, sample: SampleData, driver: Driver) -> None:
    groups = set(driver.sign_in(sample.users["adele"])["id_token_claims"]["groups"])
    assert {sample.groups[n] for n in ("Platform Team", "Engineering", "All Staff")} <= groups
    assert sample.roles["Global Reader"] not in groups  # roles are not groups


def test_user_without_groups_gets_empty_claim(sample: SampleData, driver: Driver) -> None:
    assert driver.sign_in(sample.users["lee"])["id_token_claims"]["groups"] == []


def test_group_claims_can_be_switched_off(
    emu: Emulator, sample: SampleData, driver: Driver
) -> None:
    emu.set_group_claims(CLIENT_ID, False)
    try:
        for key in ("adele", "megan"):
            claims = driver.sign_in(sample.users[key])["id_token_claims"]
            assert "groups" not in claims and "_claim_names" not in claims
    finally:
        emu.set_group_claims(CLIENT_ID, True)


def test_membership_changes_show_in_next_token(emu: Emulator, driver: Driver) -> None:
    user = emu.add_user(None, "Mover", "mover@contoso.onmicrosoft.com")
    group = emu.add_group(None, "Movers")
    emu.add_member(group, user)
    assert driver.sign_in(user)["id_token_claims"]["groups"] == [group]
    emu.remove_member(group, user)
    assert driver.sign_in(user)["id_token_claims"]["groups"] == []


# -- tampering -------------------------------------------------------------------------------


def _decode(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


@pytest.mark.parametrize(
    "claims",
    [{"aud": "other"}, {"iss": "https://evil.test/x/v2.0"}, {"exp": 1}],
)
def test_tamper_claims(
    emu: Emulator, sample: SampleData, driver: Driver, http: requests.Session, claims: dict
) -> None:
    emu.tamper_next_id_token(claims=claims)
    token = driver.sign_in(sample.users["adele"])["id_token"]
    assert _decode(token).items() >= claims.items()
    with pytest.raises(jwt.InvalidTokenError):
        verified_claims(emu, http, token, sample.tenant_id)
    # Only the next token is tampered with.
    clean = driver.sign_in(sample.users["adele"])["id_token"]
    verified_claims(emu, http, clean, sample.tenant_id)


def test_tamper_tid_keeps_a_valid_signature(
    emu: Emulator, sample: SampleData, driver: Driver, http: requests.Session
) -> None:
    other = "72f988bf-0000-4000-8000-000000000000"
    emu.tamper_next_id_token(claims={"tid": other})
    token = driver.sign_in(sample.users["adele"])["id_token"]
    assert verified_claims(emu, http, token, sample.tenant_id)["tid"] == other


def test_tamper_future_nbf_and_dropped_claims(
    emu: Emulator, sample: SampleData, driver: Driver
) -> None:
    emu.tamper_next_id_token(claims={"nbf": int(time.time()) + 3600}, drop=("iat", "oid"))
    claims = _decode(driver.sign_in(sample.users["adele"])["id_token"])
    assert claims["nbf"] > time.time() and "iat" not in claims and "oid" not in claims


def test_tamper_nonce_is_caught_by_msal(emu: Emulator, sample: SampleData, driver: Driver) -> None:
    emu.tamper_next_id_token(claims={"nonce": "x"})
    with pytest.raises(RuntimeError):
        driver.start(sample.users["adele"]).redeem()


@pytest.mark.parametrize("sign", ["unknown_key", "bad_signature"])
def test_tamper_signature(
    emu: Emulator, sample: SampleData, driver: Driver, http: requests.Session, sign: str
) -> None:
    emu.tamper_next_id_token(sign=sign)
    token = driver.sign_in(sample.users["adele"])["id_token"]
    if sign == "unknown_key":
        assert jwt.get_unverified_header(token)["kid"] != emu.kid
        with pytest.raises(StopIteration):
            verified_claims(emu, http, token, sample.tenant_id)
    else:
        with pytest.raises(jwt.InvalidSignatureError):
            verified_claims(emu, http, token, sample.tenant_id)


def test_tamper_alg_none(emu: Emulator, sample: SampleData, driver: Driver) -> None:
    emu.tamper_next_id_token(sign="none", header={"x5t": "abc"})
    token = driver.sign_in(sample.users["adele"])["id_token"]
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "none" and header["x5t"] == "abc" and token.endswith(".")


def test_key_rotation(
    emu: Emulator, sample: SampleData, driver: Driver, http: requests.Session
) -> None:
    old_kid = emu.kid
    old_token = driver.sign_in(sample.users["adele"])["access_token"]
    new_kid = emu.rotate_signing_key()
    assert new_kid != old_kid
    keys = http.get(f"{emu.url}/{sample.tenant_id}/discovery/v2.0/keys").json()["keys"]
    assert [k["kid"] for k in keys] == [new_kid]
    token = driver.sign_in(sample.users["adele"])["id_token"]
    assert jwt.get_unverified_header(token)["kid"] == new_kid
    verified_claims(emu, http, token, sample.tenant_id)
    # Access tokens issued before the rotation stay valid at Graph until they expire.
    me = http.get(f"{emu.url}/v1.0/me", headers={"Authorization": f"Bearer {old_token}"})
    assert me.status_code == 200


def test_state_dir_persists_ca_and_key(tmp_path_factory: pytest.TempPathFactory) -> None:
    state = tmp_path_factory.mktemp("persist")
    first = Emulator(state_dir=state)
    ca = first.ca_path.read_bytes()
    second = Emulator(state_dir=state)
    assert second.ca_path.read_bytes() == ca and second.kid == first.kid
    cert = x509.load_pem_x509_certificate((state / "server.pem").read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("127.0.0.1") in san.get_values_for_type(x509.IPAddress)
    assert "localhost" in san.get_values_for_type(x509.DNSName)
    rotated = second.rotate_signing_key()
    assert Emulator(state_dir=state).kid == rotated
