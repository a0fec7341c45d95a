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

import json
import time
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import jwt

from .exceptions import EmbedContextTooLarge
from .mappers import AttributeValue, ClassicContext

if TYPE_CHECKING:  # keys load with signed mode (settings.py), not in api mode
    from .keys import SigningKey

#: Toucan's documented ceiling for ``embed_context`` (3.5 KB of compact JSON).
MAX_EMBED_CONTEXT_BYTES = 3584


def build_claims(
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
) -> dict[str, Any]:
    """The assertion's claims, or :class:`EmbedContextTooLarge` (nothing signed yet)."""
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
    size = embed_context_size(embed_context)
    if size > MAX_EMBED_CONTEXT_BYTES:
        raise EmbedContextTooLarge(
            f"embed_context is {size} bytes of JSON, above the {MAX_EMBED_CONTEXT_BYTES}-byte (3.5 KB) "
            "limit of self-hosted Toucan; map fewer attributes, groups or privileges. No token was issued",
            size=size,
            limit=MAX_EMBED_CONTEXT_BYTES,
        )
    return {
        "iss": issuer,
        "aud": audience,
        "sub": subject,
        "iat": issued,
        "nbf": issued,
        "exp": issued + ttl,
        "jti": uuid.uuid4().hex,
        "embed_context": embed_context,
    }


def embed_context_size(embed_context: Mapping[str, Any]) -> int:
    """Bytes of compact UTF-8 JSON, the way the limit is measured."""
    return len(json.dumps(embed_context, separators=(",", ":"), ensure_ascii=False).encode())


def without_secrets(claims: Mapping[str, Any]) -> dict[str, Any]:
    """The claims with ``embed_context.secrets`` dropped: what may be kept, cached or signalled."""
    out = dict(claims)
    ctx = out.get("embed_context")
    if isinstance(ctx, Mapping) and "secrets" in ctx:
        out["embed_context"] = {k: v for k, v in ctx.items() if k != "secrets"}
    return out


def sign(claims: Mapping[str, Any], key: SigningKey) -> str:
    """The compact JWS of ``claims`` under ``key`` (``kid`` and ``typ: JWT`` in the header)."""
    return jwt.encode(
        dict(claims),
        key.signing_material,
        algorithm=key.algorithm,
        headers={"kid": key.kid, "typ": "JWT"},
    )
