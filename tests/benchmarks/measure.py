"""What the benchmarks count: wall time percentiles, SQL statements and rows, Graph calls, CPU."""

from __future__ import annotations

import os
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

# Emulator counters that are tallies about requests, not requests themselves.
_NOT_REQUESTS = {"graph.ru", "graph.ru_throttled", "graph.throttled", "graph.early_retry"}
_WRITE = re.compile(r"^\s*(INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+\"?(\w+)\"?", re.IGNORECASE)


def percentile(values: Sequence[float], q: float) -> float:
    """Return the q-th percentile (0-100) by linear interpolation; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def graph_requests(counters: dict[str, int]) -> int:
    """Count the Graph requests in an emulator counter snapshot (faulted ones included)."""
    return sum(
        n
        for name, n in counters.items()
        if name.startswith("graph.")
        and name not in _NOT_REQUESTS
        and not name.startswith("graph.fault.")
    )


def counter_delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """Return after - before for every counter that moved."""
    return {
        k: after.get(k, 0) - before.get(k, 0) for k in after if after.get(k, 0) != before.get(k, 0)
    }


@dataclass
class SqlTally:
    """SQL statements run and rows written, in total and per table."""

    statements: int = 0
    rows_written: int = 0
    rows_by_table: Counter[str] = field(default_factory=Counter)

    def minus(self, earlier: SqlTally) -> SqlTally:
        """Return what happened between `earlier` and this tally."""
        return SqlTally(
            self.statements - earlier.statements,
            self.rows_written - earlier.rows_written,
            self.rows_by_table - earlier.rows_by_table,
        )


class SqlCounter:
    """Count statements and written rows on an engine through SQLAlchemy's cursor events."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self._lock = threading.Lock()
        self._tally = SqlTally()
        sa.event.listen(engine, "after_cursor_execute", self._after)

    def _after(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        """Add one statement, and the rows it wrote when it is an INSERT, UPDATE or DELETE."""
        match = _WRITE.match(statement)
        rows = max(cursor.rowcount, 0) if match else 0
        with self._lock:
            self._tally.statements += 1
            if match:
                self._tally.rows_written += rows
                self._tally.rows_by_table[match.group(2).lower()] += rows

    def snapshot(self) -> SqlTally:
        """Return a copy of the running tally."""
        with self._lock:
            t = self._tally
            return SqlTally(t.statements, t.rows_written, Counter(t.rows_by_table))

    def reset(self) -> None:
        """Start again from zero."""
        with self._lock:
            self._tally = SqlTally()

    def close(self) -> None:
        """Stop counting."""
        sa.event.remove(self.engine, "after_cursor_execute", self._after)


@contextmanager
def timed() -> Iterator[list[float]]:
    """Yield a one-element list that holds the elapsed seconds once the block ends."""
    box = [0.0]
    start = time.perf_counter()
    try:
        yield box
    finally:
        box[0] = time.perf_counter() - start


def process_cpu_seconds(pids: Sequence[int], reaped_of: int | None = None) -> float:
    """Return user+system CPU seconds of these processes (Linux /proc), skipping vanished ones.

    With `reaped_of`, the CPU of that process's children that already exited and were reaped
    counts too (gunicorn replaces workers after `max_requests`; their CPU must not vanish).
    """
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
        if pid == reaped_of:
            total += int(fields[13]) + int(fields[14])
    return total / tick


def child_pids(pid: int) -> list[int]:
    """Return the direct children of a process (gunicorn's workers of its arbiter)."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    children: list[int] = []
    for task in tasks:
        try:
            text = Path(f"/proc/{pid}/task/{task}/children").read_text()
        except OSError:
            continue
        children.extend(int(c) for c in text.split())
    return children
