"""Fixtures for the emulator's own tests: one HTTPS emulator per run, MSAL clients, helpers."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import msal
import pytest
import requests

from portal.dev.emulator import Emulator, SampleData

CLIENT_ID = "6a1c0f3e-5d2b-4c7a-9e8f-0b1a2c3d4e5f"
CLIENT_SECRET = "emulator-suite-secret"
REDIRECT_URI = "http://127.0.0.1:5000/auth/callback"
GRAPH_SCOPES = ("User.Read", "GroupMember.Read.All")


def tls_session(emu: Emulator) -> requests.Session:
    """Return a session that trusts only the emulator's CA and ignores *_CA_BUNDLE variables."""
    session = requests.Session()
    session.trust_env = False
    session.verify = str(emu.ca_path)
    return session


@pytest.fixture(scope="session")
def _running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Emulator, SampleData]]:
    """Start the emulator with the demo tenant first, so it is the default tenant."""
    emulator = Emulator(state_dir=tmp_path_factory.mktemp("emulator-state"))
    data = emulator.load_sample_data(CLIENT_ID, CLIENT_SECRET, [REDIRECT_URI])
    emulator.start(port=0)
    yield emulator, data
    emulator.stop()


@pytest.fixture(scope="session")
def emu(_running: tuple[Emulator, SampleData]) -> Emulator:
    """A running emulator shared by the whole emulator suite."""
    return _running[0]


@pytest.fixture(scope="session")
def sample(_running: tuple[Emulator, SampleData]) -> SampleData:
    """The demo tenant (the default tenant), registered for this suite's client."""
    return _running[1]


@pytest.fixture(autouse=True)
def _clean_knobs(emu: Emulator) -> Iterator[None]:
    """Every test starts without faults, tampering, latency or a budget."""
    emu.reset_faults()
    yield
    emu.reset_faults()


@pytest.fixture
def http(emu: Emulator) -> requests.Session:
    """A requests session trusting the emulator."""
    return tls_session(emu)


@dataclass
class SignIn:
    """What one sign-in produced."""

    flow: dict[str, Any]
    redirect: requests.Response
    auth_response: dict[str, str]
    app: msal.ConfidentialClientApplication

    def redeem(self) -> dict[str, Any]:
        """Redeem the code through MSAL."""
        return self.app.acquire_token_by_auth_code_flow(self.flow, self.auth_response)


class Driver:
    """Runs MSAL against the emulator the way the portal does."""

    def __init__(self, emu: Emulator, sample: SampleData) -> None:
        self.emu = emu
        self.sample = sample

    def app(
        self, tenant: str | None = None, secret: str = CLIENT_SECRET, client_id: str = CLIENT_ID
    ) -> msal.ConfidentialClientApplication:
        """Build a fresh MSAL app (fresh throttling cache) for the tenant."""
        return msal.ConfidentialClientApplication(
            client_id,
            client_credential=secret,
            authority=f"{self.emu.url}/{tenant or self.sample.tenant_id}",
            instance_discovery=False,
            http_client=tls_session(self.emu),
        )

    def start(
        self,
        account: str,
        scopes: tuple[str, ...] = GRAPH_SCOPES,
        tenant: str | None = None,
        **app_args: str,
    ) -> SignIn:
        """Begin the flow and pick `account` on the emulator's page, without redeeming."""
        app = self.app(tenant, **app_args)
        with warnings.catch_warnings():
            # MSAL 1.39 nudges towards form_post; the portal uses query (SameSite=Lax cookies).
            warnings.filterwarnings("ignore", message="response_mode='form_post' is recommended")
            flow = app.initiate_auth_code_flow(
                list(scopes), redirect_uri=REDIRECT_URI, response_mode="query"
            )
        answer = tls_session(self.emu).post(
            flow["auth_uri"], data={"account": account}, allow_redirects=False
        )
        query = parse_qs(urlsplit(answer.headers.get("Location", "")).query)
        return SignIn(flow, answer, {k: v[0] for k, v in query.items()}, app)

    def sign_in(self, account: str, **kwargs: Any) -> dict[str, Any]:
        """Sign in fully and return MSAL's result."""
        result = self.start(account, **kwargs).redeem()
        assert "access_token" in result, result
        return result

    def graph_token(self, account: str, scopes: tuple[str, ...] = GRAPH_SCOPES, **kw: Any) -> str:
        """Return a delegated Graph access token for the account."""
        return self.sign_in(account, scopes=scopes, **kw)["access_token"]


@pytest.fixture
def driver(emu: Emulator, sample: SampleData) -> Driver:
    """MSAL helpers bound to the emulator and the demo tenant."""
    return Driver(emu, sample)


class Graph:
    """A tiny Graph client for tests: a bearer token plus the emulator's base URL."""

    def __init__(self, emu: Emulator, token: str | None) -> None:
        self.base = f"{emu.url}/v1.0"
        self.session = tls_session(emu)
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        """GET a path (relative to /v1.0) or an absolute nextLink."""
        url = path if path.startswith("https://") else self.base + path
        return self.session.get(url, timeout=10, **kwargs)

    def post(self, path: str, body: Any, **kwargs: Any) -> requests.Response:
        """POST JSON to a path relative to /v1.0."""
        return self.session.post(self.base + path, json=body, timeout=10, **kwargs)

    def all_pages(self, path: str, **kwargs: Any) -> tuple[list[dict[str, Any]], int]:
        """Follow @odata.nextLink verbatim; return every item and the number of pages."""
        items: list[dict[str, Any]] = []
        url: str | None = path
        pages = 0
        while url:
            answer = self.get(url, **kwargs)
            assert answer.status_code == 200, answer.text
            body = answer.json()
            items += body["value"]
            pages += 1
            url = body.get("@odata.nextLink")
        return items, pages


@pytest.fixture
def graph_for(emu: Emulator, driver: Driver) -> Any:
    """Factory: a Graph client signed in as an account (delegated token)."""

    def make(account: str, scopes: tuple[str, ...] = GRAPH_SCOPES, **kwargs: Any) -> Graph:
        """Sign the account in and wrap its Graph token."""
        return Graph(emu, driver.graph_token(account, scopes=scopes, **kwargs))

    return make
