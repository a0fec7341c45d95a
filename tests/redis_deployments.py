"""Real Redis deployments for the tests: a TLS node, a master with a Sentinel, a 3-node cluster.

Each needs TCP ports (a Sentinel announces its master by host:port; a cluster
node's bus is its port + 10000), so :func:`free_port` picks one the kernel had
free and a start that loses the race is retried with another. Readiness is a
``PING`` (and for the cluster ``cluster_state:ok``), never a fixed sleep.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

from .redis_server import REDIS_SERVER

REDIS_CLI = shutil.which("redis-cli") or "/usr/bin/redis-cli"


def free_port(low: int = 20000, high: int = 50000) -> int:
    """A TCP port free right now below 55535 (so port + 10000, a cluster bus, is valid too)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if low <= port < high:
            return port


def wait_until(
    check: Callable[[], bool], process: subprocess.Popen[bytes], what: str, timeout: float = 20
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        try:
            if check():
                return
        except (redis.RedisError, OSError):
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not become ready in time")
        time.sleep(0.02)  # poll interval of the readiness check


class Deployment:
    """Processes in one temporary directory; ``close()`` stops them all and removes it."""

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="tcd-"))
        self.processes: list[subprocess.Popen[bytes]] = []

    def spawn(self, args: list[str], name: str) -> subprocess.Popen[bytes]:
        log = self.directory / f"{name}.log"
        process = subprocess.Popen(
            [REDIS_SERVER, *args, "--logfile", str(log)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self.processes.append(process)
        return process

    def close(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


BASE = ["--save", "", "--appendonly", "no", "--bind", "127.0.0.1"]


class TlsRedis(Deployment):
    """One node speaking only TLS, its certificate from a trustme CA (``.ca_file``, ``.url``)."""

    def start(self) -> TlsRedis:
        import trustme

        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost")
        self.ca_file = self.directory / "ca.pem"
        ca.cert_pem.write_to_path(str(self.ca_file))
        cert.private_key_pem.write_to_path(str(self.directory / "key.pem"))
        cert.cert_chain_pems[0].write_to_path(str(self.directory / "cert.pem"))
        self.port = free_port()
        tls = [
            "--port", "0", "--tls-port", str(self.port),
            "--tls-cert-file", str(self.directory / "cert.pem"),
            "--tls-key-file", str(self.directory / "key.pem"),
            "--tls-ca-cert-file", str(self.ca_file),
            "--tls-auth-clients", "no",
        ]  # fmt: skip
        process = self.spawn([*tls, *BASE, "--dir", str(self.directory)], "tls")
        client = redis.Redis(host="127.0.0.1", port=self.port, ssl=True, ssl_ca_certs=str(self.ca_file))
        wait_until(lambda: bool(client.ping()), process, "redis-server (TLS)")
        client.close()
        return self

    @property
    def url(self) -> str:
        return f"rediss://127.0.0.1:{self.port}/0"


class SentinelRedis(Deployment):
    """A master and one Sentinel monitoring it as ``mymaster`` (``.url``: ``redis+sentinel://``)."""

    service = "mymaster"

    def start(self) -> SentinelRedis:
        self.master_port = free_port()
        master = self.spawn(["--port", str(self.master_port), *BASE, "--dir", str(self.directory)], "master")
        client = redis.Redis(host="127.0.0.1", port=self.master_port)
        wait_until(lambda: bool(client.ping()), master, "redis-server (master)")
        self.sentinel_port = free_port()
        conf = self.directory / "sentinel.conf"  # Sentinel rewrites its config file: it must own it
        conf.write_text(
            f"port {self.sentinel_port}\nbind 127.0.0.1\ndir {self.directory}\n"
            f"sentinel monitor {self.service} 127.0.0.1 {self.master_port} 1\n"
        )
        sentinel = self.spawn([str(conf), "--sentinel"], "sentinel")
        probe = redis.Redis(host="127.0.0.1", port=self.sentinel_port)
        wait_until(
            lambda: probe.execute_command("SENTINEL", "get-master-addr-by-name", self.service) is not None,
            sentinel,
            "redis-sentinel",
        )
        return self

    @property
    def url(self) -> str:
        return f"redis+sentinel://127.0.0.1:{self.sentinel_port}/{self.service}"


class ClusterRedis(Deployment):
    """Three masters, no replicas, joined with ``redis-cli --cluster create`` (``.url``)."""

    def start(self) -> ClusterRedis:
        self.ports = [free_port() for _ in range(3)]
        for i, port in enumerate(self.ports):
            node_dir = self.directory / f"n{i}"
            node_dir.mkdir()
            args = ["--port", str(port), *BASE, "--dir", str(node_dir), "--cluster-enabled", "yes"]
            process = self.spawn([*args, "--cluster-config-file", "nodes.conf"], f"node{i}")
            client = redis.Redis(host="127.0.0.1", port=port)
            wait_until(lambda c=client: bool(c.ping()), process, "redis-server (cluster node)")
        nodes = [f"127.0.0.1:{port}" for port in self.ports]
        subprocess.run(
            [REDIS_CLI, "--cluster", "create", *nodes, "--cluster-replicas", "0", "--cluster-yes"],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=30,
        )
        clients = [redis.Redis(host="127.0.0.1", port=port) for port in self.ports]

        def state_ok() -> bool:
            return all(b"cluster_state:ok" in c.execute_command("CLUSTER", "INFO") for c in clients)

        wait_until(state_ok, self.processes[0], "redis cluster")
        return self

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{port}" for port in self.ports)
