"""``flask toucan keygen`` as documented, on a fresh checkout (no key yet), in a subprocess."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "docs" / "examples" / "signed_mode.py"

pytestmark = [pytest.mark.integration]


def documented_command() -> list[str]:
    """The keygen command line written in the example's docstring."""
    match = re.search(r"^\s*(flask --app \S+ toucan keygen .+)$", EXAMPLE.read_text(), re.M)
    assert match, "the example no longer documents its keygen command"
    return shlex.split(match.group(1))


def run_flask(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    assert args[0] == "flask"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TOUCAN_", "FLASK_"))}
    return subprocess.run(
        [sys.executable, "-m", "flask", *args[1:]],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_documented_keygen_works_before_any_key_exists(tmp_path):
    checkout = tmp_path / "checkout"
    (checkout / "docs" / "examples").mkdir(parents=True)
    shutil.copy(EXAMPLE, checkout / "docs" / "examples" / EXAMPLE.name)
    command = documented_command()
    out_file = checkout / command[command.index("--out") + 1]
    assert not out_file.exists()

    # Without the key the app itself refuses to start (fail fast)...
    refused = run_flask(["flask", "--app", "docs/examples/signed_mode", "toucan", "check"], checkout)
    assert refused.returncode != 0
    # ...but the documented keygen runs, and writes the key the app then starts with.
    made = run_flask(command, checkout)
    assert made.returncode == 0, made.stderr
    assert "kid=" in made.stdout and "PRIVATE KEY" not in made.stdout + made.stderr
    assert stat.S_IMODE(out_file.stat().st_mode) == 0o600
    checked = run_flask(["flask", "--app", "docs/examples/signed_mode", "toucan", "check"], checkout)
    assert checked.returncode == 0, checked.stderr
    assert "mode: signed" in checked.stdout and checked.stdout.rstrip().endswith("ok")
