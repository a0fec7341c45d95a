"""Your own tenants: the ``tenants`` / ``sales`` options (docs/sandbox.md, "Your own tenants")."""

from __future__ import annotations

import pytest
import requests

from flask_toucan import ConfigurationError
from flask_toucan.sandbox import SandboxServer

from .helpers import sql

ROWS = [
    {
        "organization_id": "t-1",
        "region": "emea",
        "product": "anvils",
        "month": "2024-01",
        "amount": 120,
        "units": 3,
    },
    {
        "organization_id": "t-1",
        "region": "apac",
        "product": "rockets",
        "month": "2024-02",
        "amount": 80,
        "units": 2,
    },
    {
        "organization_id": "t-2",
        "region": "emea",
        "product": "anvils",
        "month": "2024-01",
        "amount": 999,
        "units": 9,
    },
]


def rows(sandbox: SandboxServer, attributes: dict) -> dict:
    token = sandbox.issue_token(attributes, {"database": {"can_view": True}})
    resp = requests.get(
        f"{sandbox.url}/api/v1/datasets/sales/rows", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert resp.status_code == 200, resp.text
    return resp.json()


@pytest.mark.integration
def test_fixture_argument_tenants_get_sample_rows_of_their_own(toucan_sandbox_factory):
    sandbox = toucan_sandbox_factory(tenants={"umbrella": "Umbrella Corp", "hooli": "Hooli"})
    assert sql(sandbox.data_file, "SELECT id, name FROM organizations ORDER BY id") == [
        ("hooli", "Hooli"),
        ("umbrella", "Umbrella Corp"),
    ]
    got = rows(sandbox, {"organization_id": "umbrella"})
    assert got["tenant"] == {"id": "umbrella", "name": "Umbrella Corp"}
    expected = sql(sandbox.data_file, "SELECT COUNT(*) FROM sales WHERE organization_id = 'umbrella'")[0][0]
    assert got["row_count"] == expected > 0
    # The sample organisations are not there: a token for one of them sees nothing.
    assert rows(sandbox, {"organization_id": "acme"})["row_count"] == 0


@pytest.mark.integration
def test_exact_rows_are_served_under_rls(toucan_sandbox_factory):
    sandbox = toucan_sandbox_factory(tenants=[("t-1", "Tenant One"), ("t-2", "Tenant Two")], sales=ROWS)
    one = rows(sandbox, {"organization_id": "t-1"})
    assert one["row_count"] == 2 and sum(r["amount"] for r in one["rows"]) == 200
    emea = rows(sandbox, {"organization_id": "t-1", "region": "emea"})
    assert [r["amount"] for r in emea["rows"]] == [120]
    assert rows(sandbox, {"organization_id": "t-2"})["rows"][0]["amount"] == 999


def test_another_data_set_gets_another_file():
    default = SandboxServer()
    custom = SandboxServer(tenants=["solo"])
    assert default.data_file != custom.data_file
    assert sql(custom.data_file, "SELECT id, name FROM organizations") == [("solo", "solo")]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"tenants": "acme"}, "tenants must be"),
        ({"tenants": {}}, "1 to 1000"),
        ({"tenants": {"bad id!": "x"}}, "tenant id"),
        ({"tenants": [("a", "")]}, "name must be"),
        ({"tenants": ["a", "a"]}, "listed twice"),
        ({"tenants": ["a"], "sales": [{**ROWS[0], "organization_id": "zzz"}]}, "not one of the tenants"),
        ({"tenants": ["t-1"], "sales": [{**ROWS[0], "month": "2024-13"}]}, "YYYY-MM"),
        ({"tenants": ["t-1"], "sales": [{**ROWS[0], "amount": -1}]}, "amount"),
        ({"tenants": ["t-1"], "sales": [{**ROWS[0], "extra": 1}]}, "unknown"),
        ({"sales": [{**ROWS[0], "organization_id": "acme"}], "tenants": None}, None),
    ],
)
def test_bad_tenants_or_rows_are_refused_at_start_up(options, message):
    if message is None:  # rows for the sample organisations need no tenants option
        SandboxServer(**options)
        return
    with pytest.raises(ConfigurationError, match=message):
        SandboxServer(**options)
