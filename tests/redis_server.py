"""A real ``redis-server`` for tests: on a unix socket, stopped and restarted on demand.

Used by the store tests (outage and recovery) and the fault soak; the
``redis_server`` fixture in ``tests/conftest.py`` wraps it. The socket lives in
a short directory of its own (a unix socket path is limited to ~100 bytes, and
pytest's ``tmp_path`` can be longer). Readiness is a ``PING`` that answers,
never a fixed sleep.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import redis

REDIS_SERVER = os.environ.get("REDIS_SERVER") or shutil.which("redis-server") or "/usr/bin/redis-server"


class RedisServer:
    """``RedisServer().start()``; ``.url`` (``unix://...``); ``.stop()``, ``.restart()``, ``.close()``.

    ``persistent=True`` runs with an append-only file (``appendonly yes``,
    ``appendfsync everysec``) in its directory, so data survives a restart,
    as docs/deployment.md recommends; the default keeps nothing on disk.
    """

    def __init__(self, *, persistent: bool = False) -> None:
        self.persistent = persistent
        self.directory = Path(tempfile.mkdtemp(prefix="tcr-"))
        self.socket = self.directory / "redis.sock"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def client(self) -> redis.Redis:
        return redis.Redis(unix_socket_path=str(self.socket), socket_timeout=2, socket_connect_timeout=2)

    def command(self) -> list[str]:
        persistence = (
            ["--appendonly", "yes", "--appendfsync", "everysec"]
            if self.persistent
            else [
                "--appendonly",
                "no",
            ]
        )
        return [
            REDIS_SERVER,
            "--port",
            "0",
            "--unixsocket",
            str(self.socket),
            "--unixsocketperm",
            "700",
            "--save",
            "",
            *persistence,
            "--dir",
            str(self.directory),
            "--logfile",
            str(self.directory / "redis.log"),
        ]

    def start(self, timeout: float = 20.0) -> RedisServer:
        if self.process is not None:
            return self
        self.process = subprocess.Popen(self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float) -> None:
        """Until ``PING`` answers (or the process died, or ``timeout`` passed)."""
        deadline = time.monotonic() + timeout
        client = self.client()
        try:
            while True:
                assert self.process is not None
                if self.process.poll() is not None:
                    err = self.process.stderr.read().decode(errors="replace") if self.process.stderr else ""
                    raise RuntimeError(f"redis-server exited with {self.process.returncode}: {err[-500:]}")
                try:
                    if client.ping():
                        return
                except (redis.ConnectionError, redis.TimeoutError, FileNotFoundError):
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError("redis-server did not answer PING in time")
                time.sleep(0.02)  # poll interval of the readiness check, not a wait for it
        finally:
            client.close()

    def stop(self) -> None:
        """Shut down (SIGTERM: with AOF, Redis flushes it before exiting)."""
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=20)
        if self.process.stderr:
            self.process.stderr.close()
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
