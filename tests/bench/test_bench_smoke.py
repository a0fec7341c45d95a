"""Smoke test of the benchmark suite: ``python -m bench --quick`` runs and prints the table."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.integration
def test_quick_bench_prints_every_row(tmp_path: Path) -> None:
    out_file = tmp_path / "results.md"
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(out_file)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    header = "| # | benchmark | flask-toucan (median) | baseline (median) | ratio | target | result |"
    assert header in proc.stdout
    rows = re.findall(r"^\| (\d+[a-z]?) \|.*\| \*\*(PASS|MISS)\*\* \|$", proc.stdout, re.MULTILINE)
    keys = {key for key, _ in rows}
    # Every benchmark, with its sub-rows (1: minter / issue_token; 3: cached / signing;
    # 4: render / single flight; 5: cross-worker bursts; 6: store sizes; 7: import time and start-up;
    # 8: 1/5/20 components; 9: cached / signing vs flask-jwt-extended; 10: api / classic cold
    # page; 11: Redis vs memory per render / round trips / per whole request).
    expected = {"1a", "1b", "2", "3a", "3b", "4a", "4b", "5a", "5b", "6a", "6b", "7a", "7b", "7c"}
    expected |= {"8a", "8b", "8c", "9a", "9b", "10a", "10b", "11a", "11b", "11c"}
    assert keys == expected, proc.stdout
    assert "error" not in {cell.strip() for line in proc.stdout.splitlines() for cell in line.split("|")}
    # The single-flight count is deterministic, unlike the timings: exactly one upstream call.
    assert re.search(r"^\| 4b \| .* \| 1 call \| .*\*\*PASS\*\*", proc.stdout, re.MULTILINE), proc.stdout
    # Across gunicorn workers too (the store's lock): 1 call for one user, 10 for ten.
    assert re.search(r"^\| 5a \| .* \| 1 upstream calls \| .*\*\*PASS\*\*", proc.stdout, re.M), proc.stdout
    assert re.search(r"^\| 5b \| .* \| 10 upstream calls \| .*\*\*PASS\*\*", proc.stdout, re.M), proc.stdout
    # So are the store's round trips: one per cached page, per cached refresh, and per cached
    # refresh with the rate limit on (counted at the socket, near cache off); none for a page
    # the near cache holds.
    trips = r"^\| 11b \| .* \| 1 / 1 / 1 \(page with the near cache: 0\) \| 1 / 1 / 1 \(0\) \| \*\*PASS\*\*"
    assert re.search(trips, proc.stdout, re.MULTILINE), proc.stdout
    assert out_file.read_text().count("\n| ") >= 8
    # --out took the report; a quick run never writes the committed bench/results.md.
    committed = REPO / "bench" / "results.md"
    if committed.exists():
        assert "--quick" not in committed.read_text()
