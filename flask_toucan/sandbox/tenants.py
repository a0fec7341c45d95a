"""Your own tenants and rows for the sandbox: the ``tenants`` and ``sales`` options.

By default the sandbox serves its sample data set (acme, globex, initech). A
test of your app usually wants its own organisation ids, so that the
attributes your mappers produce select rows:

    SandboxServer(tenants={"t-1": "Umbrella", "t-2": "Hooli"})      # sample rows for these
    SandboxServer(tenants={"t-1": "Umbrella"}, sales=[                  # exactly these rows
        {"organization_id": "t-1", "region": "emea", "product": "anvils",
         "month": "2024-01", "amount": 120, "units": 3},
    ])

Validated here, at start-up, into plain tuples the data module writes to
SQLite (the ``organizations`` and ``sales`` tables, see docs/sandbox.md).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from ..exceptions import ConfigurationError

Tenant = tuple[str, str]
#: ``(organization_id, region, product, month, amount, units)``; ids are numbered on write.
SalesRow = tuple[str, str, str, str, int, int]

_ID = re.compile(r"^[A-Za-z0-9_.:\-]{1,64}$")
_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
MAX_TENANTS = 1000
MAX_ROWS = 100_000
SALES_FIELDS = ("organization_id", "region", "product", "month", "amount", "units")


def parse_tenants(value: Any) -> tuple[Tenant, ...]:
    """``{"id": "Name"}``, ``[("id", "Name")]``, ``[{"id", "name"}]`` or ``["id"]`` -> pairs."""
    if isinstance(value, Mapping):
        items: list[Any] = list(value.items())
    elif isinstance(value, Sequence) and not isinstance(value, str):
        items = list(value)
    else:
        raise ConfigurationError("tenants must be a mapping of id -> name, or a list of tenants")
    if not 1 <= len(items) <= MAX_TENANTS:
        raise ConfigurationError(f"tenants must hold 1 to {MAX_TENANTS} organisations")
    out: dict[str, str] = {}
    for item in items:
        tenant_id: Any
        name: Any
        if isinstance(item, str):
            tenant_id, name = item, item
        elif isinstance(item, Mapping):
            tenant_id, name = item.get("id"), item.get("name", item.get("id"))
        elif isinstance(item, Sequence) and len(item) == 2:
            tenant_id, name = item
        else:
            raise ConfigurationError(f"tenant {item!r} is not an id, an (id, name) pair or an {{id, name}}")
        if not isinstance(tenant_id, str) or not _ID.match(tenant_id):
            raise ConfigurationError(f"tenant id {tenant_id!r}: 1-64 letters, digits, '.', '_', ':' or '-'")
        if not isinstance(name, str) or not 0 < len(name) <= 200:
            raise ConfigurationError(f"tenant {tenant_id!r}: the name must be 1-200 characters")
        if tenant_id in out:
            raise ConfigurationError(f"tenant {tenant_id!r} is listed twice")
        out[tenant_id] = name
    return tuple(out.items())


def parse_sales(value: Any, tenant_ids: Sequence[str]) -> tuple[SalesRow, ...]:
    """A list of row mappings (``SALES_FIELDS``) -> row tuples; each row's tenant must exist."""
    if not isinstance(value, Sequence) or isinstance(value, str) or len(value) > MAX_ROWS:
        raise ConfigurationError(f"sales must be a list of at most {MAX_ROWS} rows")
    known = set(tenant_ids)
    return tuple(_row(row, index, known) for index, row in enumerate(value))


def _row(row: Any, index: int, known: set[str]) -> SalesRow:
    where = f"sales[{index}]"
    if not isinstance(row, Mapping):
        raise ConfigurationError(f"{where} must be a mapping of {', '.join(SALES_FIELDS)}")
    missing = [f for f in SALES_FIELDS if f not in row]
    extra = sorted(set(row) - set(SALES_FIELDS))
    if missing or extra:
        raise ConfigurationError(f"{where}: missing {missing or 'nothing'}, unknown {extra or 'nothing'}")
    org, region, product, month = (row[f] for f in SALES_FIELDS[:4])
    if org not in known:
        raise ConfigurationError(f"{where}: organization_id {org!r} is not one of the tenants")
    for name, text in (("region", region), ("product", product)):
        if not isinstance(text, str) or not 0 < len(text) <= 64:
            raise ConfigurationError(f"{where}: {name} must be 1-64 characters")
    if not isinstance(month, str) or not _MONTH.match(month):
        raise ConfigurationError(f"{where}: month must be YYYY-MM")
    amount, units = row["amount"], row["units"]
    for name, number in (("amount", amount), ("units", units)):
        if isinstance(number, bool) or not isinstance(number, int) or number < 0:
            raise ConfigurationError(f"{where}: {name} must be a whole number >= 0")
    return (org, region, product, month, amount, units)


def data_set_digest(tenants: Sequence[Tenant], sales: Sequence[SalesRow] | None) -> str:
    """A short name for a data set, so each one gets its own cached SQLite file."""
    blob = json.dumps([list(tenants), [list(r) for r in sales] if sales is not None else None])
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
