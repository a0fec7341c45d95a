"""A small closed-loop HTTP load generator for 127.0.0.1 (benchmark 3).

``LoadGenerator(port, processes, threads)`` starts ``processes`` client
processes once (so the clients are not bound by one GIL); each runs
``threads`` threads, one keep-alive ``http.client`` connection per thread
(lighter than ``requests``, so more of the two cores go to the server). A
burst, :meth:`LoadGenerator.burst`, sends every thread its own request
(path, headers, body) in a loop for a fixed number of seconds and returns
per-request latencies and error counts. It stops by itself: a fixed duration,
bounded per-request timeouts, loopback only.
"""

from __future__ import annotations

import http.client
import multiprocessing as mp
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

Request = tuple[str, dict[str, str], bytes]  # path, headers, body (POST)


@dataclass
class BurstResult:
    latencies: list[float] = field(default_factory=list)  # seconds, successful requests only
    errors: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0


def _thread_loop(port: int, req: Request, deadline: float, out: list[Any]) -> None:
    path, headers, body = req
    lat: list[float] = []
    errors = 0
    statuses: dict[int, int] = {}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    while True:
        t0 = time.perf_counter()
        if t0 >= deadline:
            break
        try:
            conn.request("POST", path, body=body, headers=headers)
            resp = conn.getresponse()
            resp.read()
            t1 = time.perf_counter()
            statuses[resp.status] = statuses.get(resp.status, 0) + 1
            if resp.status == 200:
                if t1 <= deadline:
                    lat.append(t1 - t0)
            else:
                errors += 1
            if resp.will_close:
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        except (OSError, http.client.HTTPException):
            errors += 1
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.close()
    out.append((lat, errors, statuses))


def _client_main(conn: Any, port: int) -> None:
    while True:
        msg = conn.recv()
        if msg is None:
            return
        requests, start_at, seconds = msg
        # Every process starts at the same moment (CLOCK_MONOTONIC is system-wide on Linux):
        # sleeping until a shared start time is the load generator's job, not a wait for
        # something to happen.
        time.sleep(max(0.0, start_at - time.monotonic()))
        deadline = time.perf_counter() + seconds
        out: list[Any] = []
        threads = [threading.Thread(target=_thread_loop, args=(port, r, deadline, out)) for r in requests]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        conn.send(out)


class LoadGenerator:
    def __init__(self, port: int, processes: int, threads: int) -> None:
        self.port = port
        self.threads = threads
        # fork: no re-import of __main__ (works from any entry point); created before any
        # thread of the benchmark runs (the sandbox of benchmark 4 starts later).
        ctx = mp.get_context("fork")
        self._pipes = []
        self._procs = []
        for _ in range(processes):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_client_main, args=(child, port), daemon=True)
            proc.start()
            self._pipes.append(parent)
            self._procs.append(proc)

    @property
    def concurrency(self) -> int:
        return len(self._procs) * self.threads

    def burst(self, requests: Sequence[Request], seconds: float) -> BurstResult:
        """Run ``requests[i]`` on connection ``i`` (cycled) in a closed loop for ``seconds``."""
        start_at = time.monotonic() + 0.05
        n = self.threads
        for i, pipe in enumerate(self._pipes):
            mine = [requests[(i * n + j) % len(requests)] for j in range(n)]
            pipe.send((mine, start_at, seconds))
        result = BurstResult(seconds=seconds)
        for pipe in self._pipes:
            for lat, errors, statuses in pipe.recv():
                result.latencies.extend(lat)
                result.errors += errors
                for status, count in statuses.items():
                    result.statuses[status] = result.statuses.get(status, 0) + count
        return result

    def close(self) -> None:
        for pipe in self._pipes:
            try:
                pipe.send(None)
            except OSError:
                pass
        for proc in self._procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=5)

    def __enter__(self) -> LoadGenerator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
