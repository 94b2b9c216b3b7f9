"""The portal under gunicorn with the repo's config, the load generator, and what they cost."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from flask import request

from tests.benchmarks.harness import ROOT, Workspace
from tests.benchmarks.measure import child_pids, process_cpu_seconds

CONFIG = ROOT / "gunicorn.conf.py"
# Used only while the repo has no gunicorn.conf.py: threaded workers, as the operations issue asks.
FALLBACK = ["--worker-class", "gthread", "--workers", "3", "--threads", "8"]


@dataclass
class SqlTotals:
    """Statements and rows written, summed over every worker of one gunicorn run."""

    statements: int = 0
    rows_written: int = 0
    rows_by_table: Counter[str] = field(default_factory=Counter)
    workers: int = 0


@dataclass
class Server:
    """A gunicorn run: its URL and arbiter pid; `sql` is filled in once it has stopped."""

    base_url: str
    pid: int
    sql_dir: Path
    notes: list[str] = field(default_factory=list)
    sql: SqlTotals = field(default_factory=SqlTotals)

    def restart_sql_counts(self) -> None:
        """Make every worker zero its SQL tally at its next request (after a warm-up)."""
        (self.sql_dir / "epoch").write_text(str(time.time_ns()))

    def cpu_seconds(self) -> float:
        """Return the CPU time the arbiter and its workers, live or replaced, have used so far."""
        return process_cpu_seconds([self.pid, *child_pids(self.pid)], reaped_of=self.pid)


def free_port() -> int:
    """Return a TCP port on loopback that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def size_args(size: str) -> list[str]:
    """Return extra gunicorn arguments for a size: one worker in the smoke tests, to start fast."""
    return ["--workers", "1"] if size == "smoke" else []


def gunicorn_args(worker_class: str | None) -> tuple[list[str], list[str]]:
    """Return gunicorn's config arguments and a note when the repo's config is missing."""
    if CONFIG.is_file():
        args = ["-c", str(CONFIG)]
        notes: list[str] = []
    else:
        args = list(FALLBACK)
        notes = ["gunicorn.conf.py is not in the repo yet: ran with " + " ".join(FALLBACK)]
    if worker_class:
        args += ["--worker-class", worker_class]
    return args, notes


@contextmanager
def gunicorn(
    ws: Workspace,
    database_url: str,
    worker_class: str | None = None,
    extra_args: list[str] | None = None,
    **env: str,
) -> Iterator[Server]:
    """Serve the portal (tests/benchmarks/wsgi.py) under gunicorn until the block ends."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    ws.allow_base_url(base)
    args, notes = gunicorn_args(worker_class)
    args += extra_args or []
    with tempfile.TemporaryDirectory(prefix="bench-sql-", dir=ws.scratch) as sql_dir:
        variables = {**os.environ, **ws.env(database_url, base_url=base, **env)}
        variables.update(BENCH_SQL_DIR=sql_dir, PYTHONPATH=str(ROOT))
        command = [sys.executable, "-m", "gunicorn", *args, "--bind", f"127.0.0.1:{port}"]
        log = (ws.scratch / f"gunicorn-{port}.log").open("w")
        process = subprocess.Popen(
            [*command, "tests.benchmarks.wsgi:app"], cwd=ROOT, env=variables, stdout=log, stderr=log
        )
        server = Server(base, process.pid, Path(sql_dir), notes)
        try:
            _wait_healthy(base, process, ws.scratch / f"gunicorn-{port}.log")
            yield server
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
            log.close()
            server.sql = sql_totals(Path(sql_dir))


def _wait_healthy(base: str, process: subprocess.Popen[bytes], log: Path) -> None:
    """Wait until /healthz answers 200, or fail with the end of gunicorn's log."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            if requests.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass  # not listening yet, or the worker is still importing the app
        time.sleep(0.1)
    raise RuntimeError(f"gunicorn did not become healthy: {log.read_text()[-800:]}")


def sql_totals(directory: Path) -> SqlTotals:
    """Sum the SQL tallies the workers wrote when they exited."""
    totals = SqlTotals()
    for path in directory.glob("*.json"):
        data = json.loads(path.read_text())
        totals.statements += data["statements"]
        totals.rows_written += data["rows_written"]
        totals.rows_by_table.update(data["rows_by_table"])
        totals.workers += 1
    return totals


def load(job: dict[str, Any]) -> dict[str, Any]:
    """Run one load-generator job in a separate process and return its result."""
    answer = subprocess.run(
        [sys.executable, "-m", "tests.benchmarks.loadgen"],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=900,
        check=False,
    )
    if answer.returncode != 0:
        raise RuntimeError(f"the load generator failed: {answer.stderr[-800:]}")
    return json.loads(answer.stdout)


class EndpointLatency:
    """Delay only some emulator endpoints, e.g. the token endpoint of a repeat sign-in."""

    def __init__(self, seconds: float, endpoints: set[str]) -> None:
        self.fixed = seconds
        self.endpoints = endpoints

    def set(self, fixed: float | None = None, profile: str = "typical", seed: int = 1) -> None:
        """Accept the emulator's reset (the context manager restores the original anyway)."""

    def next_delay(self) -> float:
        """Return the delay for the emulator request being served."""
        return self.fixed if request.endpoint in self.endpoints else 0.0


@contextmanager
def token_latency(ws: Workspace, seconds: float) -> Iterator[str]:
    """Add `seconds` to each token request only; yield how the latency was applied."""
    emulator = ws.emulator
    original = getattr(emulator, "_latency", None)
    if original is None or not hasattr(original, "next_delay"):
        emulator.latency = seconds  # no per-endpoint hook: every request is delayed
        try:
            yield f"{seconds * 1000:.0f} ms on every emulator request"
        finally:
            emulator.latency = 0.0
        return
    emulator._latency = EndpointLatency(seconds, {"entra.token"})
    try:
        yield f"{seconds * 1000:.0f} ms on each token request"
    finally:
        emulator._latency = original
