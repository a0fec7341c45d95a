"""Redis as deployments run it: TLS (``rediss://``), Sentinel, Cluster — real servers each.

For each: the store reads and writes, the cross-worker lock works, and a host
app (login, a page with a component, the rate-limited refresh endpoint, whose
counter lives in the same deployment, in the user's slot) answers 200.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from flask_toucan.store import describe_store, make_store

from .apps import login, make_store_app

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _needs_redis(redis_server_factory: Any) -> None:
    """Skips (or fails in CI) when redis-server is missing (see tests/conftest.py)."""


def exercise(url: str, **config: Any) -> Any:
    """Store round trip, lock, then the app's login / page / refresh on this deployment."""
    store = make_store(url, ca_bundle=config.get("TOUCAN_STORE_CA_BUNDLE"))
    assert store.set("sid:probe", "value", timeout=60) and store.get("sid:probe") == "value"
    lock = store.acquire_lock("tok:{u}x", 5)
    assert lock is not None and store.acquire_lock("tok:{u}x", 5) is None
    store.release_lock(lock)
    assert store.acquire_lock("tok:{u}x", 5) is not None

    app, _ = make_store_app(url, TOUCAN_RATE_LIMIT="100/minute", **config)
    client = app.test_client()
    csrf = login(client)
    assert client.get("/whoami").text == "alice"
    assert "<tc-dashboard" in client.get("/page").text
    resp = client.post("/toucan/token", json={"kind": "dashboard"}, headers={"X-Toucan-CSRF": csrf})
    assert resp.status_code == 200, resp.get_json()
    assert app.extensions["toucan"].limiter is not None
    return store


@pytest.fixture
def tls_redis() -> Iterator[Any]:
    from ..redis_deployments import TlsRedis

    with TlsRedis() as server:
        yield server.start()


def test_rediss_with_the_ca_from_the_setting(tls_redis: Any) -> None:
    exercise(tls_redis.url, TOUCAN_STORE_CA_BUNDLE=str(tls_redis.ca_file))


def test_rediss_with_the_ca_in_the_url(tls_redis: Any) -> None:
    exercise(f"{tls_redis.url}?ssl_ca_certs={tls_redis.ca_file}")


def test_rediss_refuses_an_unknown_ca(tls_redis: Any) -> None:
    from flask_toucan.exceptions import StoreUnavailable

    store = make_store(tls_redis.url)  # the system's CAs: the trustme CA is not among them
    with pytest.raises(StoreUnavailable) as caught:
        store.get("anything")
    assert "127.0.0.1" not in str(caught.value)


def test_sentinel() -> None:
    from ..redis_deployments import SentinelRedis

    with SentinelRedis() as deployment:
        deployment.start()
        exercise(deployment.url)


def test_cluster_keeps_one_users_keys_in_one_slot() -> None:
    import redis

    from ..redis_deployments import ClusterRedis

    with ClusterRedis() as deployment:
        deployment.start()
        exercise(deployment.url)
        node = redis.Redis(host="127.0.0.1", port=deployment.ports[0])
        cluster: Any = make_store(deployment.url).locks.client
        every = [k.decode() for k in cluster.keys(target_nodes="all")]
        keys = [k for k in every if k.startswith("toucan:")]
        user_keys = [k for k in keys if k.startswith(("toucan:sid:{", "toucan:tok:{"))]
        assert any(k.startswith("toucan:sid:") for k in user_keys)
        assert any(k.startswith("toucan:tok:") for k in user_keys)
        limit_keys = [k for k in every if "toucan-refresh" in k]  # the counter's key holds the session id
        assert limit_keys, every
        slots = {node.execute_command("CLUSTER", "KEYSLOT", k) for k in user_keys + limit_keys}
        assert len(slots) == 1, every  # alice's login record, tokens and rate limit: one slot, one node
        # ... so one round trip can read them all (item 5 of issue 11 builds on this).
        store = make_store(deployment.url)
        assert all(v is not None for v in store.get_many(*(k.removeprefix("toucan:") for k in user_keys)))


def test_the_description_never_shows_a_password() -> None:
    for url in (
        "redis+sentinel://:hunter2@s1:26379,s2:26379/mymaster",
        "redis+cluster://:hunter2@n1:7000,n2:7001",
        "rediss://user:hunter2@cache.internal:6380/0",
    ):
        text = describe_store(url)
        assert "hunter2" not in text and "user" not in text, text
    assert describe_store("redis+cluster://n1:7000,n2:7001") == "Redis (redis+cluster, n1:7000,n2:7001)"
