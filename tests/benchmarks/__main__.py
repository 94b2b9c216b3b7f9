"""`python -m tests.benchmarks [--only NAME,...] [--quick] [--backends sqlite,postgresql]`."""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import logging
import os
import platform
import sys
import time
from pathlib import Path

from tests.benchmarks.harness import OUTPUT, Workspace, available_backends
from tests.benchmarks.report import Report, save

BENCHMARKS = {
    "signin": "tests.benchmarks.signin",
    "repeat": "tests.benchmarks.repeat",
    "admin": "tests.benchmarks.admin",
    "throttle": "tests.benchmarks.throttle",
    "overhead": "tests.benchmarks.overhead",
    "reconcile": "tests.benchmarks.reconcile",
    "purge": "tests.benchmarks.purge",
    "scale": "tests.benchmarks.scale",
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks", description=__doc__)
    parser.add_argument(
        "--only", default=",".join(BENCHMARKS), help=f"comma-separated subset of {list(BENCHMARKS)}"
    )
    parser.add_argument("--quick", action="store_true", help="small sizes: about a minute in all")
    parser.add_argument(
        "--backends", default=None, help="sqlite,postgresql (default: every one that answers)"
    )
    parser.add_argument("--output", type=Path, default=None, help="JSON file to write")
    return parser.parse_args(argv)


def run_one(name: str, ws: Workspace, backends: list[str], size: str) -> Report:
    """Run one benchmark, turning a crash into a report that says so."""
    start = time.perf_counter()
    try:
        report: Report = importlib.import_module(BENCHMARKS[name]).run(ws, backends, size)
    except Exception as exc:  # noqa: BLE001 - one broken benchmark must not hide the others
        logging.getLogger(__name__).exception("benchmark %s crashed", name)
        report = Report(name, name)
        report.check(
            "benchmark ran to the end", False, f"{type(exc).__name__}: {exc}", "correctness"
        )
    report.seconds = time.perf_counter() - start
    return report


def meta(size: str, backends: list[str], seconds: float) -> dict[str, object]:
    """Describe the machine and the run."""
    return {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "size": size,
        "backends": backends,
        "cpus": os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "seconds": round(seconds, 1),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the chosen benchmarks, print their tables, write JSON; non-zero on a wrong result."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("portal").setLevel(logging.ERROR)
    size = "quick" if args.quick else "full"
    backends = args.backends.split(",") if args.backends else available_backends()
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    if unknown := [n for n in names if n not in BENCHMARKS]:
        print(f"unknown benchmark(s): {', '.join(unknown)}", file=sys.stderr)
        return 2
    start, reports = time.perf_counter(), []
    print(f"benchmarks {names} at size {size!r} on {backends}", flush=True)
    with Workspace.start() as ws:
        for name in names:
            reports.append(run_one(name, ws, backends, size))
            print(reports[-1].render(), flush=True)
    seconds = time.perf_counter() - start
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = args.output or OUTPUT / f"bench-{size}-{stamp}.json"
    save(reports, path, meta(size, backends, seconds))
    save(reports, OUTPUT / f"latest-{size}.json", meta(size, backends, seconds))
    print(f"total {seconds:.0f} s; results in {path}")
    return 1 if any(r.failed for r in reports) else 0


if __name__ == "__main__":
    sys.exit(main())
