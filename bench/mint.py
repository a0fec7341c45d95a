"""Benchmark 1: signed-mode minting vs a bare ``jwt.encode`` of the same claims.

Three sides, interleaved, same RSA-2048 key object, RS256, same JWT header
(``kid``, ``typ``):

* ``bare``: ``jwt.encode(claims, key, algorithm="RS256", headers=...)`` of one
  pre-built claims dict (the floor: what any hand-written signer pays);
* ``issue``: ``toucan.issue_token(user, kind="dashboard")`` with the cache
  unable to keep anything (``TOUCAN_TOKEN_TTL=1``: a one-second token is never
  stored, so every call is a miss and signs). This is the whole path a refresh
  pays below HTTP: permissions mapper and narrowing, cache key (JSON + SHA-256),
  cache lookup (miss), single-flight, attribute mappers, claims (random
  ``jti``, clock), sign, ``EmbedToken``, the ``token_issued`` signal;
* ``minter``: the same minus the cache: ``map_permissions`` +
  ``permissions_for_kind`` + ``map_attributes`` + ``SignedMinter.mint``.

flask-toucan signs with one ``jwt.encode`` call per token, as the baseline does;
the difference is what it does around the signature.
"""

from __future__ import annotations

import cProfile
from time import perf_counter as _now
from typing import Any

import jwt

from flask_toucan.mappers import permissions_for_kind
from flask_toucan.minting import MintRequest
from flask_toucan.user import ToucanUser

from .common import (
    AUDIENCE,
    CLAIMS,
    DECODE_LEEWAY,
    ISSUER,
    Row,
    Settings,
    build_app,
    fmt_time,
    interleaved,
    median,
    paired_ratio,
)

TARGET = 1.10


def _setup() -> dict[str, Any]:
    app, toucan = build_app("signed", name="bench-mint", ttl=1)
    state = app.extensions["toucan"]
    user = ToucanUser(CLAIMS["iss"], CLAIMS["sub"], CLAIMS)
    required = state.config.required_attributes
    minter = state.service.minter
    key = state.config.keys.current
    ctx = app.app_context()
    ctx.push()

    perms = permissions_for_kind(toucan.mappers.map_permissions(user), "dashboard")
    attrs = toucan.mappers.map_attributes(user, required)
    claims = minter.claims_for(MintRequest(user, attrs, perms))
    headers = {"kid": key.kid, "typ": "JWT"}
    private = key.signing_material

    # Honesty checks: the cache really misses, and the baseline signs the same thing.
    first, second = toucan.issue_token(user, kind="dashboard"), toucan.issue_token(user, kind="dashboard")
    assert first.value != second.value, "issue_token served a cached token; the benchmark would lie"
    ours = jwt.decode(
        first.value, key.public, algorithms=["RS256"], audience=AUDIENCE, issuer=ISSUER, leeway=DECODE_LEEWAY
    )
    assert jwt.get_unverified_header(first.value) == {**headers, "alg": "RS256"}
    assert {k: v for k, v in ours.items() if k not in ("iat", "nbf", "exp", "jti")} == {
        k: v for k, v in claims.items() if k not in ("iat", "nbf", "exp", "jti")
    }, "the baseline would sign different claims"

    def bare(n: int) -> float:
        t0 = _now()
        for _ in range(n):
            jwt.encode(claims, private, algorithm="RS256", headers=headers)
        return _now() - t0

    def issue(n: int) -> float:
        t0 = _now()
        for _ in range(n):
            toucan.issue_token(user, kind="dashboard")
        return _now() - t0

    def mint_only(n: int) -> float:
        mappers = toucan.mappers
        t0 = _now()
        for _ in range(n):
            p = permissions_for_kind(mappers.map_permissions(user), "dashboard")
            a = mappers.map_attributes(user, required)
            minter.mint(MintRequest(user, a, p))
        return _now() - t0

    return {"ctx": ctx, "bare": bare, "issue": issue, "minter": mint_only, "size": len(first.value)}


def run(settings: Settings) -> list[Row]:
    s = _setup()
    try:
        t = interleaved(
            {"bare": s["bare"], "issue": s["issue"], "minter": s["minter"]},
            settings.mint_rounds,
            settings.mint_ops,
        )
    finally:
        s["ctx"].pop()
    common = f"{settings.mint_rounds} rounds x {settings.mint_ops} tokens per side, 3 sides interleaved"
    rows = []
    for key, side, title, note in (
        (
            "1a",
            "minter",
            "signed-mode mint: mappers + claims + sign (`map_permissions`, `map_attributes`, "
            "`SignedMinter.mint`) vs bare `jwt.encode` of the same claims, RS256 RSA-2048",
            f"{common}; token {s['size']} bytes; both sides sign with `jwt.encode`",
        ),
        (
            "1b",
            "issue",
            "signed-mode mint, whole uncached path: `issue_token` on a cache miss (adds cache key, "
            "cache lookup, single flight, signal) vs bare `jwt.encode`",
            "`TOUCAN_TOKEN_TTL=1`: the cache never keeps a token, every call signs (checked)",
        ),
    ):
        ratio = paired_ratio(t[side], t["bare"])
        rows.append(
            Row(
                key=key,
                title=title,
                toucan=fmt_time(median(t[side])) + " / token",
                baseline=fmt_time(median(t["bare"])) + " / token",
                ratio=ratio,
                ratio_text=f"{ratio:.3f}x",
                target=f"≤ {TARGET:.2f}x",
                passed=ratio <= TARGET,
                notes=[note],
            )
        )
    return rows


def profile(settings: Settings, n: int = 2000) -> cProfile.Profile:
    s = _setup()
    prof = cProfile.Profile()
    try:
        prof.enable()
        s["issue"](n)
        prof.disable()
    finally:
        s["ctx"].pop()
    return prof
