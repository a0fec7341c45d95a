"""Dashboards and charts of the sample data set, and the queries behind them.

A *view* groups the rows a token may see by a fixed set of columns and sums
``amount`` and ``units``. Dashboards and charts are views with a title; every
column name here is a constant of this module, never taken from a request.
The RLS ``WHERE`` fragment and its parameters come from :mod:`.rls`.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

from .data import REGION_LABELS


@dataclass(frozen=True)
class View:
    """One table + bar chart: rows grouped by ``group_by``; the chart sums by ``chart_by``."""

    id: str
    title: str
    group_by: tuple[str, ...]
    chart_by: str
    kind: str  # "dashboard" or "chart"
    # Charted by this column instead when ``chart_by`` has a single value in scope
    # (one region: a bar per month says more than one bar).
    chart_fallback: str | None = None


DASHBOARDS: dict[str, View] = {
    "sales-overview": View("sales-overview", "Sales overview", ("month", "product"), "month", "dashboard"),
    "regional-performance": View(
        "regional-performance", "Regional performance", ("region",), "region", "dashboard", "month"
    ),
}
CHARTS: dict[str, View] = {
    "revenue-by-month": View("revenue-by-month", "Revenue by month", ("month",), "month", "chart"),
    "revenue-by-product": View("revenue-by-product", "Revenue by product", ("product",), "product", "chart"),
    "revenue-by-region": View("revenue-by-region", "Revenue by region", ("region",), "region", "chart"),
}


def run_view(conn: sqlite3.Connection, view: View, where: str, params: list[Any]) -> dict[str, Any]:
    """The table rows and chart points of ``view`` over the rows ``where`` admits."""
    cols = ", ".join(f'"{c}"' for c in view.group_by)
    rows = conn.execute(
        f"SELECT {cols}, SUM(amount) AS amount, SUM(units) AS units, COUNT(*) AS orders "  # noqa: S608
        f"FROM sales WHERE {where} GROUP BY {cols} ORDER BY {cols}",
        params,
    ).fetchall()
    table = [{"id": "|".join(str(r[c]) for c in view.group_by), **{k: r[k] for k in r.keys()}} for r in rows]
    chart_by = view.chart_by
    points: dict[str, int] = {}
    for r in rows:
        points[str(r[chart_by])] = points.get(str(r[chart_by]), 0) + int(r["amount"])
    if len(points) == 1 and view.chart_fallback:
        chart_by = view.chart_fallback
        points = {
            str(label): int(amount)
            for label, amount in conn.execute(
                f'SELECT "{chart_by}", SUM(amount) FROM sales WHERE {where} '  # noqa: S608
                f'GROUP BY "{chart_by}" ORDER BY "{chart_by}"',
                params,
            )
        }
    source_rows = sum(int(r["orders"]) for r in rows)
    return {
        "columns": [*view.group_by, "amount", "units", "orders"],
        "rows": table,
        "chart": {
            "type": "bar",
            "label": chart_by,
            "value": "amount",
            "points": [{"label": k, "value": v} for k, v in points.items()],
        },
        # Display names of coded values, per column (the codes stay in rows and points).
        "labels": {"region": dict(REGION_LABELS)},
        "source_row_count": source_rows,
    }


def scoped_rows(
    conn: sqlite3.Connection, where: str, params: list[Any], limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """Raw ``sales`` rows in scope (the ``database`` resource), with their total count."""
    total = int(conn.execute(f"SELECT COUNT(*) FROM sales WHERE {where}", params).fetchone()[0])  # noqa: S608
    rows = conn.execute(
        "SELECT id, organization_id, region, product, month, amount, units "  # noqa: S608
        f"FROM sales WHERE {where} ORDER BY id LIMIT ? OFFSET ?",
        [*params, limit, offset],
    ).fetchall()
    return [dict(r) for r in rows], total
