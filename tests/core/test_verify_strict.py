"""verify_token: NumericDate claims must be finite JSON numbers; oversize tokens refused unread.

Every token here carries a *valid* signature made with the real key, so each
refusal is the claim check's or the size cap's, not the signature's.
"""

from __future__ import annotations

import json
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from flask_toucan import InvalidTokenError, verify_token
from flask_toucan.verify import MAX_TOKEN_BYTES

from .helpers import rsa_pem

ISS, AUD = "https://host.example", "toucan-embed"
KID = "k1"


def private_key() -> Any:
    return load_pem_private_key(rsa_pem(0).encode(), password=None)


def public_jwk() -> dict[str, Any]:
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private_key().public_key()))
    return {"keys": [{**jwk, "kid": KID, "alg": "RS256", "use": "sig"}]}


def good_claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": ISS,
        "aud": AUD,
        "sub": "alice",
        "jti": "j1",
        "iat": now,
        "nbf": now,
        "exp": now + 300,
    }
    claims.update(overrides)
    return claims


def sign_raw(payload: bytes) -> str:
    """Sign exact payload bytes (so NaN, booleans and strings reach the verifier as written)."""
    return jwt.PyJWS().encode(payload, private_key(), algorithm="RS256", headers={"kid": KID})


def sign(claims: dict[str, Any]) -> str:
    return sign_raw(json.dumps(claims).encode())


def verify(token: str | bytes, **kw: Any) -> dict[str, Any]:
    return verify_token(token, public_jwk(), audience=AUD, issuer=ISS, **kw)


def test_a_well_formed_token_still_verifies():
    assert verify(sign(good_claims()))["sub"] == "alice"
    assert verify(sign(good_claims(exp=time.time() + 300.5)))["sub"] == "alice"  # floats are numbers


@pytest.mark.parametrize("name", ["exp", "nbf", "iat"])
@pytest.mark.parametrize(
    "value",
    [
        # A valid time as a string: past for nbf/iat, future for exp (PyJWT would accept it).
        pytest.param(lambda now: str(now - 10), id="numeric-string"),
        pytest.param(lambda now: f"{now - 10}.0", id="decimal-string"),
        pytest.param(lambda now: True, id="true"),
        pytest.param(lambda now: False, id="false"),
        pytest.param(lambda now: [now], id="list"),
        pytest.param(lambda now: None, id="null"),
    ],
)
def test_numeric_dates_must_be_json_numbers(name, value):
    now = int(time.time())
    claims = good_claims()
    claims[name] = value(now + 310 if name == "exp" else now)
    with pytest.raises(InvalidTokenError, match=name):
        verify(sign(claims))


def test_pyjwt_alone_would_accept_what_we_refuse():
    """The reason for the check: PyJWT coerces with int(); we must not rely on it."""
    now = int(time.time())
    for claims in (good_claims(exp=str(now + 300)), good_claims(iat=True)):
        token = sign(claims)
        key = jwt.PyJWK(public_jwk()["keys"][0]).key
        assert jwt.decode(token, key, algorithms=["RS256"], audience=AUD, issuer=ISS)
        with pytest.raises(InvalidTokenError):
            verify(token)


@pytest.mark.parametrize("name", ["exp", "nbf", "iat"])
@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_non_finite_numeric_dates_are_refused(name, literal):
    claims = good_claims()
    claims[name] = "__X__"
    payload = json.dumps(claims).replace('"__X__"', literal).encode()
    with pytest.raises(InvalidTokenError):
        verify(sign_raw(payload))


def test_oversize_token_is_refused_before_decoding(monkeypatch):
    big = good_claims(pad="x" * 10_000)
    token = sign(big)
    assert len(token) > MAX_TOKEN_BYTES

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("decoded an oversize token")

    monkeypatch.setattr(jwt, "get_unverified_header", boom)
    monkeypatch.setattr(jwt.PyJWS, "decode_complete", boom)
    for form in (token, token.encode()):
        with pytest.raises(InvalidTokenError, match="longer than 8192 bytes"):
            verify(form)
    # Even a 1.4 MB blob is refused at once, and so is garbage of that size.
    with pytest.raises(InvalidTokenError, match="longer than"):
        verify("a" * 1_400_000)


def test_max_length_is_a_keyword():
    token = sign(good_claims(pad="x" * 10_000))
    assert verify(token, max_length=len(token))["sub"] == "alice"
    small = sign(good_claims())
    with pytest.raises(InvalidTokenError, match="longer than 100 bytes"):
        verify(small, max_length=100)


@pytest.mark.parametrize("token", ["é" * 10, "\x00\x01", b"\xff\xfe.\x00.x"])
def test_junk_is_a_clean_refusal(token):
    with pytest.raises(InvalidTokenError):
        verify(token)
