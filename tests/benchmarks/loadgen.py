"""A load generator on loopback, run in its own process so it does not share the emulator's GIL.

Reads one JSON job on stdin and prints one JSON result on stdout. Jobs:
`{"kind": "signin", "base": URL, "ca": PATH, "users": [OID, ...], "concurrency": N}` signs each
user in once (the whole authorization-code flow, as a browser would), and
`{"kind": "pages", "base": URL, "ca": PATH, "path": "/", "user": OID | null, "concurrency": N,
"seconds": S}` requests one page over keep-alive connections for S seconds.
"""

from __future__ import annotations

import http.client
import json
import sys
import threading
import time
from typing import Any
from urllib.parse import urlsplit

import requests


class Browser:
    """One keep-alive connection to the portal plus its cookies, and a session to the IdP."""

    def __init__(self, base: str, ca: str) -> None:
        parts = urlsplit(base)
        self.conn = http.client.HTTPConnection(
            parts.hostname or "127.0.0.1", parts.port, timeout=60
        )
        self.cookies: dict[str, str] = {}
        self.idp = requests.Session()
        self.idp.trust_env = False
        self.idp.verify = ca

    def get(self, path: str) -> tuple[int, str]:
        """GET a portal path with the cookie; return the status and the Location header."""
        cookie = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        self.conn.request("GET", path, headers={"Cookie": cookie} if cookie else {})
        response = self.conn.getresponse()
        response.read()
        for value in response.headers.get_all("Set-Cookie") or []:
            # The session cookie and the sign-in cookie (path /auth; sending it wider is harmless).
            name, _, rest = value.split(";", 1)[0].partition("=")
            self.cookies[name] = rest
        return response.status, response.headers.get("Location", "")

    def sign_in(self, object_id: str) -> tuple[bool, float]:
        """Run the whole flow on a fresh session; return success and the callback's seconds."""
        self.cookies.clear()
        status, authorize = self.get("/auth/login")
        if status != 302:
            return False, 0.0
        answer = self.idp.post(authorize, data={"account": object_id}, allow_redirects=False)
        if answer.status_code != 302:
            return False, 0.0
        callback = urlsplit(answer.headers["Location"])
        start = time.perf_counter()
        status, target = self.get(f"{callback.path}?{callback.query}")
        return status == 302 and "/login" not in target, time.perf_counter() - start


def sign_ins(job: dict[str, Any]) -> dict[str, Any]:
    """Sign every user in once, `concurrency` at a time; with `interval`, start them paced."""
    queue = list(reversed(list(enumerate(job["users"]))))
    lock = threading.Lock()
    results: list[tuple[bool, float, float, float]] = []
    interval = job.get("interval") or 0.0
    origin = time.perf_counter() + 0.1

    def worker() -> None:
        browser = Browser(job["base"], job["ca"])
        while True:
            with lock:
                if not queue:
                    return
                index, oid = queue.pop()
            if interval:
                time.sleep(max(0.0, origin + index * interval - time.perf_counter()))  # pacing
            start = time.perf_counter()
            ok, callback = browser.sign_in(oid)
            with lock:
                results.append((ok, time.perf_counter() - start, callback, start - origin))

    seconds = _run_threads(worker, job["concurrency"])
    starts = [r[3] for r in results] or [0.0]
    return {
        "seconds": seconds,
        "ok": sum(r[0] for r in results),
        "failed": sum(not r[0] for r in results),
        "flow": [r[1] for r in results],
        "callback": [r[2] for r in results],
        "start_span": max(starts) - min(starts),
    }


def pages(job: dict[str, Any]) -> dict[str, Any]:
    """Request one page for `seconds`, `concurrency` keep-alive connections at a time.

    Every worker signs in first; the clock starts when all of them have, so sign-ins (which
    take longer than a smoke run's window) are not counted in the page's throughput.
    """
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    ready = threading.Barrier(job["concurrency"])
    window: list[float] = []

    def worker() -> None:
        browser = Browser(job["base"], job["ca"])
        if job.get("user"):
            browser.sign_in(job["user"])
        if ready.wait() == 0:
            window.append(time.perf_counter())
        ready.wait()
        deadline = window[0] + job["seconds"]
        mine: list[float] = []
        seen: dict[int, int] = {}
        # At least one request each, however short the window.
        while not mine or time.perf_counter() < deadline:
            start = time.perf_counter()
            status, _ = browser.get(job["path"])
            mine.append(time.perf_counter() - start)
            seen[status] = seen.get(status, 0) + 1
        with lock:
            latencies.extend(mine)
            for status, count in seen.items():
                statuses[status] = statuses.get(status, 0) + count

    _run_threads(worker, job["concurrency"])
    return {
        "seconds": job["seconds"],
        "requests": len(latencies),
        "latency": latencies,
        "statuses": statuses,
    }


def _run_threads(target: Any, count: int) -> float:
    """Run `count` threads of target to completion and return the wall time."""
    threads = [threading.Thread(target=target) for _ in range(count)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - start


def main() -> None:
    """Run the job from stdin and print its result."""
    job = json.load(sys.stdin)
    result = sign_ins(job) if job["kind"] == "signin" else pages(job)
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
