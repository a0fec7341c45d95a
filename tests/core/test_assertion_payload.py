"""``signing.build_assertion`` dumps embed_context once: its size check and the payload reuse it.

Each test fails if the reused text drifts from what a dump of the claims gives
(the token would then not carry the claims handed around) or if the size
measured on it drifts from the UTF-8 byte count (the 3.5 KB limit would move).
"""

from __future__ import annotations

import json
from typing import Any

import jwt
import pytest

from flask_toucan import signing
from flask_toucan.exceptions import EmbedContextTooLarge
from flask_toucan.keys import load_signing_key
from flask_toucan.mappers import ClassicContext

from .helpers import rsa_pem

LIMIT = signing.MAX_EMBED_CONTEXT_BYTES


def _assertion(attributes: dict[str, Any], **context: Any) -> signing.Assertion:
    return signing.build_assertion(
        subject="toucan-embed-client",
        username="https://idp|alice",
        attributes=attributes,
        context=ClassicContext(**context),
        issuer="https://host.example",
        audience="toucan-embed",
        ttl=300,
        workspace_id="ws",
        now=1_700_000_000,
    )


VALUES = [
    "acme",
    "zoë",  # past ASCII: escaped in the payload, two bytes in UTF-8
    "日本",
    "emoji \U0001f600",
    'quote " and back\\slash',
    "a literal \\u0041 in text",  # a backslash before a u: measured the slow way
    "tab\tand\nnewline\x01",
    ["finance", "ünï"],
    3,
    0.5,
    True,
]


@pytest.mark.parametrize("value", VALUES)
def test_payload_is_the_dump_of_the_claims(value: Any) -> None:
    a = _assertion({"v": value}, groups=["g"], privileges={"app": ["view"]}, secrets={"s": "x"})
    assert a.payload == json.dumps(a.claims, separators=(",", ":"))
    assert list(a.claims) == ["iss", "aud", "sub", "iat", "nbf", "exp", "jti", "embed_context"]
    assert a.claims == signing.build_claims(
        subject="toucan-embed-client",
        username="https://idp|alice",
        attributes={"v": value},
        context=ClassicContext(groups=["g"], privileges={"app": ["view"]}, secrets={"s": "x"}),
        issuer="https://host.example",
        audience="toucan-embed",
        ttl=300,
        workspace_id="ws",
        now=1_700_000_000,
    ) | {"jti": a.claims["jti"]}


def _padded(filler: str, size: int) -> dict[str, Any]:
    """Attributes whose embed_context is exactly ``size`` bytes of compact UTF-8 JSON."""
    base = signing.embed_context_size(_assertion({"pad": ""}).claims["embed_context"])
    char_bytes = len(filler.encode())
    count, rest = divmod(size - base, char_bytes)
    return {"pad": filler * count + "a" * rest}


@pytest.mark.parametrize("filler", ["a", "é", "日", "\U0001f600", "\x01", "\\u"])
def test_the_limit_is_measured_in_utf8_bytes_exactly(filler: str) -> None:
    if filler in ("\x01", "\\u"):  # escapes: JSON is longer than the text; pad with plain text
        at_limit = {"pad": filler + "a" * 0}
        size = signing.embed_context_size(_assertion(at_limit).claims["embed_context"])
        at_limit = {"pad": filler + "a" * (LIMIT - size)}
    else:
        at_limit = _padded(filler, LIMIT)
    ctx = _assertion(at_limit).claims["embed_context"]
    assert signing.embed_context_size(ctx) == LIMIT
    _assertion(at_limit)  # exactly at the limit: allowed
    over = {"pad": at_limit["pad"] + "a"}
    with pytest.raises(EmbedContextTooLarge) as info:
        _assertion(over)
    assert info.value.size == LIMIT + 1


def test_signed_payload_is_the_claims() -> None:
    key = load_signing_key(rsa_pem().encode(), algorithm="RS256", kid="k")
    a = _assertion({"v": "zoë", "n": 1})
    token = signing.sign(a.claims, key, payload=a.payload)
    assert token == signing.sign(a.claims, key)
    assert token == jwt.encode(
        a.claims, key.signing_material, algorithm="RS256", headers={"kid": "k", "typ": "JWT"}
    )  # type: ignore[arg-type]
    decoded = jwt.decode(
        token,
        key.public,
        algorithms=["RS256"],
        audience="toucan-embed",
        options={"verify_exp": False, "verify_nbf": False, "verify_iat": False},
    )
    assert decoded == a.claims


@pytest.mark.parametrize("c_encoder", [True, False])
def test_payload_json_is_json_dumps(c_encoder: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if not c_encoder:
        monkeypatch.setattr(signing, "_C_PAYLOAD", None)
    for value in [*VALUES, 1e300, -0.0, 1 / 3, None, {"a": {"b": [1, "ü", None]}}, []]:
        obj = {"k": value, "ë": [value, value], "n": 1}
        assert signing.payload_json(obj) == json.dumps(obj, separators=(",", ":"))
