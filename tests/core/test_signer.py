"""The prepared signer (signing.Signer) makes what ``jwt.encode`` makes, and never goes stale.

``signing.sign`` no longer calls ``jwt.encode``: it reuses, per key, the header
segment and PyJWT's prepared algorithm and key. These tests pin that the
tokens are the same bytes as ``jwt.encode``'s (for the deterministic
algorithms; the others verify), that an independent verifier (joserfc)
accepts them, and that the per-key memo follows the key object.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from typing import Any

import jwt
import pytest
from joserfc import jwt as jose_jwt
from joserfc.jwk import ECKey, OctKey, OKPKey, RSAKey

from flask_toucan import signing
from flask_toucan.keys import SigningKey, generate_private_key_pem, load_signing_key

from .helpers import rsa_pem

CLAIMS: dict[str, Any] = {
    "iss": "https://host.example",
    "aud": "toucan-embed",
    "sub": "toucan-embed-client",
    "iat": 1_700_000_000,
    "nbf": 1_700_000_000,
    "exp": 1_700_000_300,
    "jti": "0123456789abcdef0123456789abcdef",
    "embed_context": {
        "username": "https://idp|zoë",  # non-ASCII: PyJWT escapes it (ensure_ascii)
        "workspace_id": None,
        "roles": ["USER"],
        "privileges": {"app-1": ["view"]},
        "groups": [],
        "attributes": {"organization_id": "acme", "ratio": 0.5, "n": 3, "ok": True},
        "secrets": {},
    },
}
HMAC_SECRET = b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"


def _key(algorithm: str) -> tuple[SigningKey, Any]:
    """A signing key and the same key for joserfc."""
    if algorithm.startswith("HS"):
        return load_signing_key(HMAC_SECRET, algorithm=algorithm, kid="hk"), OctKey.import_key(HMAC_SECRET)
    kind = "OKP" if algorithm == "EdDSA" else {"R": "RSA", "P": "RSA", "E": "EC"}[algorithm[0]]
    pem = rsa_pem().encode() if kind == "RSA" else generate_private_key_pem(kind)
    jose = {"RSA": RSAKey, "EC": ECKey, "OKP": OKPKey}[kind].import_key(pem)
    return load_signing_key(pem, algorithm=algorithm, kid=f"kid-{algorithm}"), jose


def _pyjwt(key: SigningKey) -> str:
    return jwt.encode(
        CLAIMS, key.signing_material, algorithm=key.algorithm, headers={"kid": key.kid, "typ": "JWT"}
    )  # type: ignore[arg-type]


@pytest.mark.parametrize("algorithm", ["RS256", "RS512", "HS256", "HS512", "EdDSA"])
def test_same_bytes_as_jwt_encode(algorithm: str) -> None:
    key, _ = _key(algorithm)
    assert signing.sign(CLAIMS, key) == _pyjwt(key)


#: joserfc warns that the "EdDSA" name is deprecated (RFC 9864); it still verifies it.
_EDDSA = pytest.param("EdDSA", marks=pytest.mark.filterwarnings("ignore:EdDSA is deprecated"))


@pytest.mark.parametrize("algorithm", ["RS256", "PS256", "ES256", "HS256", _EDDSA])
def test_independent_verifier_accepts_and_header_matches(algorithm: str) -> None:
    key, jose_key = _key(algorithm)
    token = signing.sign(CLAIMS, key)
    assert token.count(".") == 2  # compact JWS
    decoded = jose_jwt.decode(token, jose_key, algorithms=[algorithm])
    assert decoded.header == {"alg": algorithm, "kid": key.kid, "typ": "JWT"}
    assert decoded.claims == CLAIMS
    # and the header segment is PyJWT's, to the byte (the signature may be randomised)
    assert token.split(".")[:2] == _pyjwt(key).split(".")[:2]


def test_a_rotated_key_gets_its_own_signer() -> None:
    old, new = (load_signing_key(rsa_pem(i), kid=f"k{i}") for i in (0, 1))
    first, second = signing.sign(CLAIMS, old), signing.sign(CLAIMS, new)
    assert jwt.get_unverified_header(first)["kid"] == "k0"
    assert jwt.get_unverified_header(second)["kid"] == "k1"
    assert jwt.decode(
        second, new.public, algorithms=["RS256"], audience=CLAIMS["aud"], options={"verify_exp": False}
    )  # type: ignore[arg-type]
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(
            second, old.public, algorithms=["RS256"], audience=CLAIMS["aud"], options={"verify_exp": False}
        )  # type: ignore[arg-type]
    # the same material under a new kid (a renamed key) is a new key object: a new header
    renamed = dataclasses.replace(old, kid="renamed")
    assert jwt.get_unverified_header(signing.sign(CLAIMS, renamed))["kid"] == "renamed"
    assert jwt.get_unverified_header(signing.sign(CLAIMS, old))["kid"] == "k0"


def test_a_reused_object_id_does_not_reuse_the_signer() -> None:
    """The memo is keyed by ``id(key)``; an id reused by another key object must not hit."""
    old, new = (load_signing_key(rsa_pem(i), kid=f"k{i}") for i in (0, 1))
    signing._SIGNERS[id(new)] = signing.Signer(old)  # what a reused id would leave behind
    token = signing.sign(CLAIMS, new)
    header = json.loads(jwt.utils.base64url_decode(token.split(".")[0]))
    assert header["kid"] == "k1"
    jwt.decode(token, new.public, algorithms=["RS256"], audience=CLAIMS["aud"], options={"verify_exp": False})  # type: ignore[arg-type]


def test_jti_is_a_random_uuid4_hex() -> None:
    seen = {signing.new_jti() for _ in range(200)}
    assert len(seen) == 200
    for jti in seen:
        parsed = uuid.UUID(hex=jti)
        assert parsed.hex == jti and parsed.version == 4 and parsed.variant == uuid.RFC_4122


@pytest.mark.parametrize("size", range(0, 70))
def test_base64url_is_pyjwts(size: int) -> None:
    from jwt.utils import base64url_encode

    data = bytes((i * 37 + size) % 256 for i in range(size))
    assert signing._base64url(data) == base64url_encode(data)
