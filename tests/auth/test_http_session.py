"""The Entra/Graph HTTP session keeps its connections when many threads share it."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from portal.http import POOL_SIZE, http_session

THREADS = 24  # more than requests' default pool of 10, as under gunicorn's gthread workers


@pytest.fixture
def slow_emulator(emulator: Any) -> Iterator[Any]:
    """The emulator with a fixed delay, so the threads' requests overlap."""
    emulator.set_latency(fixed=0.05)
    yield emulator


def test_concurrent_requests_keep_every_connection_in_the_pool(
    slow_emulator: Any, caplog: pytest.LogCaptureFixture
) -> None:
    session = http_session(str(slow_emulator.ca_path))
    url = f"{slow_emulator.url}/{slow_emulator.tenant_id}/v2.0/.well-known/openid-configuration"
    start = threading.Barrier(THREADS)

    def fetch(_: int) -> int:
        start.wait(timeout=10)
        return session.get(url).status_code

    with caplog.at_level(logging.WARNING, logger="urllib3"), ThreadPoolExecutor(THREADS) as pool:
        statuses = list(pool.map(fetch, range(THREADS)))

    assert statuses == [200] * THREADS
    assert THREADS <= POOL_SIZE
    assert not [r for r in caplog.records if "Connection pool is full" in r.getMessage()]
