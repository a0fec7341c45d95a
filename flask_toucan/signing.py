"""``signed`` mode: the app signs the embed JWT itself (self-hosted Toucan).

The claims follow what self-hosted deployments verify: ``sub``, ``iss``,
``aud``, ``iat``, ``nbf``, ``exp``, ``jti`` and an ``embed_context`` holding the
user (``username``, ``workspace_id``, ``roles``, ``privileges``, ``groups``,
``attributes``). The mapped attributes named ``roles`` and ``groups`` fill those
fields; ``privileges`` is the permissions object; every other mapped attribute
goes under ``attributes``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import Any

import jwt

from .keys import SigningKey
from .mappers import AttributeValue, Permissions


def build_claims(
    *,
    subject: str,
    attributes: Mapping[str, AttributeValue],
    permissions: Permissions,
    issuer: str,
    audience: str,
    ttl: int,
    role: str,
    workspace_id: str | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    issued = int(now if now is not None else time.time())
    attrs = dict(attributes)
    roles = attrs.pop("roles", None)
    groups = attrs.pop("groups", None)
    return {
        "iss": issuer,
        "aud": audience,
        "sub": subject,
        "iat": issued,
        "nbf": issued,
        "exp": issued + ttl,
        "jti": uuid.uuid4().hex,
        "embed_context": {
            "username": subject,
            "workspace_id": workspace_id,
            "roles": _as_list(roles) or [role],
            "privileges": {k: dict(v) for k, v in permissions.items()},
            "groups": _as_list(groups),
            "attributes": attrs,
        },
    }


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def sign(claims: Mapping[str, Any], key: SigningKey) -> str:
    return jwt.encode(
        dict(claims),
        key.signing_material,
        algorithm=key.algorithm,
        headers={"kid": key.kid, "typ": "JWT"},
    )
