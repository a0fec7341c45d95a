"""Run the commands the docs give, as a reader would type them, and read what they print."""

from __future__ import annotations

import ast
import os
import queue
import re
import shlex
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "docs" / "examples"
BIN = Path(sys.executable).parent
COMMAND_START = ("python -m ", "flask ", "TOUCAN_API_KEY=")


def documented_commands(name: str) -> list[str]:
    """The shell commands in ``docs/examples/<name>.py``'s docstring, comments stripped."""
    doc = ast.get_docstring(ast.parse((EXAMPLES / f"{name}.py").read_text())) or ""
    commands = []
    for line in doc.splitlines():
        # Inline in the prose (``python -m ...``) or on a line of its own.
        commands += [c for c in re.findall(r"``([^`]+)``", line) if c.startswith(COMMAND_START)]
        line = line.split("  #")[0].strip()
        if line.startswith(COMMAND_START):
            commands.append(line)
    return commands


def argv_and_env(command: str, values: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """``VAR=<placeholder> ... prog args`` -> (argv, env); ``<x>`` placeholders from ``values``."""
    words = shlex.split(command)
    env: dict[str, str] = {}
    while words and re.match(r"^[A-Z_]+=", words[0]):
        key, _, value = words.pop(0).partition("=")
        env[key] = values[key] if value.startswith("<") else value
    program = words[0]
    if program == "python":
        words[0] = sys.executable
    else:
        words[0] = str(BIN / program) if (BIN / program).exists() else shutil.which(program) or program
    return words, env


def free_port() -> int:
    from flask_toucan.serving import listen

    sock = listen("127.0.0.1", 0)
    try:
        return int(sock.getsockname()[1])
    finally:
        sock.close()


class Running:
    """A started command; its output lines are collected by a thread."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: Path) -> None:
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **env}
        self.proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=full_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def wait_for(self, pattern: str, timeout: float = 60) -> re.Match[str]:
        """The first printed line matching ``pattern`` (fails with the output so far)."""
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no line matching {pattern!r}; output:\n{''.join(self.seen)}")
            try:
                line = self.lines.get(timeout=min(left, 1))
            except queue.Empty:
                if self.proc.poll() is not None and self.lines.empty():
                    raise AssertionError(
                        f"exited {self.proc.returncode} before {pattern!r}:\n{''.join(self.seen)}"
                    ) from None
                continue
            self.seen.append(line)
            found = regex.search(line)
            if found:
                return found

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


@contextmanager
def running(command: str, values: dict[str, str], cwd: Path, *extra: str, **env: str) -> Iterator[Running]:
    """Start a documented ``command`` (plus ``extra`` arguments, ``env``), stop it afterwards."""
    argv, cmd_env = argv_and_env(command, values)
    proc = Running([*argv, *extra], {**cmd_env, **env}, cwd)
    try:
        yield proc
    finally:
        proc.stop()


def run(command: str, values: dict[str, str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    argv, cmd_env = argv_and_env(command, values)
    return subprocess.run(
        argv, cwd=cwd, env={**os.environ, **cmd_env, **env}, capture_output=True, text=True, timeout=120
    )


def wait_http(url: str, proc: Running, timeout: float = 60) -> requests.Response:
    """GET ``url`` until the server answers (the process must stay up meanwhile)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return requests.get(url, timeout=5)
        except requests.ConnectionError:
            if proc.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{url} never answered; output:\n{''.join(proc.seen)}") from None
            try:  # collect output while waiting; a line is as good a tick as any
                proc.seen.append(proc.lines.get(timeout=0.2))
            except queue.Empty:
                pass


def copy_examples(tmp: Path) -> Path:
    """A scratch directory laid out like the repository root (``docs/examples/...``)."""
    shutil.copytree(EXAMPLES, tmp / "docs" / "examples", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp


def form_fields(html: str) -> dict[str, str]:
    """The hidden inputs of an HTML form (CSRF tokens and the like)."""
    fields = {}
    for tag in re.findall(r"<input[^>]*>", html):
        name = re.search(r'name="([^"]+)"', tag)
        value = re.search(r'value="([^"]*)"', tag)
        if name and 'type="hidden"' in tag:
            fields[name.group(1)] = value.group(1) if value else ""
    return fields
