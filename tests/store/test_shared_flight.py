"""Cross-worker single-flight against a real redis-server, workers simulated in one process.

Each simulated worker has its own :class:`TokenService` (own in-process
SingleFlight) and its own Redis client, as gunicorn workers do; only the
store's lock can make them agree. The gunicorn version is test_cross_worker.py.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from flask_toucan.cache import SharedFlight, TokenCache
from flask_toucan.exceptions import StoreUnavailable
from flask_toucan.minting import MintRequest, TokenService
from flask_toucan.store import make_store
from flask_toucan.tokens import EmbedToken, utc_from_timestamp
from flask_toucan.user import ToucanUser

pytestmark = pytest.mark.integration


class CountingMinter:
    """A stand-in for Toucan: counts calls; each call holds until ``release`` (or a delay)."""

    def __init__(self, delay: float = 0.0) -> None:
        self.calls = 0
        self.delay = delay
        self.lock = threading.Lock()
        self.entered = threading.Event()

    def mint(self, request: MintRequest) -> tuple[EmbedToken, float]:
        with self.lock:
            self.calls += 1
        self.entered.set()
        time.sleep(self.delay)  # the upstream's latency, so misses overlap
        now = time.time()
        value = f"token-for-{request.user.distinct_id}-{now}"
        return EmbedToken(value, utc_from_timestamp(now + 300), {}), 300.0


def user(i: int) -> ToucanUser:
    return ToucanUser("https://idp.test", f"user-{i}", {"sub": f"user-{i}"})


def request_for(i: int) -> MintRequest:
    return MintRequest(user(i), {"organization_id": f"org-{i}"}, {"dashboards": ["sales"]})


def worker(url: str, minter: CountingMinter, lock_ttl: float = 5.0) -> TokenService:
    store = make_store(url)
    return TokenService(
        minter, TokenCache(store, lambda lifetime: 10.0), "ns", SharedFlight(store, lock_ttl, 20.0)
    )


def render_all(services: list[TokenService], requests: list[MintRequest], per_worker: int) -> list[Any]:
    results: list[Any] = []
    barrier = threading.Barrier(len(services) * per_worker * len(requests))

    def one(service: TokenService, req: MintRequest) -> None:
        barrier.wait()
        results.append(service.issue(req))

    threads = [
        threading.Thread(target=one, args=(service, req))
        for service in services
        for req in requests
        for _ in range(per_worker)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


def test_four_workers_by_twenty_renders_of_one_user_mint_once(redis_server: Any) -> None:
    minter = CountingMinter(delay=0.3)
    services = [worker(redis_server.url, minter) for _ in range(4)]
    results = render_all(services, [request_for(0)], per_worker=20)
    assert len(results) == 80 and minter.calls == 1
    assert len({token.value for token, _ in results}) == 1


def test_ten_users_by_ten_renders_mint_ten_times(redis_server: Any) -> None:
    minter = CountingMinter(delay=0.3)
    services = [worker(redis_server.url, minter) for _ in range(4)]
    results = render_all(services, [request_for(i) for i in range(10)], per_worker=3)
    assert len(results) == 120 and minter.calls == 10
    by_user: dict[str, set[str]] = {}
    for token, _ in results:
        by_user.setdefault(token.value.rsplit("-", 1)[0], set()).add(token.value)
    assert len(by_user) == 10 and all(len(values) == 1 for values in by_user.values())


def test_a_dead_lock_holder_is_taken_over_after_the_lock_expires(redis_server: Any) -> None:
    minter = CountingMinter()
    service = worker(redis_server.url, minter, lock_ttl=0.8)
    key = service.key_for(request_for(0))
    # A worker took the lock and died: taken by hand, never released.
    dead = redis_server.client().lock("toucan:lock:" + key, timeout=0.8, blocking=False)
    assert dead.acquire(blocking=False)
    started = time.monotonic()
    token, cached = service.issue(request_for(0))
    waited = time.monotonic() - started
    assert not cached and minter.calls == 1 and token.value.startswith("token-for-")
    assert waited >= 0.5  # it waited on the holder, then took over after the PX


def test_the_lock_is_released_and_only_by_its_owner(redis_server: Any) -> None:
    minter = CountingMinter()
    service = worker(redis_server.url, minter, lock_ttl=30)
    service.issue(request_for(1))
    client = redis_server.client()
    assert client.keys("toucan:lock:*") == []  # released at once, not left to expire
    store = make_store(redis_server.url)
    mine = store.acquire_lock("tok:x", 30)
    assert mine is not None and store.acquire_lock("tok:x", 30) is None
    client.set("toucan:lock:tok:x", b"somebody-else")  # ours expired, another worker took it
    store.release_lock(mine)
    assert client.get("toucan:lock:tok:x") == b"somebody-else"


def test_keys_of_one_user_share_a_cluster_hash_tag(redis_server: Any) -> None:
    minter = CountingMinter()
    service = worker(redis_server.url, minter)
    key_a = service.key_for(request_for(0))
    key_b = service.key_for(MintRequest(user(0), {"organization_id": "org-0"}, {"dashboards": ["x"]}))
    key_c = service.key_for(request_for(1))
    tag = key_a[4 : key_a.index("}") + 1]
    assert tag.startswith("{") and key_b.startswith("tok:" + tag) and not key_c.startswith("tok:" + tag)


def test_store_failure_while_locking_is_store_unavailable(redis_server: Any) -> None:
    minter = CountingMinter()
    service = worker(redis_server.url, minter)
    store: Any = service.cache.store
    original = store.locks.acquire

    def down(name: str, ttl: float) -> Any:
        raise ConnectionError("redis went away")  # an OSError: what a dead socket raises

    store.locks.acquire = down
    with pytest.raises(StoreUnavailable):
        service.issue(request_for(2))
    assert minter.calls == 0  # degrade like a failed read: no upstream call
    store.locks.acquire = original
    assert service.issue(request_for(2))[0].value.startswith("token-for-")


def test_memory_and_file_stores_use_no_shared_lock(tmp_path: Any) -> None:
    from flask_toucan.config import ToucanConfig
    from flask_toucan.minting import shared_flight

    from ..core.helpers import signed_config

    config = ToucanConfig.from_mapping(signed_config())
    assert shared_flight(config, make_store("memory")) is None
    assert shared_flight(config, make_store(f"file://{tmp_path}")) is None


def test_lock_ttl_and_wait_come_from_the_config(redis_server: Any) -> None:
    from flask_toucan.config import ToucanConfig
    from flask_toucan.exceptions import ConfigurationError
    from flask_toucan.minting import shared_flight

    from ..core.helpers import signed_config

    store = make_store(redis_server.url)
    default = shared_flight(ToucanConfig.from_mapping(signed_config(TOUCAN_HTTP_DEADLINE=7.0)), store)
    assert default is not None and (default.lock_ttl, default.wait) == (7.0, 14.0)
    set_ = shared_flight(ToucanConfig.from_mapping(signed_config(TOUCAN_STORE_LOCK_TTL=2.5)), store)
    assert set_ is not None and set_.lock_ttl == 2.5
    for bad in (0, -1, "5", True):
        with pytest.raises(ConfigurationError, match="TOUCAN_STORE_LOCK_TTL"):
            ToucanConfig.from_mapping(signed_config(TOUCAN_STORE_LOCK_TTL=bad))
    with pytest.raises(ConfigurationError, match="TOUCAN_STORE_CA_BUNDLE"):
        ToucanConfig.from_mapping(signed_config(TOUCAN_STORE_CA_BUNDLE=""))
