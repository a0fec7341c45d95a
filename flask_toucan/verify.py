"""Verify a ``signed``-mode token the way a careful relying party does (RFC 8725).

* The algorithm comes from the key, never from the token: an RSA key admits the
  RS/PS family only, an EC key its curve's ES algorithm, an Ed25519 key EdDSA.
  ``none`` is never accepted; HMAC only when the caller passes ``algorithms``
  naming it and an ``oct`` key / raw secret.
* Keys are never taken from the token header (``jwk``, ``jku``, ``x5u``,
  ``x5c`` are refused outright); ``kid`` is only a lookup key and must look like
  one (no path separators, quotes or spaces).
* ``iss`` must equal ``issuer`` exactly; ``aud`` must contain ``audience``;
  ``exp``, ``iat``, ``nbf``, ``sub`` and ``jti`` are required; ``iat`` and
  ``nbf`` may not lie in the future beyond ``leeway``.
* ``exp``, ``nbf`` and ``iat`` are NumericDates (RFC 7519 section 2): JSON
  numbers, finite. PyJWT coerces with ``int()``, so it would take ``"9999999999"``
  or ``true``; those are refused here, after the signature is checked and before
  PyJWT validates the claims. ``NaN``/``Infinity`` (not JSON) are refused too.
* A token longer than ``max_length`` bytes (8 KB by default) is refused before
  anything is decoded: no base64, JSON or signature work for an oversize input.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Mapping, Sequence
from typing import Any

import jwt
from jwt import PyJWK, PyJWS

from .exceptions import InvalidTokenError
from .keys import (
    ASYMMETRIC_ALGORITHMS,
    EC_ALGORITHMS,
    HMAC_ALGORITHMS,
    RSA_ALGORITHMS,
    KeySet,
    SigningKey,
    algorithms_for,
)

REQUIRED_CLAIMS = ("iss", "aud", "sub", "exp", "iat", "nbf", "jti")
NUMERIC_DATE_CLAIMS = ("exp", "nbf", "iat")
#: Our own tokens are well under 2 KB; 8 KB leaves room for a large embed_context.
MAX_TOKEN_BYTES = 8192
FORBIDDEN_HEADERS = ("jwk", "jku", "x5u", "x5c", "crit")
_KID = re.compile(r"^[A-Za-z0-9_.\-]{1,128}$")

Keys = Mapping[str, Any] | KeySet | SigningKey | Any


def _candidates(keys: Keys) -> list[tuple[str | None, Any, tuple[str, ...]]]:
    """Normalise every accepted key form to ``(kid, key, allowed algorithms)``."""
    if isinstance(keys, KeySet):
        return [_candidate_of(k) for k in keys.verification_keys()]
    if isinstance(keys, SigningKey):
        return [_candidate_of(keys)]
    if isinstance(keys, Mapping):
        entries: Sequence[Mapping[str, Any]] = keys["keys"] if "keys" in keys else [keys]
        out = []
        for entry in entries:
            if entry.get("use", "sig") != "sig":
                continue
            try:
                jwk = PyJWK(dict(entry))
            except jwt.PyJWTError:
                continue  # a key we cannot use is skipped, not fatal
            out.append((entry.get("kid"), jwk.key, _jwk_algorithms(entry)))
        return out
    # A bare cryptography public key.
    return [(None, keys, algorithms_for(keys))]


def _candidate_of(key: SigningKey) -> tuple[str | None, Any, tuple[str, ...]]:
    return (key.kid, key.public, (key.algorithm,))


def _jwk_algorithms(entry: Mapping[str, Any]) -> tuple[str, ...]:
    kty = entry.get("kty")
    family: tuple[str, ...]
    if kty == "RSA":
        family = RSA_ALGORITHMS
    elif kty == "EC":
        family = tuple(a for c, a in EC_ALGORITHMS.items() if c == entry.get("crv"))
    elif kty == "OKP" and entry.get("crv") == "Ed25519":
        family = ("EdDSA",)
    elif kty == "oct":
        family = HMAC_ALGORITHMS
    else:
        family = ()
    alg = entry.get("alg")
    if alg is not None:
        return (alg,) if alg in family else ()
    return family


def verify_token(
    token: str | bytes,
    keys: Keys,
    *,
    audience: str,
    issuer: str,
    leeway: float = 30,
    algorithms: Sequence[str] | None = None,
    required: Sequence[str] = REQUIRED_CLAIMS,
    max_length: int = MAX_TOKEN_BYTES,
) -> dict[str, Any]:
    """Verify ``token`` against a JWKS dict, a JWK, a :class:`KeySet`, or a public key.

    Returns the verified claims; raises :class:`InvalidTokenError` on any failure.
    ``algorithms`` narrows (never widens) what the keys allow; HMAC is accepted
    only when it is named there. ``max_length`` caps the token's size in bytes.
    """
    if not audience or not issuer:
        raise InvalidTokenError("verify_token needs both an audience and an issuer")
    token = _bounded(token, max_length)
    alg, kid = _checked_header(token)
    allowed_names = set(ASYMMETRIC_ALGORITHMS)
    if algorithms is not None:
        allowed_names = set(algorithms) & (allowed_names | set(HMAC_ALGORITHMS))
    candidates = [c for c in _candidates(keys) if kid is None or c[0] == kid]
    if kid is None and len(candidates) != 1:
        raise InvalidTokenError("token has no kid and the key set holds more than one key")
    if not candidates:
        raise InvalidTokenError("no key with the token's kid")
    _, key, key_algs = candidates[0]
    if alg not in key_algs or alg not in allowed_names:
        raise InvalidTokenError(f"algorithm {alg!r} is not allowed for this key")

    # Claim types first (PyJWT would coerce "123" and true with int()), on the payload
    # of a checked signature; PyJWT then checks it again along with the claims' values.
    _check_numeric_dates(_signed_payload(token, key, alg))
    claims = _decode(token, key, alg, audience=audience, issuer=issuer, leeway=leeway, required=required)

    # Defence in depth against lenient issuer/iat handling in any PyJWT version.
    if claims.get("iss") != issuer:
        raise InvalidTokenError("token issuer does not match")
    iat = claims.get("iat")
    if not isinstance(iat, int | float) or iat > time.time() + leeway:
        raise InvalidTokenError("token is not valid yet (nbf/iat in the future)")
    return claims


def _checked_header(token: bytes) -> tuple[str, str | None]:
    """``(alg, kid)`` from a header that names no key source and a real algorithm."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise InvalidTokenError("token is not a well-formed JWS") from None
    for name in FORBIDDEN_HEADERS:
        if name in header:
            raise InvalidTokenError(f"token header carries {name!r}; keys are never taken from it")
    alg = header.get("alg")
    if not isinstance(alg, str) or alg.lower() == "none":
        raise InvalidTokenError("token algorithm is missing or 'none'")
    kid = header.get("kid")
    if kid is not None and (not isinstance(kid, str) or not _KID.match(kid)):
        raise InvalidTokenError("token kid is not a plain key identifier")
    return alg, kid


def _decode(
    token: bytes, key: Any, alg: str, *, audience: str, issuer: str, leeway: float, required: Sequence[str]
) -> dict[str, Any]:
    """PyJWT's signature and claim checks, each failure mapped to a clear :class:`InvalidTokenError`."""
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[alg],
            audience=audience,
            issuer=issuer,
            leeway=leeway,
            options={"require": list(required), "verify_signature": True},
        )
    except jwt.ExpiredSignatureError:
        raise InvalidTokenError("token has expired") from None
    except jwt.ImmatureSignatureError:
        raise InvalidTokenError("token is not valid yet (nbf/iat in the future)") from None
    except jwt.InvalidAudienceError:
        raise InvalidTokenError("token audience does not match") from None
    except jwt.InvalidIssuerError:
        raise InvalidTokenError("token issuer does not match") from None
    except jwt.MissingRequiredClaimError as exc:
        raise InvalidTokenError(f"token lacks the {exc.claim!r} claim") from None
    except jwt.PyJWTError:
        raise InvalidTokenError("token signature or structure is invalid") from None
    return claims


def _bounded(token: Any, max_length: int) -> bytes:
    """The token as bytes, refused when over ``max_length`` (checked before any decoding)."""
    if isinstance(token, str):
        if len(token) > max_length:  # a str is at least as many bytes as characters
            raise InvalidTokenError(f"token is longer than {max_length} bytes")
        try:
            token = token.encode("ascii")
        except UnicodeEncodeError:
            raise InvalidTokenError("token is not a well-formed JWS") from None
    if not isinstance(token, bytes):
        raise InvalidTokenError("token must be a str or bytes")
    if len(token) > max_length:
        raise InvalidTokenError(f"token is longer than {max_length} bytes")
    return token


def _signed_payload(token: bytes, key: Any, alg: str) -> Any:
    """The payload as strict JSON, once the signature is known good (no claim is trusted before)."""
    try:
        payload = PyJWS().decode_complete(token, key, algorithms=[alg])["payload"]
        return json.loads(payload, parse_constant=_not_json)
    except jwt.PyJWTError:
        raise InvalidTokenError("token signature or structure is invalid") from None
    except (ValueError, RecursionError):
        raise InvalidTokenError("token payload is not a JSON object") from None


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _check_numeric_dates(payload: Any) -> None:
    """``exp``/``nbf``/``iat``, when present, are finite JSON numbers: no strings, no booleans."""
    if not isinstance(payload, dict):
        raise InvalidTokenError("token payload is not a JSON object")
    for name in NUMERIC_DATE_CLAIMS:
        if name not in payload:
            continue  # a missing claim is reported by the required-claims check
        value = payload[name]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidTokenError(f"token claim {name!r} is not a NumericDate (a JSON number)")
        if not math.isfinite(value):
            raise InvalidTokenError(f"token claim {name!r} is not a finite number")


__all__ = ["MAX_TOKEN_BYTES", "REQUIRED_CLAIMS", "verify_token"]
