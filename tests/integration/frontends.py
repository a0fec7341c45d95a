"""Real front ends started from the tests: nginx (gzip + TLS reverse proxy) and tinyproxy.

Each runs in the foreground as a child of pytest with its configuration, logs
and pid file in the test's temporary directory, on loopback ports picked free
(bind port 0, close, use; start again on another pair if nginx lost the race).
Readiness is a condition (the port accepts connections), never a sleep.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

NGINX = "/usr/sbin/nginx"
TINYPROXY = "/usr/bin/tinyproxy"
ATTEMPTS = 5


def binary(path: str) -> str:
    found = path if os.path.exists(path) else shutil.which(os.path.basename(path))
    if not found:
        if os.environ.get("CI"):
            pytest.fail(f"{path} is not installed; .ci/run installs it with apt-get")
        pytest.skip(f"{path} is not installed (apt-get install {os.path.basename(path)})")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_listening(proc: subprocess.Popen[bytes], port: int, timeout: float = 15.0) -> bool:
    """True once ``port`` accepts a connection; False if the process exited first."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.02)  # polling a condition (the port), not waiting out a duration
    return False


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


NGINX_CONF = """
{user}
daemon off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log info;
events {{ worker_connections 64; }}
http {{
    log_format fe '$request $status enc=$sent_http_content_encoding ae="$http_accept_encoding"';
    access_log {dir}/access.log fe;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    gzip on;
    gzip_types application/json;
    gzip_min_length 0;
    gzip_proxied any;
    upstream sandbox {{ server {upstream}; }}
    server {{
        listen 127.0.0.1:{http_port};
        location / {{ proxy_pass http://sandbox; proxy_http_version 1.1; proxy_set_header Host $http_host; }}
    }}
    server {{
        listen 127.0.0.1:{https_port} ssl;
        ssl_certificate {dir}/server.pem;
        ssl_certificate_key {dir}/server.key;
        location / {{ proxy_pass http://sandbox; proxy_http_version 1.1; proxy_set_header Host $http_host; }}
    }}
}}
"""


@dataclass
class Nginx:
    """nginx in front of ``upstream`` (host:port): gzip for JSON on both listeners, TLS on one."""

    proc: subprocess.Popen[bytes]
    dir: Path
    http_port: int
    https_port: int

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def https_url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    def access_log(self) -> list[str]:
        path = self.dir / "access.log"
        return path.read_text().splitlines() if path.exists() else []

    def logged(self, needle: str, timeout: float = 10.0) -> list[str]:
        """Access-log lines holding ``needle``, waiting for the first one.

        nginx writes the line when it finalises the request, which may be just
        after the client has its answer: poll for it, do not read once.
        """
        end = time.monotonic() + timeout
        while True:
            lines = [line for line in self.access_log() if needle in line]
            if lines or time.monotonic() > end:
                return lines
            time.sleep(0.02)  # polling a condition (the log line), not waiting out a duration

    def stop(self) -> None:
        stop(self.proc)


def start_nginx(upstream: str, directory: Path, cert_pem: bytes, key_pem: bytes) -> Nginx:
    exe = binary(NGINX)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "server.pem").write_bytes(cert_pem)
    (directory / "server.key").write_bytes(key_pem)
    # As root the workers would switch to 'nobody' and lose the test's 0700 directory.
    user = "user root root;" if os.geteuid() == 0 else ""
    for _ in range(ATTEMPTS):
        http_port, https_port = free_port(), free_port()
        conf = directory / "nginx.conf"
        conf.write_text(
            NGINX_CONF.format(
                user=user, dir=directory, upstream=upstream, http_port=http_port, https_port=https_port
            )
        )
        proc = subprocess.Popen(
            [exe, "-e", str(directory / "error.log"), "-c", str(conf), "-p", str(directory)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if wait_listening(proc, http_port) and wait_listening(proc, https_port):
            return Nginx(proc, directory, http_port, https_port)
        stop(proc)  # most likely a port taken between our probe and nginx's bind: try another pair
    log = (directory / "error.log").read_text() if (directory / "error.log").exists() else ""
    raise RuntimeError(f"nginx did not start after {ATTEMPTS} attempts:\n{log[-2000:]}")


TINYPROXY_CONF = """
Port {port}
Listen 127.0.0.1
Timeout 30
LogFile "{dir}/tinyproxy.log"
LogLevel Connect
PidFile "{dir}/tinyproxy.pid"
MaxClients 20
Allow 127.0.0.1
"""


@dataclass
class Tinyproxy:
    proc: subprocess.Popen[bytes]
    dir: Path
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        path = self.dir / "tinyproxy.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def requests(self) -> list[str]:
        """Method and target of each request tinyproxy logged (``POST http://...``, ``CONNECT host:port``)."""
        lines = [line.split("): ", 1)[1] for line in self.log().splitlines() if "]: Request (" in line]
        return [line.rsplit(" ", 1)[0] for line in lines]  # without the HTTP version

    def stop(self) -> None:
        stop(self.proc)


def start_tinyproxy(directory: Path) -> Tinyproxy:
    exe = binary(TINYPROXY)
    directory.mkdir(parents=True, exist_ok=True)
    for _ in range(ATTEMPTS):
        port = free_port()
        conf = directory / "tinyproxy.conf"
        conf.write_text(TINYPROXY_CONF.format(port=port, dir=directory))
        proc = subprocess.Popen(
            [exe, "-d", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        if wait_listening(proc, port):
            return Tinyproxy(proc, directory, port)
        stop(proc)
    raise RuntimeError(
        f"tinyproxy did not start after {ATTEMPTS} attempts:\n{Tinyproxy(proc, directory, 0).log()}"
    )
