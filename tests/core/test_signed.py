"""signed mode: minting, JWKS, rotation, and verify_token's refusals (RFC 8725)."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest

from flask_toucan import InvalidTokenError, verify_token
from flask_toucan.keys import load_signing_key

from .helpers import make_app, rsa_pem, signed_config

ISS, AUD = "https://host.example", "toucan-embed"


def mint(app, toucan, sub="alice", org="acme"):
    with app.test_request_context():
        user = toucan.login_user({"sub": sub, "iss": "https://idp", "org": org})
        return toucan.issue_token(user)


@pytest.fixture
def signed():
    app, toucan = make_app(**signed_config(TOUCAN_TOKEN_TTL=120))
    return app, toucan


def jwks_of(app):
    r = app.test_client().get("/toucan/.well-known/jwks.json")
    assert r.status_code == 200
    assert "max-age" in r.headers["Cache-Control"]
    return r.get_json()


def test_token_verifies_against_published_jwks(signed):
    app, toucan = signed
    token = mint(app, toucan)
    jwks = jwks_of(app)
    header = jwt.get_unverified_header(token.value)
    assert header["alg"] == "RS256" and header["kid"] == jwks["keys"][0]["kid"]
    # Plain PyJWT, as a third party would do it.
    key = jwt.PyJWK(jwks["keys"][0])
    claims = jwt.decode(token.value, key.key, algorithms=["RS256"], audience=AUD, issuer=ISS)
    for name in ("iss", "aud", "sub", "iat", "nbf", "exp", "jti", "embed_context"):
        assert name in claims
    assert claims["exp"] - claims["iat"] == 120
    assert abs(token.expires_at.timestamp() - claims["exp"]) < 2
    assert 110 <= token.expires_in <= 120
    claims = verify_token(token.value, jwks, audience=AUD, issuer=ISS)
    assert claims["sub"] == "toucan-embed-client"  # the assertion subject (docs-v3)
    assert claims["embed_context"]["username"] == "https://idp|alice"
    assert "d" not in jwks["keys"][0] and "p" not in jwks["keys"][0]  # public only


def test_jwks_404_in_api_mode():
    app, _ = make_app()
    r = app.test_client().get("/toucan/.well-known/jwks.json")
    assert r.status_code == 404 and r.is_json


def test_rotation_overlap_then_retirement():
    old_pem, new_pem, next_pem = rsa_pem(0), rsa_pem(1), rsa_pem(2)
    app_old, t_old = make_app(**signed_config(TOUCAN_SIGNING_KEY=old_pem))
    old_token = mint(app_old, t_old).value
    # Rotated: new key signs, old key still published as a fallback, next key pre-published.
    app_rot, t_rot = make_app(
        **signed_config(
            TOUCAN_SIGNING_KEY=new_pem,
            TOUCAN_SIGNING_KEY_FALLBACKS=[old_pem],
            TOUCAN_SIGNING_KEY_NEXT=next_pem,
        )
    )
    jwks = jwks_of(app_rot)
    assert len(jwks["keys"]) == 3
    assert verify_token(old_token, jwks, audience=AUD, issuer=ISS)
    assert verify_token(mint(app_rot, t_rot).value, jwks, audience=AUD, issuer=ISS)
    # Retired: the old key is gone from the set.
    app_ret, _ = make_app(**signed_config(TOUCAN_SIGNING_KEY=new_pem))
    with pytest.raises(InvalidTokenError, match="kid"):
        verify_token(old_token, jwks_of(app_ret), audience=AUD, issuer=ISS)


def test_fallback_may_be_public_key_only():
    from cryptography.hazmat.primitives import serialization

    old = load_signing_key(rsa_pem(0))
    pub = old.public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    app, _ = make_app(**signed_config(TOUCAN_SIGNING_KEY=rsa_pem(1), TOUCAN_SIGNING_KEY_FALLBACKS=[pub]))
    kids = [k["kid"] for k in jwks_of(app)["keys"]]
    assert old.kid in kids


# ---------------------------------------------------------------- verify_token
@pytest.fixture(scope="module")
def key():
    return load_signing_key(rsa_pem(0))


def claims(**over):
    now = int(time.time())
    c = {"iss": ISS, "aud": AUD, "sub": "s", "iat": now, "nbf": now, "exp": now + 60, "jti": "j1"}
    c.update(over)
    return {k: v for k, v in c.items() if v is not None}


def sign(key, payload, headers=None, alg="RS256"):
    h = {"kid": key.kid}
    h.update(headers or {})
    return jwt.encode(payload, key.private, algorithm=alg, headers=h)


def b64(d):
    return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()


def jwks(key):
    return {"keys": [key.public_jwk()]}


def test_verify_accepts_good_token(key):
    assert verify_token(sign(key, claims()), jwks(key), audience=AUD, issuer=ISS)["sub"] == "s"


def test_alg_none_rejected(key):
    token = b64({"alg": "none", "kid": key.kid}) + "." + b64(claims()) + "."
    with pytest.raises(InvalidTokenError):
        verify_token(token, jwks(key), audience=AUD, issuer=ISS)


def test_hs256_signed_with_public_key_rejected(key):
    import hashlib
    import hmac

    from cryptography.hazmat.primitives import serialization

    pub = key.public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    signing_input = b64({"alg": "HS256", "kid": key.kid, "typ": "JWT"}) + "." + b64(claims())
    sig = base64.urlsafe_b64encode(hmac.new(pub, signing_input.encode(), hashlib.sha256).digest()).rstrip(
        b"="
    )
    token = signing_input + "." + sig.decode()
    with pytest.raises(InvalidTokenError, match="algorithm"):
        verify_token(token, jwks(key), audience=AUD, issuer=ISS)
    with pytest.raises(InvalidTokenError):
        verify_token(token, key.public, audience=AUD, issuer=ISS)


def test_tampered_payload_rejected(key):
    token = sign(key, claims())
    head, _, sig = token.split(".")
    forged = head + "." + b64(claims(sub="admin")) + "." + sig
    with pytest.raises(InvalidTokenError, match="signature"):
        verify_token(forged, jwks(key), audience=AUD, issuer=ISS)


@pytest.mark.parametrize(
    "over,match",
    [
        ({"aud": "someone-else"}, "audience"),
        ({"iss": ISS + ".evil"}, "issuer"),
        ({"iss": ISS[:-3]}, "issuer"),
        ({"iss": "https://host"}, "issuer"),
        ({"exp": int(time.time()) - 120}, "expired"),
        ({"nbf": int(time.time()) + 600}, "not valid yet"),
        ({"iat": int(time.time()) + 600}, "not valid yet"),
        ({"jti": None}, "jti"),
        ({"sub": None}, "sub"),
    ],
)
def test_claims_rejected(key, over, match):
    with pytest.raises(InvalidTokenError, match=match):
        verify_token(sign(key, claims(**over)), jwks(key), audience=AUD, issuer=ISS)


def test_partial_issuer_list_match_rejected(key):
    # PyJWT 2.10.0 once matched a str issuer as a substring; we compare exactly.
    with pytest.raises(InvalidTokenError):
        verify_token(sign(key, claims(iss="host")), jwks(key), audience=AUD, issuer=ISS)


@pytest.mark.parametrize("header", ["jwk", "jku", "x5u", "x5c"])
def test_key_in_header_rejected(key, header):
    value = key.public_jwk() if header == "jwk" else "https://evil.example/keys"
    if header == "x5c":
        value = ["MIIB"]
    with pytest.raises(InvalidTokenError, match=header):
        verify_token(sign(key, claims(), {header: value}), jwks(key), audience=AUD, issuer=ISS)


@pytest.mark.parametrize("kid", ["../../etc/passwd", "x' OR '1'='1", "a/b", "k id", "", "a\\b"])
def test_hostile_kid_rejected(key, kid):
    with pytest.raises(InvalidTokenError):
        verify_token(sign(key, claims(), {"kid": kid}), jwks(key), audience=AUD, issuer=ISS)


def test_unknown_kid_rejected(key):
    with pytest.raises(InvalidTokenError, match="kid"):
        verify_token(sign(key, claims(), {"kid": "other"}), jwks(key), audience=AUD, issuer=ISS)


def test_hmac_only_when_asked():
    secret = b"s" * 48
    hkey = load_signing_key(secret, algorithm="HS256", kid="h1")
    token = jwt.encode(claims(), secret, algorithm="HS256", headers={"kid": "h1"})
    with pytest.raises(InvalidTokenError):
        verify_token(token, hkey, audience=AUD, issuer=ISS)
    assert verify_token(token, hkey, audience=AUD, issuer=ISS, algorithms=["HS256"])


def test_signed_mode_with_ec_and_eddsa():
    from flask_toucan.keys import generate_private_key_pem

    for kind, alg in (("EC", "ES256"), ("OKP", "EdDSA")):
        app, toucan = make_app(**signed_config(TOUCAN_SIGNING_KEY=generate_private_key_pem(kind).decode()))
        token = mint(app, toucan)
        assert jwt.get_unverified_header(token.value)["alg"] == alg
        assert verify_token(token.value, jwks_of(app), audience=AUD, issuer=ISS)
