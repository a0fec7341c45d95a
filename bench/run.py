"""``python -m bench``: run every benchmark, print the table, write ``bench/results.md``.

Options: ``--quick`` (a smoke run, < 30 s, does not write results.md unless
``--out`` is given), ``--only 1,3`` (a subset), ``--out PATH``,
``--profile NAME`` (one benchmark's flask-toucan side under cProfile, top
functions printed; NAME is one of :data:`PROFILES`).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from . import (
    api_mode,
    coldpage,
    cross_worker,
    import_time,
    mint,
    refresh,
    refresh_peer,
    render,
    scaling,
    store_scale,
    store_trips,
)
from .common import BENCH_DIR, Row, Settings, machine_summary

BENCHMARKS: dict[str, Callable[[Settings], list[Row]]] = {
    "1": mint.run,
    "2": render.run,
    "3": refresh.run,
    "4": api_mode.run,
    "5": cross_worker.run,
    "6": store_scale.run,
    "7": import_time.run,
    "8": scaling.run,
    "9": refresh_peer.run,
    "10": coldpage.run,
    "11": store_trips.run,
}
TITLES = {
    "1": "signed-mode mint vs bare jwt.encode",
    "2": "page render: macros vs hand-written template",
    "3": "refresh endpoint on gunicorn vs bare signing route",
    "4": "api mode with 50 ms upstream latency",
    "5": "cross-worker single-flight: upstream calls for concurrent cold renders",
    "6": "in-process store at 10k / 100k users",
    "7": "import time vs flask + authlib + jwt",
    "8": "N components (1/5/20): macros vs the same tags by hand",
    "9": "refresh (Redis store) vs flask-jwt-extended on gunicorn",
    "10": "cold page (two tokens) vs one upstream round trip",
    "11": "store round trips per request; Redis vs memory store",
}
PROFILES: dict[str, tuple[str, Callable[[Settings], cProfile.Profile]]] = {
    "mint": ("benchmark 1: 2000 x issue_token, cache miss (signs every call)", mint.profile),
    "render": ("benchmark 2: 3000 kit page renders (tokens cached)", render.profile),
    "refresh": (
        "benchmark 3a: 2000 refresh requests, cached side (in-process WSGI calls, no server)",
        lambda s: refresh.profile(s, "cached"),
    ),
    "refresh-signing": (
        "benchmark 3b: 2000 refresh requests, signing side (in-process WSGI calls, no server)",
        lambda s: refresh.profile(s, "signing"),
    ),
    "grid": ("benchmark 8: 2000 renders of the 20-component page (token cached)", scaling.profile),
    "api": ("benchmark 4a: 3000 kit page renders in api mode (tokens cached)", api_mode.profile),
}


def table(rows: list[Row]) -> str:
    lines = [
        "| # | benchmark | flask-toucan (median) | baseline (median) | ratio | target | result |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        cells = (r.key, r.title, r.toucan, r.baseline, r.ratio_text, r.target, f"**{r.result}**")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def notes(rows: list[Row]) -> str:
    out = []
    for r in rows:
        for n in r.notes:
            out.append(f"- {r.key}: {n}")
    return "\n".join(out)


def failure_row(key: str, exc: BaseException) -> Row:
    return Row(
        key=key,
        title=TITLES[key],
        toucan="error",
        baseline="—",
        ratio=None,
        ratio_text="—",
        target="—",
        passed=False,
        notes=[f"the benchmark failed: {type(exc).__name__}: {exc}"],
    )


def run_all(settings: Settings, only: list[str]) -> tuple[list[Row], float]:
    rows: list[Row] = []
    started = time.monotonic()
    for key in only:
        t0 = time.monotonic()
        print(f"[bench] {key}. {TITLES[key]} ...", file=sys.stderr, flush=True)
        try:
            got = BENCHMARKS[key](settings)
        except Exception as exc:  # keep going: the table says which one broke
            traceback.print_exc()
            got = [failure_row(key, exc)]
        rows.extend(got)
        for r in got:
            print(f"[bench]   {r.key}: {r.ratio_text} (target {r.target}) {r.result}", file=sys.stderr)
        print(f"[bench]   ({time.monotonic() - t0:.1f} s)", file=sys.stderr, flush=True)
    return rows, time.monotonic() - started


def report(rows: list[Row], settings: Settings, elapsed: float, machine: str) -> str:
    missed = [r.key for r in rows if not r.passed]
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    mode = "quick smoke run (not representative)" if settings.quick else "full run"
    summary = (
        "All targets met."
        if not missed
        else f"Targets missed: {', '.join(missed)} (see docs/benchmarks.md for the profiles)."
    )
    return (
        f"Command: `python -m bench{' --quick' if settings.quick else ''}` "
        f"({mode}, {elapsed:.0f} s, {when})\n"
        f"Machine: {machine}\n\n"
        f"{table(rows)}\n\n{summary}\n\nNotes:\n{notes(rows)}\n"
    )


def print_profile(name: str, settings: Settings, top: int) -> None:
    what, fn = PROFILES[name]
    print(f"# profile: {what}\n")
    prof = fn(settings)
    for order in ("cumulative", "tottime"):
        buf = io.StringIO()
        stats = pstats.Stats(prof, stream=buf)
        stats.strip_dirs().sort_stats(order).print_stats(top)
        print(f"## top {top} by {order}\n")
        print("```")
        print(buf.getvalue().strip())
        print("```\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run (< 30 s); does not write results.md")
    parser.add_argument(
        "--only", default=",".join(BENCHMARKS), help="comma-separated benchmark numbers (default: all)"
    )
    parser.add_argument(
        "--out", type=Path, help="where to write the Markdown report (default: bench/results.md)"
    )
    parser.add_argument(
        "--profile", choices=sorted(PROFILES), help="profile one benchmark's flask-toucan side"
    )
    parser.add_argument("--top", type=int, default=30, help="functions to show with --profile")
    args = parser.parse_args(argv)
    settings = Settings.make(args.quick)

    if args.profile:
        print_profile(args.profile, settings, args.top)
        return 0

    only = [k.strip() for k in args.only.split(",") if k.strip()]
    unknown = [k for k in only if k not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    machine = machine_summary()
    rows, elapsed = run_all(settings, only)
    text = report(rows, settings, elapsed, machine)
    print(text)
    out = args.out or (None if settings.quick or only != list(BENCHMARKS) else BENCH_DIR / "results.md")
    if out is not None:
        out.write_text(text)
        print(f"[bench] wrote {out}", file=sys.stderr)
    # Misses are results, not failures: exit 0 unless a benchmark could not run.
    return 1 if any(r.toucan == "error" for r in rows) else 0
