"""The HTTP session for Entra ID and Microsoft Graph: pinned trust, pooled, bounded timeouts."""

from __future__ import annotations

import functools

import requests
from requests.adapters import HTTPAdapter

TIMEOUT = (3.05, 10)  # connect, read: a hung sign-in host must not hang a worker
# Connections kept per host: one process's threads (gunicorn gthread) share a session, and
# requests' default of 10 drops and reopens connections under load ("Connection pool is full").
POOL_SIZE = 32


def http_session(ca_bundle: str | None, proxy: str | None = None) -> requests.Session:
    """Build a requests session that trusts exactly the configured CA bundle.

    `trust_env` is off because REQUESTS_CA_BUNDLE in the environment would otherwise
    override `verify` and silently ignore ENTRA_CA_BUNDLE; it also drops HTTPS_PROXY and
    NO_PROXY, so the only proxy is the one configured (PORTAL_HTTPS_PROXY).
    """
    session = requests.Session()
    session.trust_env = False
    session.verify = ca_bundle or True
    if proxy:
        session.proxies = {"https": proxy, "http": proxy}
    adapter = HTTPAdapter(pool_maxsize=POOL_SIZE)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.request = functools.partial(session.request, timeout=TIMEOUT)  # type: ignore[method-assign]
    return session
