"""Import cost: ``import flask_toucan`` (7a) and ``from flask_toucan import Toucan`` (7b)
vs ``import flask, authlib.integrations.flask_client, jwt``.

``python -m bench.import_time``. Each sample is a fresh interpreter that
times only the import statement (``perf_counter`` around it, so the
interpreter's own start-up is left out); the two sides alternate, order
rotating each round, and the figure is the median of the per-round ratios.
The baseline is what a Flask app that logs in with Authlib and signs JWTs
imports anyway. ``import flask_toucan`` loads the exceptions, ``EmbedToken``
and ``ToucanUser`` (what the pytest plugin and error handling need); the
facade ``Toucan`` and everything it wires load with it (7b), which is what an
app pays at start-up.
"""

from __future__ import annotations

import subprocess
import sys

from .common import REPO_ROOT, Row, Settings, median, paired_ratio

SIDES = {
    "flask_toucan": "import flask_toucan",
    "facade": "from flask_toucan import Toucan",
    "baseline": "import flask, authlib.integrations.flask_client, jwt",
}
TARGET = 1.05


def sample(statement: str) -> float:
    code = f"import time\nt = time.perf_counter()\n{statement}\nprint(time.perf_counter() - t)"
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=60, cwd=REPO_ROOT
    )
    return float(out.stdout.strip())


def measure(rounds: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in SIDES}
    names = list(SIDES)
    for warm in names:  # fill the OS file cache first
        sample(SIDES[warm])
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            times[name].append(sample(SIDES[name]))
    return times


def run(settings: Settings) -> list[Row]:
    rounds = 7 if settings.quick else 41
    times = measure(rounds)
    rows = []
    for key, side, what in (
        ("7a", "flask_toucan", "`import flask_toucan`"),
        ("7b", "facade", "`from flask_toucan import Toucan` (the facade and all it wires)"),
    ):
        ratio = paired_ratio(times[side], times["baseline"])
        rows.append(
            Row(
                key=key,
                title=f"import time: {what} vs flask + authlib flask_client + jwt",
                toucan=f"{median(times[side]) * 1000:.1f} ms",
                baseline=f"{median(times['baseline']) * 1000:.1f} ms",
                ratio=ratio,
                ratio_text=f"{ratio:.2f}x",
                target=f"<= {TARGET}x",
                passed=ratio <= TARGET,
                notes=[f"{rounds} interleaved fresh-interpreter rounds; median of per-round ratios"],
            )
        )
    return rows


if __name__ == "__main__":
    for row in run(Settings.make(quick=False)):
        print(f"{row.title}: {row.toucan} vs {row.baseline} = {row.ratio_text} (target {row.target})")
