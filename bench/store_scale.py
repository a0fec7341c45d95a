"""The in-process store at 10,000 and 100,000 users: latency, memory per user, hit rate.

``python -m bench.store_scale [--users N ...]``. Each size runs in a fresh
interpreter (so its resident-memory growth is its own). For every user, in
order: a login (the login record in the store) and a token (signed mode: the
real key derivation, mapping and claims; a stub in place of the RSA signature,
which costs the same at any size and is benchmark 1's business). Reported:

* the median (and p99) of login + token per user while the store fills;
* resident memory grown per user (``/proc/self/statm``), store included;
* the hit rate when every user asks again (tokens still valid: target 100 %),
  and how many logins are still there (target: all).

The baseline is the previous default store (cachelib ``SimpleCache`` with one
10,000-entry threshold shared by tokens and logins, sorted on every write past
it), measured at 6,000 users (12,000 entries: 2,000 past its threshold).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

from .common import REPO_ROOT, Row, Settings

TARGET_MS = 0.5
BASELINE_USERS = 6_000


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def services(store_spec: Any) -> tuple[Any, Any]:
    """A session registry and a token service over one store, signed mode, signature stubbed."""
    from flask_toucan.cache import TokenCache
    from flask_toucan.config import ToucanConfig
    from flask_toucan.http import make_transport
    from flask_toucan.minting import SignedMinter, make_service
    from flask_toucan.store import SessionRegistry, make_store
    from flask_toucan.tokens import EmbedToken, utc_from_timestamp

    from .common import AUDIENCE, ISSUER, rsa_pem

    config = ToucanConfig.from_mapping(
        {
            "TOUCAN_MODE": "signed",
            "TOUCAN_SIGNING_KEY": rsa_pem(),
            "TOUCAN_ISSUER": ISSUER,
            "TOUCAN_AUDIENCE": AUDIENCE,
        }
    )
    store = make_store(store_spec, max_tokens=config.store_max_tokens, max_sessions=config.store_max_sessions)
    service = make_service(config, make_transport(config), TokenCache(store, config.margin_for))
    real = service.minter
    assert isinstance(real, SignedMinter)
    fake_signature = "s" * 342  # the length of an RS256 signature, base64url

    class StubSignature:
        def mint(self, request: Any) -> tuple[EmbedToken, float]:
            now = time.time()
            claims = real.claims_for(request, now)
            value = "eyJhbGciOiJSUzI1NiJ9." + json.dumps(claims)[:400] + "." + fake_signature
            return EmbedToken(value, utc_from_timestamp(now + config.token_ttl), claims), config.token_ttl

    service.minter = StubSignature()
    return SessionRegistry(store, config.session_lifetime), service


def request_for(n: int) -> Any:
    from flask_toucan.mappers import ClassicContext
    from flask_toucan.minting import MintRequest
    from flask_toucan.user import ToucanUser

    user = ToucanUser("https://idp.bench.example", f"user{n}", {"sub": f"user{n}"})
    attributes = {"organization_id": f"org-{n % 500}", "region": "emea"}
    return MintRequest(user, attributes, {"dashboards": ["sales"]}, ClassicContext())


def measure(users: int, store_spec: Any = "memory") -> dict[str, Any]:
    """Fill the store with ``users`` users, then ask again (see module doc)."""
    sessions, service = services(store_spec)
    requests = [request_for(n) for n in range(users)]
    subjects = [json.dumps(list(r.user.id)) for r in requests]
    gc.collect()
    before = rss_bytes()
    times = []
    sids = []
    for request, subject in zip(requests, subjects, strict=True):
        t = time.perf_counter()
        sid = sessions.open(subject)
        service.issue(request)
        times.append(time.perf_counter() - t)
        sids.append(sid)
    gc.collect()
    grown = rss_bytes() - before
    hits = sum(1 for request in requests if service.issue(request)[1])
    logins = sum(1 for sid, subject in zip(sids, subjects, strict=True) if sessions.is_active(sid, subject))
    times.sort()
    return {
        "users": users,
        "median_ms": statistics.median(times) * 1000,
        "p99_ms": times[int(len(times) * 0.99) - 1] * 1000,
        "bytes_per_user": grown / users,
        "hit_rate": hits / users,
        "logins_kept": logins / users,
    }


def in_subprocess(users: int, store: str = "memory") -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "bench.store_scale", "--users", str(users), "--store", store, "--json"],
        check=True,
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=1800,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def describe(m: dict[str, Any]) -> str:
    return (
        f"{m['median_ms']:.3f} ms (p99 {m['p99_ms']:.2f}), {m['bytes_per_user'] / 1024:.1f} KiB/user, "
        f"hits {m['hit_rate']:.0%}, logins kept {m['logins_kept']:.0%}"
    )


def run(settings: Settings) -> list[Row]:
    sizes = (1_000, 10_000) if settings.quick else (10_000, 100_000)
    old = in_subprocess(2_000 if settings.quick else BASELINE_USERS, "simplecache")
    rows = []
    for key, users in zip(("6a", "6b"), sizes, strict=True):
        m = in_subprocess(users)
        passed = m["median_ms"] <= TARGET_MS and m["hit_rate"] == 1.0 and m["logins_kept"] == 1.0
        rows.append(
            Row(
                key=key,
                title=f"in-process store, {users:,} users: login + token (signed, signature stubbed)",
                toucan=describe(m),
                baseline=f"old SimpleCache @ {old['users']:,}: {describe(old)}",
                ratio=m["median_ms"] / TARGET_MS,
                ratio_text=f"{m['median_ms']:.3f} ms",
                target=f"<= {TARGET_MS} ms, 100 % hits",
                passed=passed,
                notes=[
                    f"{users:,} users: {describe(m)} (fresh interpreter; RSS growth incl. the users' objects)"
                ],
            )
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.store_scale")
    parser.add_argument("--users", type=int, action="append")
    parser.add_argument("--store", default="memory", help="memory, or simplecache (the old default)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.json:
        spec: Any = args.store
        if args.store == "simplecache":
            from cachelib import SimpleCache

            spec = SimpleCache(threshold=10_000, default_timeout=0)
        print(json.dumps(measure(args.users[0], spec)))
        return 0
    for users in args.users or [10_000, 100_000]:
        print(f"{users:,} users: {describe(in_subprocess(users, args.store))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
