"""``signed`` mode: the app signs the embed JWT itself (classic self-hosted Toucan).

The claims follow Toucan's docs-v3 ("Embedding > Authentication", "Embed SDK
authentication"): ``sub`` is the value shared in the Embed settings (the
assertion subject, by default the exchange client id ``toucan-embed-client``),
``iss``/``aud`` come from the same settings, plus ``iat``, ``nbf``, ``exp``,
``jti``, and an ``embed_context`` holding the user: ``username``,
``workspace_id``, ``roles`` (``USER``/``ADMIN``), ``privileges`` (app id ->
privilege names), ``groups``, ``attributes`` and ``secrets``. The user is
``embed_context.username``, never ``sub``.

``embed_context`` is at most 3.5 KB of JSON (Toucan's limit): a larger one is
refused here, before anything is signed or sent.
"""

from __future__ import annotations

import binascii
import json
import os
import time
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

import jwt.warnings
from jwt.api_jws import PyJWS
from jwt.utils import base64url_encode

from .exceptions import EmbedContextTooLarge
from .mappers import AttributeValue, ClassicContext

if TYPE_CHECKING:  # keys load with signed mode (settings.py), not in api mode
    from .keys import SigningKey

#: Toucan's documented ceiling for ``embed_context`` (3.5 KB of compact JSON).
MAX_EMBED_CONTEXT_BYTES = 3584


class Assertion(NamedTuple):
    """The claims of one assertion and ``payload``, their compact JSON: what :func:`sign` signs."""

    claims: dict[str, Any]
    payload: str


def build_claims(**fields: Any) -> dict[str, Any]:
    """The claims (or :class:`EmbedContextTooLarge`): :func:`build_assertion` without its payload."""
    return build_assertion(**fields).claims


def build_assertion(
    *,
    subject: str,
    username: str,
    attributes: Mapping[str, AttributeValue],
    context: ClassicContext,
    issuer: str,
    audience: str,
    ttl: int,
    workspace_id: str | None = None,
    now: float | None = None,
) -> Assertion:
    """The claims and their payload JSON, or :class:`EmbedContextTooLarge` (nothing signed yet).

    ``embed_context`` is turned into JSON once: its size is checked on that text
    (see :func:`_context_size`) and the same text goes into the payload.
    """
    issued = int(now if now is not None else time.time())
    embed_context: dict[str, Any] = {
        "username": username,
        "workspace_id": workspace_id,
        "roles": list(context.roles),
        "privileges": {app: list(names) for app, names in context.privileges.items()},
        "groups": list(context.groups),
        "attributes": dict(attributes),
        "secrets": dict(context.secrets),
    }
    context_json = payload_json(embed_context)
    size = _context_size(context_json, embed_context)
    if size > MAX_EMBED_CONTEXT_BYTES:
        raise EmbedContextTooLarge(
            f"embed_context is {size} bytes of JSON, above the {MAX_EMBED_CONTEXT_BYTES}-byte (3.5 KB) "
            "limit of self-hosted Toucan; map fewer attributes, groups or privileges. No token was issued",
            size=size,
            limit=MAX_EMBED_CONTEXT_BYTES,
        )
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": audience,
        "sub": subject,
        "iat": issued,
        "nbf": issued,
        "exp": issued + ttl,
        "jti": new_jti(),
    }
    # The payload JSON of the whole claims, as one dump would give it: a dict's compact JSON is
    # its items' JSON in order, and embed_context is the last item.
    payload = payload_json(claims)[:-1] + ',"embed_context":' + context_json + "}"
    claims["embed_context"] = embed_context
    return Assertion(claims, payload)


def _context_size(context_json: str, embed_context: Mapping[str, Any]) -> int:
    """What :func:`embed_context_size` gives, from the payload's (ASCII-escaped) JSON of it.

    Without a ``\\u`` escape in it, that text is what the UTF-8 dump gives too (they differ only
    in how they write characters past ASCII), so its length is the byte count. With one (a
    character past ASCII, a control character, a backslash before a ``u``), it is measured the
    slow way.
    """
    if "\\u" not in context_json:
        return len(context_json)
    return embed_context_size(embed_context)


def new_jti() -> str:
    """A random (version 4) UUID as 32 hex digits: what ``uuid.uuid4().hex`` gives, a third of its cost.

    The same 122 random bits from ``os.urandom`` and the same version and variant
    bits; only the ``uuid.UUID`` object (its checks and its int) is skipped.
    """
    raw = bytearray(os.urandom(16))
    raw[6] = raw[6] & 0x0F | 0x40  # version 4
    raw[8] = raw[8] & 0x3F | 0x80  # RFC 4122 variant
    return raw.hex()


#: ``json.dumps(..., separators=(",", ":"), ensure_ascii=False)``, one encoder for every call.
_COMPACT_UTF8 = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def embed_context_size(embed_context: Mapping[str, Any]) -> int:
    """Bytes of compact UTF-8 JSON, the way the limit is measured."""
    return len(_COMPACT_UTF8.encode(embed_context).encode())


def without_secrets(claims: Mapping[str, Any]) -> dict[str, Any]:
    """The claims with ``embed_context.secrets`` dropped: what may be kept, cached or signalled."""
    out = dict(claims)
    ctx = out.get("embed_context")
    if isinstance(ctx, Mapping) and "secrets" in ctx:
        out["embed_context"] = {k: v for k, v in ctx.items() if k != "secrets"}
    return out


class Signer:
    """One key's compact-JWS signer, prepared once: what ``jwt.encode`` redoes on every call.

    The same bytes as ``jwt.encode(claims, key, algorithm=key.algorithm,
    headers={"kid": ..., "typ": "JWT"})`` (PyJWT's header, sorted and compact;
    its compact payload JSON; its base64url), signed by PyJWT's own algorithm
    object. What is done here once per key instead of once per token: the
    header JSON and its base64url, the algorithm lookup, ``prepare_key`` (its
    isinstance checks) and the key-length check (its warning is PyJWT's).
    ``tests/core/test_signer.py`` proves the tokens equal ``jwt.encode``'s byte
    for byte (deterministic algorithms) and verify with joserfc.

    Claims must be JSON-ready: NumericDate claims as numbers (``build_claims``
    makes them ints; ``jwt.encode`` would also have turned ``datetime`` ones into
    numbers), ``iss`` a string.
    """

    __slots__ = ("_algorithm", "_header", "_prepared", "key")

    def __init__(self, key: SigningKey) -> None:
        self.key = key
        self._algorithm = _JWS.get_algorithm_by_name(key.algorithm)
        self._prepared = self._algorithm.prepare_key(key.signing_material)
        # keys.py refuses short keys at load; a hand-built one warns once, as PyJWT >= 2.10 does per call.
        check = getattr(self._algorithm, "check_key_length", None)
        short = check(self._prepared) if check is not None else None
        if short:
            warnings.warn(short, _SHORT_KEY_WARNING, stacklevel=2)
        header = {"typ": "JWT", "alg": key.algorithm, "kid": key.kid}
        self._header = base64url_encode(_HEADER_JSON.encode(header).encode()) + b"."

    def sign(self, claims: Mapping[str, Any], payload: str | None = None) -> str:
        """``payload``: the compact JSON of ``claims`` if the caller made it (:func:`build_assertion`)."""
        if payload is None:
            payload = payload_json(claims)
        signing_input = self._header + _base64url(payload.encode())
        signature = self._algorithm.sign(signing_input, self._prepared)
        return (signing_input + b"." + _base64url(signature)).decode()


_URLSAFE = bytes.maketrans(b"+/", b"-_")


def _base64url(data: bytes) -> bytes:
    """PyJWT's ``base64url_encode`` (unpadded URL-safe base64) in one call, not three."""
    return binascii.b2a_base64(data, newline=False).translate(_URLSAFE).rstrip(b"=")


#: PyJWT's JSON for the header (compact, keys sorted) and the payload (compact, ASCII).
_HEADER_JSON = json.JSONEncoder(separators=(",", ":"), sort_keys=True)
_PAYLOAD_JSON = json.JSONEncoder(separators=(",", ":"))
#: The C encoder behind ``_PAYLOAD_JSON``, made once: ``JSONEncoder.encode`` makes a new one (and
#: a dict to detect cycles) for every call. ``None`` where the C accelerator is missing.
_MAKE_ENCODER: Any = getattr(json.encoder, "c_make_encoder", None)  # private to the stdlib: may be absent
_C_PAYLOAD: Any = (
    _MAKE_ENCODER(
        None, _PAYLOAD_JSON.default, json.encoder.encode_basestring_ascii, None, ":", ",", False, False, True
    )
    if _MAKE_ENCODER is not None
    else None
)


def payload_json(obj: Mapping[str, Any]) -> str:
    """``json.dumps(obj, separators=(",", ":"))``: PyJWT's payload JSON (the same text, tested).

    Without cycle detection: claims are built here from checked mapper output (text,
    numbers, booleans, lists and dicts of them), which holds no cycle.
    """
    if _C_PAYLOAD is None:
        return _PAYLOAD_JSON.encode(obj)
    return "".join(_C_PAYLOAD(obj, 0))


_JWS = PyJWS()
_SHORT_KEY_WARNING: type[Warning] = getattr(jwt.warnings, "InsecureKeyLengthWarning", UserWarning)

#: Prepared signers by key object (a key is immutable, so a signer never goes stale; a
#: rotated-in key is another object and gets its own). Bounded: tests build many apps.
_SIGNERS: dict[int, Signer] = {}
_MAX_SIGNERS = 64


def signer_for(key: SigningKey) -> Signer:
    """The prepared :class:`Signer` of ``key`` (made on first use)."""
    signer = _SIGNERS.get(id(key))
    if signer is None or signer.key is not key:  # "is": an id is reused once its object is gone
        if len(_SIGNERS) >= _MAX_SIGNERS:
            _SIGNERS.clear()
        signer = _SIGNERS[id(key)] = Signer(key)
    return signer


def sign(claims: Mapping[str, Any], key: SigningKey, *, payload: str | None = None) -> str:
    """The compact JWS of ``claims`` under ``key`` (``kid`` and ``typ: JWT`` in the header).

    ``payload``: their compact JSON, if the caller has it (:attr:`Assertion.payload`).
    """
    return signer_for(key).sign(claims, payload)
