"""``flask_toucan.signing``: the classic profile's claims, the 3.5 KB limit, one ``jwt.encode`` per token.

An independent verifier (joserfc) accepts what is signed, for every algorithm
family; the ``embed_context`` limit is measured in UTF-8 bytes of compact JSON,
exactly.
"""

from __future__ import annotations

import uuid
from typing import Any

import jwt
import pytest
from joserfc import jwt as jose_jwt
from joserfc.jwk import ECKey, OctKey, OKPKey, RSAKey

from flask_toucan import signing
from flask_toucan.exceptions import EmbedContextTooLarge
from flask_toucan.keys import SigningKey, generate_private_key_pem, load_signing_key
from flask_toucan.mappers import ClassicContext

from .helpers import rsa_pem

LIMIT = signing.MAX_EMBED_CONTEXT_BYTES
HMAC_SECRET = b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"


def _claims(attributes: dict[str, Any], **context: Any) -> dict[str, Any]:
    return signing.build_claims(
        subject="toucan-embed-client",
        username="https://idp|zoë",  # non-ASCII in the payload
        attributes=attributes,
        context=ClassicContext(**context),
        issuer="https://host.example",
        audience="toucan-embed",
        ttl=300,
        workspace_id="ws",
        now=1_700_000_000,
    )


def _key(algorithm: str) -> tuple[SigningKey, Any]:
    """A signing key and the same key for joserfc."""
    if algorithm.startswith("HS"):
        return load_signing_key(HMAC_SECRET, algorithm=algorithm, kid="hk"), OctKey.import_key(HMAC_SECRET)
    kind = "OKP" if algorithm == "EdDSA" else {"R": "RSA", "P": "RSA", "E": "EC"}[algorithm[0]]
    pem = rsa_pem().encode() if kind == "RSA" else generate_private_key_pem(kind)
    jose = {"RSA": RSAKey, "EC": ECKey, "OKP": OKPKey}[kind].import_key(pem)
    return load_signing_key(pem, algorithm=algorithm, kid=f"kid-{algorithm}"), jose


def test_claims_follow_docs_v3() -> None:
    claims = _claims({"organization_id": "acme"}, roles=["USER"], groups=["g"], privileges={"app": ["view"]})
    assert list(claims) == ["iss", "aud", "sub", "iat", "nbf", "exp", "jti", "embed_context"]
    assert claims["exp"] - claims["iat"] == 300 and claims["nbf"] == claims["iat"] == 1_700_000_000
    assert claims["embed_context"] == {
        "username": "https://idp|zoë",
        "workspace_id": "ws",
        "roles": ["USER"],
        "privileges": {"app": ["view"]},
        "groups": ["g"],
        "attributes": {"organization_id": "acme"},
        "secrets": {},
    }


def test_jti_is_a_random_uuid4_hex() -> None:
    seen = {_claims({})["jti"] for _ in range(50)}
    assert len(seen) == 50
    for jti in seen:
        parsed = uuid.UUID(hex=jti)
        assert parsed.hex == jti and parsed.version == 4


#: joserfc warns that the "EdDSA" name is deprecated (RFC 9864); it still verifies it.
_EDDSA = pytest.param("EdDSA", marks=pytest.mark.filterwarnings("ignore:EdDSA is deprecated"))


@pytest.mark.parametrize("algorithm", ["RS256", "RS512", "PS256", "ES256", "HS256", _EDDSA])
def test_independent_verifier_accepts_and_header_matches(algorithm: str) -> None:
    key, jose_key = _key(algorithm)
    claims = _claims({"organization_id": "acme", "ratio": 0.5, "n": 3, "ok": True, "zone": "日本"})
    token = signing.sign(claims, key)
    assert token.count(".") == 2  # compact JWS
    decoded = jose_jwt.decode(token, jose_key, algorithms=[algorithm])
    assert decoded.header == {"alg": algorithm, "kid": key.kid, "typ": "JWT"}
    assert decoded.claims == claims


def test_a_rotated_key_signs_under_its_own_kid() -> None:
    old, new = (load_signing_key(rsa_pem(i), kid=f"k{i}") for i in (0, 1))
    claims = _claims({})
    token = signing.sign(claims, new)
    assert jwt.get_unverified_header(token)["kid"] == "k1"
    options = {"verify_exp": False, "verify_nbf": False, "verify_iat": False}
    decoded = jwt.decode(token, new.public, algorithms=["RS256"], audience="toucan-embed", options=options)  # type: ignore[arg-type]
    assert decoded == claims
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, old.public, algorithms=["RS256"], audience="toucan-embed", options=options)  # type: ignore[arg-type]


def _padded(filler: str, size: int) -> dict[str, Any]:
    """Attributes whose embed_context is exactly ``size`` bytes of compact UTF-8 JSON."""
    base = signing.embed_context_size(_claims({"pad": ""})["embed_context"])
    count, rest = divmod(size - base, len(filler.encode()))
    return {"pad": filler * count + "a" * rest}


@pytest.mark.parametrize("filler", ["a", "é", "日", "\U0001f600", "\x01", "\\u"])
def test_the_limit_is_measured_in_utf8_bytes_exactly(filler: str) -> None:
    if filler in ("\x01", "\\u"):  # escapes: JSON is longer than the text; pad with plain text
        size = signing.embed_context_size(_claims({"pad": filler})["embed_context"])
        at_limit = {"pad": filler + "a" * (LIMIT - size)}
    else:
        at_limit = _padded(filler, LIMIT)
    assert signing.embed_context_size(_claims(at_limit)["embed_context"]) == LIMIT  # allowed
    with pytest.raises(EmbedContextTooLarge) as info:
        _claims({"pad": at_limit["pad"] + "a"})
    assert info.value.size == LIMIT + 1


def test_without_secrets_drops_only_the_secrets() -> None:
    claims = _claims({"v": 1}, secrets={"s": "x"})
    kept = signing.without_secrets(claims)
    assert "secrets" not in kept["embed_context"]
    assert claims["embed_context"]["secrets"] == {"s": "x"}  # the original is untouched
    assert {k: v for k, v in kept["embed_context"].items()} == {
        k: v for k, v in claims["embed_context"].items() if k != "secrets"
    }
