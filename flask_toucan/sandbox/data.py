"""The sample data set: a few thousand sales rows of three organisations.

Generated from a fixed seed, so every run (and every test's direct SQL query)
sees the same rows. Stored in SQLite; the data API opens one read-only
connection per request, which is all a threaded werkzeug server needs.
"""

from __future__ import annotations

import os
import random
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

SEED = 20240501
ROW_COUNT = 3000

ORGANIZATIONS = (
    ("acme", "Acme Corporation"),
    ("globex", "Globex Inc."),
    ("initech", "Initech Ltd"),
)
REGIONS = ("emea", "amer", "apac")
#: How the dashboards show the region codes (as a Toucan dashboard shows a column's labels).
REGION_LABELS = {"emea": "EMEA", "amer": "Americas", "apac": "Asia-Pacific"}
PRODUCTS = ("anvils", "rockets", "magnets", "springs", "gadgets", "widgets")
MONTHS = tuple(f"2024-{m:02d}" for m in range(1, 13))

SCHEMA = """
CREATE TABLE organizations (id TEXT PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE sales (
    id INTEGER PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations(id),
    region TEXT NOT NULL,
    product TEXT NOT NULL,
    month TEXT NOT NULL,
    amount INTEGER NOT NULL,
    units INTEGER NOT NULL
);
CREATE INDEX sales_org_region ON sales (organization_id, region);
"""


def sample_rows(
    seed: int = SEED, count: int = ROW_COUNT, organizations: Sequence[tuple[str, str]] = ORGANIZATIONS
) -> list[tuple[int, str, str, str, str, int, int]]:
    """The deterministic ``sales`` rows (amounts are whole currency units: exact sums)."""
    rng = random.Random(seed)  # noqa: S311 - sample data, not a secret
    rows = []
    for i in range(1, count + 1):
        org = rng.choice(organizations)[0]
        units = rng.randint(1, 40)
        rows.append(
            (
                i,
                org,
                rng.choice(REGIONS),
                rng.choice(PRODUCTS),
                rng.choice(MONTHS),
                units * rng.randint(15, 120),
                units,
            )
        )
    return rows


def create_database(
    path: str,
    seed: int = SEED,
    count: int = ROW_COUNT,
    organizations: Sequence[tuple[str, str]] = ORGANIZATIONS,
    rows: Sequence[tuple[str, str, str, str, int, int]] | None = None,
) -> None:
    """Write a data set to ``path`` (replacing a partial file).

    ``organizations``: ``(id, name)`` pairs; ``rows``: the ``sales`` rows without
    their id (numbered from 1), or ``None`` for ``count`` sample rows over those
    organisations.
    """
    if rows is None:
        sales = sample_rows(seed, count, organizations)
    else:
        sales = [(i, *row) for i, row in enumerate(rows, start=1)]
    tmp = f"{path}.tmp-{os.getpid()}"
    if os.path.exists(tmp):
        os.unlink(tmp)
    conn = sqlite3.connect(tmp)
    try:
        conn.executescript(SCHEMA)
        conn.executemany("INSERT INTO organizations VALUES (?, ?)", organizations)
        conn.executemany("INSERT INTO sales VALUES (?, ?, ?, ?, ?, ?, ?)", sales)
        conn.commit()
    finally:
        conn.close()
    os.replace(tmp, path)


def ensure_database(
    path: str,
    organizations: Sequence[tuple[str, str]] = ORGANIZATIONS,
    rows: Sequence[tuple[str, str, str, str, int, int]] | None = None,
) -> None:
    """Create the data set (see :func:`create_database`) unless ``path`` already holds a ``sales`` table."""
    if os.path.exists(path):
        conn = sqlite3.connect(_read_only_uri(path), uri=True)
        try:
            found = conn.execute(
                "SELECT name FROM sqlite_master WHERE type='table' AND name='sales'"
            ).fetchone()
        finally:
            conn.close()
        if found:
            return
    create_database(path, organizations=organizations, rows=rows)


def _read_only_uri(path: str) -> str:
    return Path(path).absolute().as_uri() + "?mode=ro"


@contextmanager
def connect(path: str) -> Iterator[sqlite3.Connection]:
    """A read-only connection: the data API can never write, whatever it is asked."""
    conn = sqlite3.connect(_read_only_uri(path), uri=True, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    try:
        yield conn
    finally:
        conn.close()


def organization_name(conn: sqlite3.Connection, org_id: str) -> str:
    row = conn.execute("SELECT name FROM organizations WHERE id = ?", (org_id,)).fetchone()
    return str(row["name"]) if row else org_id
