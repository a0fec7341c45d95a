"""Data API with RLS: tenant isolation checked against direct SQL, and every refusal."""

from __future__ import annotations

import pytest

from flask_toucan.sandbox import Rule, create_app, grants, where_clause
from flask_toucan.sandbox.rls import MissingAttribute
from tests.waiting import FakeClock

from .helpers import ALL, sql

LOOPBACK = "http://127.0.0.1:5000"


def issue(state, attributes, permissions=None, lifetime=None):
    from flask_toucan.sandbox.grants import grant_from_request

    from .helpers import token_request

    grant = grant_from_request(
        token_request(attributes, permissions),
        declared=state.options.attributes,
        roles=state.options.roles,
        lifetime=lifetime or state.options.token_lifetime,
    )
    return state.codec.encode(grant)


def get(client, path, token, origin=None):
    headers = {"Authorization": f"Bearer {token}"}
    if origin:
        headers["Origin"] = origin
    return client.get(path, headers=headers)


def rows_of(client, token):
    resp = get(client, "/api/v1/datasets/sales/rows", token)
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def test_two_tenants_get_disjoint_rows_matching_sql(app_client):
    _, client, state = app_client
    acme = rows_of(client, issue(state, {"organization_id": "acme"}))
    globex = rows_of(client, issue(state, {"organization_id": "globex"}))
    acme_ids = {r["id"] for r in acme["rows"]}
    globex_ids = {r["id"] for r in globex["rows"]}
    assert acme_ids and globex_ids and not acme_ids & globex_ids
    for org, got in (("acme", acme), ("globex", globex)):
        expected = {
            r[0] for r in sql(state.data_file, "SELECT id FROM sales WHERE organization_id = ?", (org,))
        }
        assert {r["id"] for r in got["rows"]} == expected
        assert got["row_count"] == len(expected)
        assert {r["organization_id"] for r in got["rows"]} == {org}
        assert got["tenant"]["id"] == org


def test_region_scoped_user_sees_only_their_region(app_client):
    _, client, state = app_client
    emea = rows_of(client, issue(state, {"organization_id": "acme", "region": "emea"}))
    expected = sql(
        state.data_file,
        "SELECT COUNT(*) FROM sales WHERE organization_id = ? AND region = ?",
        ("acme", "emea"),
    )
    assert emea["row_count"] == expected[0][0]
    assert {r["region"] for r in emea["rows"]} == {"emea"}
    everywhere = rows_of(client, issue(state, {"organization_id": "acme", "region": "*"}))
    total = sql(state.data_file, "SELECT COUNT(*) FROM sales WHERE organization_id = ?", ("acme",))
    assert everywhere["row_count"] == total[0][0] > emea["row_count"]


def test_dashboard_figures_match_sql(app_client):
    _, client, state = app_client
    token = issue(state, {"organization_id": "globex", "region": "apac"})
    data = get(client, "/api/v1/dashboards/sales-overview", token, LOOPBACK).get_json()
    expected = sql(
        state.data_file,
        "SELECT month, product, SUM(amount), SUM(units), COUNT(*) FROM sales "
        "WHERE organization_id = ? AND region = ? GROUP BY month, product ORDER BY month, product",
        ("globex", "apac"),
    )
    assert [
        (r["month"], r["product"], r["amount"], r["units"], r["orders"]) for r in data["rows"]
    ] == expected
    assert data["tenant"] == {"id": "globex", "name": "Globex Inc."}
    assert sum(p["value"] for p in data["chart"]["points"]) == sum(r[2] for r in expected)
    chart = get(client, "/api/v1/charts/revenue-by-product", token).get_json()
    assert {r["product"]: r["amount"] for r in chart["rows"]} == dict(
        sql(
            state.data_file,
            "SELECT product, SUM(amount) FROM sales WHERE organization_id='globex' "
            "AND region='apac' GROUP BY product",
        )
    )


@pytest.mark.parametrize(
    "value", ["acme' OR '1'='1", 'acme" OR 1=1 --', "acme'; DROP TABLE sales; --", "%", "*"]
)
def test_sql_metacharacters_are_inert(app_client, value):
    _, client, state = app_client
    for attrs in ({"organization_id": value}, {"organization_id": "acme", "region": value + "x"}):
        got = rows_of(client, issue(state, attrs))
        assert got["rows"] == [] and got["row_count"] == 0
    assert sql(state.data_file, "SELECT COUNT(*) FROM sales")[0][0] == 3000


def refused(resp, status, error):
    assert resp.status_code == status, resp.get_json()
    body = resp.get_json()
    assert body["code"] == error.upper() and isinstance(body["message"], str)  # Toucan's envelope
    assert "rows" not in body


def test_forged_garbled_and_missing_tokens_get_401(app_client):
    _, client, _state = app_client
    other = create_app().extensions["toucan_sandbox"]
    forged = issue(other, {"organization_id": "acme"})  # right shape, another sandbox's key
    refused(get(client, "/api/v1/dashboards/sales-overview", forged), 401, "invalid_token")
    refused(get(client, "/api/v1/dashboards/sales-overview", "not-a-token"), 401, "invalid_token")
    resp = client.get("/api/v1/dashboards/sales-overview")
    refused(resp, 401, "missing_token")
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")


def test_expired_token_gets_401_token_expired(monkeypatch):
    # Issue and expiry read the grants module's clock: injected, moved by hand.
    clock = FakeClock().install(monkeypatch, grants)
    app = create_app(token_lifetime=1)
    client, state = app.test_client(), app.extensions["toucan_sandbox"]
    token = issue(state, {"organization_id": "acme"})
    assert get(client, "/api/v1/dashboards/sales-overview", token).status_code == 200
    clock.advance(1.1)  # issue time is rounded down to the second: past expiry whatever the fraction
    resp = get(client, "/api/v1/dashboards/sales-overview", token)
    refused(resp, 401, "token_expired")
    assert 'error="token_expired"' in resp.headers["WWW-Authenticate"]


def test_out_of_scope_permissions_get_403(app_client):
    _, client, state = app_client
    only_ai = issue(state, {"organization_id": "acme"}, {"ai": {"can_query": True}})
    refused(get(client, "/api/v1/dashboards/sales-overview", only_ai), 403, "forbidden")
    refused(get(client, "/api/v1/charts/revenue-by-month", only_ai), 403, "forbidden")
    refused(get(client, "/api/v1/datasets/sales/rows", only_ai), 403, "forbidden")
    viewer = issue(state, {"organization_id": "acme"}, {"dashboard": {"can_view": True}})
    assert (
        get(client, "/api/v1/charts/revenue-by-month", viewer).status_code == 200
    )  # dashboard covers charts
    refused(get(client, "/api/v1/datasets/sales/rows", viewer), 403, "forbidden")
    edit_only = issue(
        state, {"organization_id": "acme"}, {"dashboard": {"can_edit": True, "can_view": False}}
    )
    refused(get(client, "/api/v1/dashboards/sales-overview", edit_only), 403, "forbidden")


def test_wrong_origin_gets_403_and_no_cors(app_client):
    _, client, state = app_client
    token = issue(state, {"organization_id": "acme"})
    for origin in ("https://evil.example", "null", "http://127.0.0.1.evil.example:80"):
        resp = get(client, "/api/v1/dashboards/sales-overview", token, origin)
        refused(resp, 403, "origin_not_allowed")
        assert "Access-Control-Allow-Origin" not in resp.headers
    ok = get(client, "/api/v1/dashboards/sales-overview", token, "http://localhost:8000")
    assert ok.status_code == 200
    assert ok.headers["Access-Control-Allow-Origin"] == "http://localhost:8000"
    assert "Origin" in ok.headers["Vary"]
    assert (
        get(client, "/api/v1/dashboards/sales-overview", token).status_code == 200
    )  # server-side: no Origin


def test_preflight_only_for_authorized_origins():
    app = create_app(origins=["https://app.example.com"])
    client = app.test_client()
    pre = {"Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization"}
    ok = client.options(
        "/api/v1/dashboards/sales-overview", headers={"Origin": "https://app.example.com", **pre}
    )
    assert ok.status_code == 204
    assert ok.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert "Authorization" in ok.headers["Access-Control-Allow-Headers"]
    bad = client.options(
        "/api/v1/dashboards/sales-overview", headers={"Origin": "http://localhost:3000", **pre}
    )
    assert bad.status_code == 403 and "Access-Control-Allow-Origin" not in bad.headers


def test_attribute_less_token_gets_403_never_rows(app_client):
    _, client, state = app_client
    token = issue(state, {"region": "emea"})
    for path in (
        "/api/v1/dashboards/sales-overview",
        "/api/v1/charts/revenue-by-region",
        "/api/v1/datasets/sales/rows",
    ):
        refused(get(client, path, token), 403, "missing_attribute")
    resp = client.post(
        "/api/v1/assistant/ask", json={"question": "total"}, headers={"Authorization": f"Bearer {token}"}
    )
    refused(resp, 403, "missing_attribute")


def test_assistant_refused_without_ai_permission(app_client):
    _, client, state = app_client
    token = issue(state, {"organization_id": "acme"}, {"dashboard": {"can_view": True}})
    resp = client.post(
        "/api/v1/assistant/ask",
        json={"question": "total sales?"},
        headers={"Authorization": f"Bearer {token}"},
    )
    refused(resp, 403, "forbidden")
    refused(get(client, "/api/v1/assistant", token), 403, "forbidden")


def test_assistant_answers_deterministically_from_scoped_rows(app_client):
    _, client, state = app_client
    token = issue(state, {"organization_id": "initech", "region": "amer"}, {"ai": {"can_query": True}})

    def ask(question):
        resp = client.post(
            "/api/v1/assistant/ask", json={"question": question}, headers={"Authorization": f"Bearer {token}"}
        )
        assert resp.status_code == 200
        return resp.get_json()

    where = "organization_id = 'initech' AND region = 'amer'"
    total = ask("What are my total sales?")
    amount, units, orders = sql(
        state.data_file, f"SELECT SUM(amount), SUM(units), COUNT(*) FROM sales WHERE {where}"
    )[0]
    assert total["kind"] == "total" and total["data"] == {"amount": amount, "units": units, "orders": orders}
    assert f"{amount:,}" in total["answer"] and "Initech Ltd" in total["answer"]
    top = ask("top 2 products")
    expected = sql(
        state.data_file,
        f"SELECT product, SUM(amount) s FROM sales WHERE {where} "
        "GROUP BY product ORDER BY s DESC, product LIMIT 2",
    )
    assert [(i["key"], i["amount"]) for i in top["data"]["items"]] == expected
    regions = ask("sales by region")
    assert [i["key"] for i in regions["data"]["items"]] == ["amer"]  # scoped: one region only
    assert ask("What are my total sales?") == total
    assert ask("tell me a joke")["kind"] == "unknown"
    bad = client.post(
        "/api/v1/assistant/ask", json={"question": ""}, headers={"Authorization": f"Bearer {token}"}
    )
    assert bad.status_code == 400 and bad.get_json()["field"] == "question"


def test_unknown_dashboard_is_404_json(app_client):
    _, client, state = app_client
    resp = get(client, "/api/v1/dashboards/nope", issue(state, {"organization_id": "acme"}))
    assert resp.status_code == 404 and resp.get_json()["code"] == "NOT_FOUND"


def test_rule_compilation_binds_values_and_fails_closed():
    rules = {
        "sales": Rule.all_of(
            Rule("organization_id", "equal", "organization_id"),
            Rule.any_of(Rule("region", "in", "regions"), Rule("units", "greater", "min_units")),
            Rule("product", "not in", "hidden", optional=True),
            Rule("region", "is set"),
        )
    }
    where, params = where_clause(
        rules, "sales", {"organization_id": "x' OR 1=1", "regions": ["emea", "apac"], "min_units": 5}
    )
    assert (
        where
        == '("organization_id" = ?) AND (("region" IN (?, ?)) OR ("units" > ?)) AND ("region" IS NOT NULL)'
    )
    assert params == ["x' OR 1=1", "emea", "apac", 5]
    with pytest.raises(MissingAttribute):
        where_clause(rules, "sales", {"regions": ["emea"], "min_units": 1})
    assert where_clause(rules, "customers", {"organization_id": "acme"}) == ("0", [])  # no rules: no rows
    with pytest.raises(ValueError):
        Rule("region; DROP TABLE sales", "equal", "region")
    with pytest.raises(ValueError):
        Rule("region", "like", "region")


def test_custom_rules_apply(app_client):
    app = create_app(rules={"sales": Rule("region", "in", "groups")}, attributes={"groups": "list[string]"})
    client, state = app.test_client(), app.extensions["toucan_sandbox"]
    token = issue(state, {"groups": ["emea", "apac"]}, ALL)
    got = rows_of(client, token)
    assert {r["region"] for r in got["rows"]} == {"emea", "apac"}
    assert (
        got["row_count"]
        == sql(state.data_file, "SELECT COUNT(*) FROM sales WHERE region IN ('emea', 'apac')")[0][0]
    )


def test_one_region_in_scope_charts_by_month_and_regions_carry_labels(app_client):
    _, client, state = app_client
    one = get(
        client,
        "/api/v1/dashboards/regional-performance",
        issue(state, {"organization_id": "acme", "region": "emea"}, ALL),
    )
    data = one.get_json()
    assert [r["id"] for r in data["rows"]] == ["emea"]  # the table stays by region
    assert data["chart"]["label"] == "month" and len(data["chart"]["points"]) == 12
    expected = dict(
        sql(
            state.data_file,
            "SELECT month, SUM(amount) FROM sales"
            " WHERE organization_id='acme' AND region='emea' GROUP BY month",
        )
    )
    assert {p["label"]: p["value"] for p in data["chart"]["points"]} == expected
    assert data["labels"]["region"]["emea"] == "EMEA"
    every = get(
        client, "/api/v1/dashboards/regional-performance", issue(state, {"organization_id": "acme"}, ALL)
    ).get_json()
    assert every["chart"]["label"] == "region" and len(every["chart"]["points"]) == 3
