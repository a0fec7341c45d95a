"""The AI assistant stand-in: fixed kinds of question, answered with SQL.

No model: a question is matched to one of a few kinds by keywords, and the
answer is computed over the rows the token may see (the same RLS fragment as
the dashboards), so tests can check every figure against a direct query.
"""

from __future__ import annotations

import re
import sqlite3
from typing import Any

SUGGESTIONS = (
    "What are my total sales?",
    "What are the top 3 products?",
    "Show sales by region",
    "Show sales by month",
)
MAX_QUESTION = 500


def classify(question: str) -> tuple[str, int]:
    """``(kind, n)``: kind is ``top_products``, ``by_region``, ``by_month``, ``total`` or ``unknown``."""
    q = question.lower()
    if "top" in q or "best" in q:
        m = re.search(r"\b(\d{1,2})\b", q)
        return "top_products", max(1, min(int(m.group(1)), 20)) if m else 3
    if "region" in q:
        return "by_region", 0
    if "month" in q:
        return "by_month", 0
    if any(word in q for word in ("total", "revenue", "sales", "how much", "sum")):
        return "total", 0
    return "unknown", 0


def _fmt(value: int) -> str:
    return f"{value:,}"


def answer(
    conn: sqlite3.Connection, question: str, where: str, params: list[Any], tenant: str
) -> dict[str, Any]:
    """A JSON-ready answer: ``kind``, a sentence, and the figures behind it."""
    kind, n = classify(question)
    if kind == "total":
        row = conn.execute(
            f"SELECT COALESCE(SUM(amount), 0), COALESCE(SUM(units), 0), COUNT(*) FROM sales WHERE {where}",  # noqa: S608
            params,
        ).fetchone()
        amount, units, orders = int(row[0]), int(row[1]), int(row[2])
        return {
            "kind": kind,
            "answer": (
                f"Total sales for {tenant}: {_fmt(amount)} over {_fmt(orders)} orders ({_fmt(units)} units)."
            ),
            "data": {"amount": amount, "units": units, "orders": orders},
        }
    if kind in ("top_products", "by_region", "by_month"):
        column = {"top_products": "product", "by_region": "region", "by_month": "month"}[kind]
        order = "amount DESC, key" if kind == "top_products" else "key"
        limit = n if kind == "top_products" else 100
        rows = conn.execute(
            f'SELECT "{column}" AS key, SUM(amount) AS amount FROM sales WHERE {where} '  # noqa: S608
            f"GROUP BY key ORDER BY {order} LIMIT ?",
            [*params, limit],
        ).fetchall()
        pairs = [(str(r["key"]), int(r["amount"])) for r in rows]
        items = [{"key": key, "amount": amount} for key, amount in pairs]
        listing = ", ".join(f"{key} {_fmt(amount)}" for key, amount in pairs) or "no sales in scope"
        label = {
            "top_products": f"Top {n} products",
            "by_region": "Sales by region",
            "by_month": "Sales by month",
        }
        return {"kind": kind, "answer": f"{label[kind]} for {tenant}: {listing}.", "data": {"items": items}}
    return {
        "kind": "unknown",
        "answer": "I can answer questions about total sales, top products, sales by region and by month.",
        "data": {"suggestions": list(SUGGESTIONS)},
    }
