"""Fault knobs: injected Graph errors, hangs, malformed bodies, Retry-After checks, RU budget,
latency and counters."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import requests

from portal.dev.emulator import Emulator, SampleData

from .conftest import Graph

GraphFor = Callable[..., Graph]


@pytest.fixture
def adele(graph_for: GraphFor, sample: SampleData) -> Graph:
    """Graph as Adele."""
    return graph_for(sample.users["adele"])


def test_429_has_retry_after_and_body(emu: Emulator, adele: Graph) -> None:
    emu.graph_faults.add("429", retry_after=12)
    answer = adele.get("/me/memberOf")
    error = answer.json()["error"]
    assert answer.status_code == 429 and answer.headers["Retry-After"] == "12"
    assert error["code"] == "TooManyRequests" and error["innerError"]["status"] == "429"
    assert adele.get("/me/memberOf").status_code == 200  # times=1


def test_503_with_and_without_retry_after(emu: Emulator, adele: Graph) -> None:
    emu.graph_faults.add("503", retry_after=2)
    emu.graph_faults.add("503")
    first, second = adele.get("/me"), adele.get("/me")
    assert (first.status_code, first.headers["Retry-After"]) == (503, "2")
    assert second.status_code == 503 and "Retry-After" not in second.headers


def test_500_and_path_filter(emu: Emulator, adele: Graph) -> None:
    emu.graph_faults.add("500", times=2, path_contains="getMemberGroups")
    assert adele.get("/me").status_code == 200
    for _ in range(2):
        answer = adele.post("/me/getMemberGroups", {"securityEnabledOnly": True})
        assert answer.status_code == 500
    assert adele.post("/me/getMemberGroups", {"securityEnabledOnly": True}).status_code == 200
    assert emu.graph_faults.pending() == 0


def test_malformed_alternates_text_and_missing_value(emu: Emulator, adele: Graph) -> None:
    emu.graph_faults.add("malformed", times=2)
    text, no_value = adele.get("/me/memberOf"), adele.get("/me/memberOf")
    assert text.status_code == 200
    with pytest.raises(requests.JSONDecodeError):
        text.json()
    assert no_value.status_code == 200 and "value" not in no_value.json()


@pytest.fixture
def waits(emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record the emulator's waits (latency, hangs) instead of timing them."""
    recorded: list[float] = []
    real = emu.sleep

    def sleep(seconds: float) -> None:
        recorded.append(seconds)
        real(seconds)

    monkeypatch.setattr(emu, "sleep", sleep)
    return recorded


def test_hang_outlasts_client_timeout(emu: Emulator, adele: Graph, waits: list[float]) -> None:
    emu.graph_faults.hang_seconds = 2
    emu.graph_faults.add("hang")
    with pytest.raises(requests.exceptions.ReadTimeout):
        adele.session.get(f"{adele.base}/me", timeout=0.3)
    emu.graph_faults.hang_seconds = 30
    assert 2 in waits


def test_random_faults_are_seeded(emu: Emulator, adele: Graph) -> None:
    def statuses() -> list[int]:
        """Arm the same seeded rates afresh and record 30 answers."""
        emu.graph_faults.clear()
        emu.graph_faults.rate("429", 0.3, seed=7)
        emu.graph_faults.rate("503", 0.3, seed=8)
        return [adele.get("/me").status_code for _ in range(30)]

    first = statuses()
    assert first == statuses()
    assert {200, 429, 503} <= set(first)


def test_unknown_fault_kind(emu: Emulator) -> None:
    with pytest.raises(ValueError):
        emu.graph_faults.add("418")


def test_early_retries_are_counted(emu: Emulator, adele: Graph) -> None:
    emu.reset_counters()
    emu.graph_faults.add("429", retry_after=1)
    assert adele.get("/me").status_code == 429
    assert adele.get("/me").status_code == 200  # came back at once
    assert emu.early_retries == 1
    time.sleep(1.05)
    adele.get("/me")
    assert emu.early_retries == 1 and emu.counters["graph.early_retry"] == 1


def test_waiting_retry_after_is_not_early(emu: Emulator, adele: Graph) -> None:
    emu.reset_counters()
    emu.graph_faults.add("503", retry_after=1)
    assert adele.get("/me").status_code == 503
    time.sleep(1.0)
    assert adele.get("/me").status_code == 200 and emu.early_retries == 0


def test_early_retry_is_tracked_per_caller(
    emu: Emulator, adele: Graph, graph_for: GraphFor, sample: SampleData
) -> None:
    lee = graph_for(sample.users["lee"])
    emu.reset_counters()
    emu.graph_faults.add("429", retry_after=5)
    assert adele.get("/me").status_code == 429
    lee.get("/me")
    assert emu.early_retries == 0


def test_ru_budget(emu: Emulator, adele: Graph) -> None:
    emu.enforce_ru_budget(ru_per_10s=10)
    statuses = [adele.get("/me/memberOf").status_code for _ in range(6)]  # 2 RU each
    assert statuses == [200] * 5 + [429]
    throttled = adele.get("/me")
    assert throttled.status_code == 429
    assert throttled.headers["x-ms-throttle-information"] == "ResourceUnitLimitExceeded"
    assert int(throttled.headers["Retry-After"]) >= 1
    emu.enforce_ru_budget(None)
    assert adele.get("/me").status_code == 200
    assert emu.counters["graph.ru_throttled"] >= 2


def test_ru_budget_refills(emu: Emulator, adele: Graph) -> None:
    emu.enforce_ru_budget(ru_per_10s=20)  # 2 RU per second
    for _ in range(10):
        assert adele.get("/me/memberOf").status_code == 200
    assert adele.get("/me/memberOf").status_code == 429
    time.sleep(1.05)
    assert adele.get("/me/memberOf").status_code == 200


def test_fixed_latency(emu: Emulator, adele: Graph, waits: list[float]) -> None:
    emu.latency = 0.2
    adele.get("/me")
    assert waits == [0.2]
    assert emu.latency == 0.2


def test_latency_for_some_endpoints_only(
    emu: Emulator, adele: Graph, sample: SampleData, http: requests.Session, waits: list[float]
) -> None:
    emu.set_latency(fixed=0.3, endpoints={"jwks"})
    adele.get("/me")
    assert [w for w in waits if w > 0] == []
    http.get(f"{emu.url}/{sample.tenant_id}/discovery/v2.0/keys")
    assert [w for w in waits if w > 0] == [0.3]


def test_latency_profile_is_seeded(emu: Emulator) -> None:
    emu.set_latency(profile="typical", seed=3)
    first = [emu.next_delay() for _ in range(50)]
    emu.set_latency(profile="typical", seed=3)
    assert first == [emu.next_delay() for _ in range(50)]
    assert 0.07 < sorted(first)[25] < 0.14 and max(first) <= 0.4


def test_counters(emu: Emulator, sample: SampleData, adele: Graph, http: requests.Session) -> None:
    emu.reset_counters()
    http.get(f"{emu.url}/{sample.tenant_id}/discovery/v2.0/keys")
    adele.get("/me/transitiveMemberOf")
    adele.post("/directoryObjects/getByIds", {"ids": []})
    assert emu.counters == {"jwks": 1, "graph.transitiveMemberOf": 1, "graph.getByIds": 1}


def test_stop_releases_delayed_requests(tmp_path_factory: pytest.TempPathFactory) -> None:
    emulator = Emulator(state_dir=tmp_path_factory.mktemp("stop")).start()
    emulator.latency = 30  # applies before authentication, so no token is needed
    session = requests.Session()
    session.trust_env = False
    session.verify = str(emulator.ca_path)
    with pytest.raises(requests.exceptions.ReadTimeout):
        session.get(f"{emulator.url}/v1.0/me", timeout=0.2)
    started = time.monotonic()
    emulator.stop()
    assert time.monotonic() - started < 2
