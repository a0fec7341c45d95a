"""Import cost: ``import flask_toucan`` (7a), ``from flask_toucan import Toucan`` (7b) and
``Toucan(app)`` on a minimal app (7c) vs ``import flask, authlib.integrations.flask_client, jwt``.

``python -m bench.import_time``. Each sample is a fresh interpreter that
times only the statements (``perf_counter`` around them, so the
interpreter's own start-up is left out); the sides alternate, order
rotating each round, and each figure is the median of the per-round ratios.
The baseline is what a Flask app that logs in with Authlib and signs JWTs
imports anyway.

Bytecode: the package is measured from a copy whose bytecode was compiled
first (``compileall``), as pip does when it installs the wheel; Flask,
Authlib and PyJWT in site-packages have theirs from their install. A checkout
installed in editable mode under ``PYTHONDONTWRITEBYTECODE=1`` (this machine's
environment) has no ``__pycache__``, so every start compiled our ~35 modules
from source while the baseline read bytecode: about 25 ms of the 7b gap of
earlier runs was that compilation. That older comparison is still measured,
on a second copy with no bytecode, and printed as a note of 7b.
"""

from __future__ import annotations

import compileall
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from .common import REPO_ROOT, Row, Settings, median, paired_ratio

BASELINE = "import flask, authlib.integrations.flask_client, jwt"
#: 7c: what a minimal app pays at start-up (api mode with every other default: memory
#: store, so cachelib loads; rate limit on; no OAuth registry).
INIT_APP = """from flask import Flask
from flask_toucan import Toucan
app = Flask("bench")
app.config.update(SECRET_KEY="k" * 32, TOUCAN_BASE_URL="https://toucan.bench.example", TOUCAN_API_KEY="key")
Toucan(app)"""
#: name -> (statements timed, which copy of the package)
SIDES = {
    "flask_toucan": ("import flask_toucan", "compiled"),
    "facade": ("from flask_toucan import Toucan", "compiled"),
    "init_app": (INIT_APP, "compiled"),
    "facade_source": ("from flask_toucan import Toucan", "source"),
    "baseline": (BASELINE, "compiled"),
}
TARGET = 1.05


def copies(root: Path) -> dict[str, Path]:
    """Two copies of the package: one with its bytecode compiled, one with none."""
    made = {}
    for name in ("compiled", "source"):
        made[name] = root / name
        shutil.copytree(
            REPO_ROOT / "flask_toucan",
            made[name] / "flask_toucan",
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
        )
    assert compileall.compile_dir(made["compiled"] / "flask_toucan", quiet=1, workers=1)
    return made


def sample(statement: str, cwd: Path) -> float:
    """Seconds the statement takes in a fresh interpreter that finds the package in ``cwd``."""
    code = f"import time\nt = time.perf_counter()\n{statement}\nprint(time.perf_counter() - t)"
    # No bytecode written: the "source" copy must stay without it.
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=60, cwd=cwd, env=env
    )
    return float(out.stdout.strip().splitlines()[-1])


def measure(rounds: int, where: dict[str, Path]) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in SIDES}
    names = list(SIDES)
    for warm in names:  # fill the OS file cache first
        sample(SIDES[warm][0], where[SIDES[warm][1]])
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            statement, copy = SIDES[name]
            times[name].append(sample(statement, where[copy]))
    return times


def run(settings: Settings) -> list[Row]:
    rounds = 7 if settings.quick else 41
    with tempfile.TemporaryDirectory(prefix="toucan-import-") as tmp:
        times = measure(rounds, copies(Path(tmp)))
    base = f"{median(times['baseline']) * 1000:.1f} ms"
    method = f"{rounds} interleaved fresh-interpreter rounds; median of per-round ratios; bytecode compiled"
    rows = []
    for key, side, what in (
        ("7a", "flask_toucan", "`import flask_toucan`"),
        ("7b", "facade", "`from flask_toucan import Toucan` (the facade and what `init_app` needs)"),
    ):
        ratio = paired_ratio(times[side], times["baseline"])
        rows.append(
            Row(
                key=key,
                title=f"import time: {what} vs flask + authlib flask_client + jwt",
                toucan=f"{median(times[side]) * 1000:.1f} ms",
                baseline=base,
                ratio=ratio,
                ratio_text=f"{ratio:.2f}x",
                target=f"<= {TARGET}x",
                passed=ratio <= TARGET,
                notes=[method],
            )
        )
    source = paired_ratio(times["facade_source"], times["baseline"])
    rows[-1].notes.append(
        f"measured as earlier runs did (our package compiled from source at every start, as in an "
        f"editable checkout under PYTHONDONTWRITEBYTECODE=1, the baseline from bytecode): "
        f"{median(times['facade_source']) * 1000:.1f} ms, {source:.2f}x"
    )
    init = paired_ratio(times["init_app"], times["baseline"])
    rows.append(
        Row(
            key="7c",
            title="start-up: `Toucan(app)` on a minimal app (imports + `init_app`; api mode, memory "
            "store, rate limit on) vs flask + authlib flask_client + jwt",
            toucan=f"{median(times['init_app']) * 1000:.1f} ms",
            baseline=base,
            ratio=init,
            ratio_text=f"{init:.2f}x",
            target="— (no target)",
            passed=True,
            notes=[method + "; includes Flask(...), the memory store (cachelib) and the default rate limit"],
        )
    )
    return rows


if __name__ == "__main__":
    for row in run(Settings.make(quick=False)):
        print(f"{row.title}: {row.toucan} vs {row.baseline} = {row.ratio_text} (target {row.target})")
        for note in row.notes:
            print(f"  - {note}")
