"""Fault, latency and throttling knobs shared by the Entra and Graph halves of the emulator."""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Hashable
from dataclasses import dataclass

FAULT_KINDS = ("429", "503", "500", "hang", "malformed", "malformed_text", "malformed_json")
# A 429 always carries Retry-After (Graph's documented behaviour); this is the default value.
DEFAULT_429_RETRY_AFTER = 1


@dataclass
class Fault:
    """One fault to inject into a Graph response."""

    kind: str
    retry_after: int | None = None


@dataclass
class _Scheduled:
    kind: str
    remaining: int
    path_contains: str | None
    retry_after: int | None


@dataclass
class _Rate:
    kind: str
    probability: float
    rng: random.Random
    retry_after: int | None


def _check_kind(kind: str) -> str:
    if kind not in FAULT_KINDS:
        raise ValueError(f"unknown fault kind {kind!r}; expected one of {FAULT_KINDS}")
    return kind


class GraphFaults:
    """Scheduled and random faults for Graph requests (see Emulator docs for the kinds)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._scheduled: list[_Scheduled] = []
        self._rates: list[_Rate] = []
        self._malformed_flip = 0
        # "hang" sleeps this long (Emulator.stop interrupts it): past any sane client timeout.
        self.hang_seconds = 30.0

    def add(
        self,
        kind: str,
        times: int = 1,
        path_contains: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        """Inject `kind` into the next `times` Graph requests whose path contains path_contains."""
        rule = _Scheduled(_check_kind(kind), times, path_contains, retry_after)
        with self._lock:
            self._scheduled.append(rule)

    def rate(
        self,
        kind: str,
        probability: float,
        seed: int | None = None,
        retry_after: int | None = None,
    ) -> None:
        """Inject `kind` into each Graph request with the given probability (seeded)."""
        rng = random.Random(seed)  # noqa: S311 - fault injection needs reproducibility, not secrecy
        with self._lock:
            self._rates.append(_Rate(_check_kind(kind), probability, rng, retry_after))

    def clear(self) -> None:
        """Drop every scheduled and random fault."""
        with self._lock:
            self._scheduled.clear()
            self._rates.clear()

    def pending(self) -> int:
        """Return how many scheduled injections are still to come."""
        with self._lock:
            return sum(rule.remaining for rule in self._scheduled)

    def pick(self, path: str) -> Fault | None:
        """Consume and return the fault for a request to path, or None."""
        with self._lock:
            fault = self._pick_scheduled(path) or self._pick_random()
            if fault and fault.kind == "malformed":
                # Plain "malformed" alternates between a non-JSON body and JSON without `value`.
                self._malformed_flip += 1
                fault.kind = "malformed_text" if self._malformed_flip % 2 else "malformed_json"
            return fault

    def _pick_scheduled(self, path: str) -> Fault | None:
        for rule in self._scheduled:
            if rule.remaining > 0 and (not rule.path_contains or rule.path_contains in path):
                rule.remaining -= 1
                return Fault(rule.kind, rule.retry_after)
        self._scheduled = [r for r in self._scheduled if r.remaining > 0]
        return None

    def _pick_random(self) -> Fault | None:
        for rule in self._rates:
            if rule.rng.random() < rule.probability:
                return Fault(rule.kind, rule.retry_after)
        return None


class Latency:
    """Added delay per request: none, fixed, or a seeded distribution."""

    PROFILES = {"typical": (0.1, 0.25), "fast": (0.02, 0.25), "slow": (0.3, 0.3)}

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.fixed = 0.0
        self._profile: tuple[float, float] | None = None
        self._rng = random.Random(1)  # noqa: S311 - reproducible jitter, not secrecy

    def set(self, fixed: float | None = None, profile: str = "typical", seed: int = 1) -> None:
        """Use a fixed delay, or (fixed=None) a log-normal profile around its median."""
        with self._lock:
            self.fixed = fixed or 0.0
            self._profile = None if fixed is not None else self.PROFILES[profile]
            self._rng = random.Random(seed)  # noqa: S311 - reproducible jitter, not secrecy

    def next_delay(self) -> float:
        """Return the delay for the next request in seconds."""
        with self._lock:
            if self._profile is None:
                return self.fixed
            median, sigma = self._profile
            # Clamp the tail so one unlucky draw cannot stall a benchmark.
            return min(self._rng.lognormvariate(math.log(median), sigma), median * 4)


class RetryTracker:
    """Counts callers that come back before the Retry-After they were given had elapsed."""

    GRACE = 0.005  # seconds; absorbs timer granularity, never a real early retry

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._blocked_until: dict[Hashable, float] = {}
        self.early_retries = 0

    def record(self, caller: Hashable, retry_after: float) -> None:
        """Remember that caller was told to wait retry_after seconds from now."""
        with self._lock:
            self._blocked_until[caller] = time.monotonic() + retry_after

    def check(self, caller: Hashable) -> bool:
        """Return True (and count it) when caller is back too early."""
        with self._lock:
            until = self._blocked_until.get(caller)
            if until is None or time.monotonic() + self.GRACE >= until:
                return False
            self.early_retries += 1
            return True

    def reset(self) -> None:
        """Forget every recorded Retry-After and zero the counter."""
        with self._lock:
            self._blocked_until.clear()
            self.early_retries = 0


class RuBudget:
    """Token buckets of Graph resource units per app+tenant (throttling-limits.md)."""

    def __init__(self, ru_per_10s: float) -> None:
        self.capacity = float(ru_per_10s)
        self._rate = self.capacity / 10.0
        self._lock = threading.Lock()
        self._buckets: dict[Hashable, tuple[float, float]] = {}

    def charge(self, key: Hashable, cost: int) -> tuple[bool, int, float]:
        """Take cost RU; return (allowed, retry_after_seconds, fraction_of_budget_used)."""
        with self._lock:
            now = time.monotonic()
            level, stamp = self._buckets.get(key, (self.capacity, now))
            level = min(self.capacity, level + (now - stamp) * self._rate)
            if level < cost:
                self._buckets[key] = (level, now)
                return False, max(1, math.ceil((cost - level) / self._rate)), 1.0
            level -= cost
            self._buckets[key] = (level, now)
            return True, 0, 1.0 - level / self.capacity
