"""Import cost: ``import flask_toucan`` vs ``import flask, authlib.integrations.flask_client, jwt``.

``python -m bench.import_time``. Each sample is a fresh interpreter that
times only the import statement (``perf_counter`` around it, so the
interpreter's own start-up is left out); the two sides alternate, order
rotating each round, and the figure is the median of the per-round ratios.
The baseline is what a Flask app that logs in with Authlib and signs JWTs
imports anyway.
"""

from __future__ import annotations

import subprocess
import sys

from .common import REPO_ROOT, Row, Settings, median, paired_ratio

SIDES = {
    "flask_toucan": "import flask_toucan",
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
        order = names if r % 2 == 0 else names[::-1]
        for name in order:
            times[name].append(sample(SIDES[name]))
    return times


def run(settings: Settings) -> list[Row]:
    rounds = 7 if settings.quick else 41
    times = measure(rounds)
    ratio = paired_ratio(times["flask_toucan"], times["baseline"])
    return [
        Row(
            key="7",
            title="import time: `import flask_toucan` vs flask + authlib flask_client + jwt",
            toucan=f"{median(times['flask_toucan']) * 1000:.1f} ms",
            baseline=f"{median(times['baseline']) * 1000:.1f} ms",
            ratio=ratio,
            ratio_text=f"{ratio:.2f}x",
            target=f"<= {TARGET}x",
            passed=ratio <= TARGET,
            notes=[f"{rounds} interleaved fresh-interpreter rounds; median of per-round ratios"],
        )
    ]


if __name__ == "__main__":
    for row in run(Settings.make(quick=False)):
        print(f"{row.title}: {row.toucan} vs {row.baseline} = {row.ratio_text} (target {row.target})")
