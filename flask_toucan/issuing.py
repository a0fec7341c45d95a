"""Issuing tokens in a request: permissions checked, attributes mapped, memoised per request.

The Flask side of minting (the core :class:`~flask_toucan.minting.TokenService`
knows nothing of requests): it picks the current user, checks the permissions
asked for against what the app's permissions mapper grants, runs the attribute
mappers, memoises one token per permission set on ``g`` and sends the
``token_issued`` signal. The facade's ``toucan.issue_token`` / ``issue_for`` /
``can``, the component kit, the refresh endpoint and the assistant all call
these functions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from flask import Flask, current_app, g, has_request_context

from . import identity, signals
from .exceptions import AuthenticationRequired, ToucanError
from .mappers import Permissions, check_subset, normalize_permissions, permissions_for_kind
from .minting import MintRequest
from .state import ToucanState, get_state
from .tokens import EmbedToken
from .user import ToucanUser


class Issued(NamedTuple):
    """A token and the permission set it was minted for (the kit names its scope after it)."""

    token: EmbedToken
    permissions: Permissions


def _user_or_current(user: ToucanUser | None) -> ToucanUser:
    found = user if user is not None else identity.current_user()
    if found is None:
        raise AuthenticationRequired("log in to get a token")
    return found


def issue_token(
    user: ToucanUser | None = None,
    permissions: Mapping[str, Mapping[str, bool]] | None = None,
    *,
    kind: str | None = None,
) -> EmbedToken:
    """See :meth:`flask_toucan.Toucan.issue_token`."""
    if kind is not None and permissions is not None:
        raise TypeError("pass either kind or permissions, not both")
    if kind is not None:
        return issue_for(kind, user).token
    user = _user_or_current(user)
    granted = get_state().mappers.map_permissions(user)
    perms: Permissions = granted
    if permissions is not None:
        perms = normalize_permissions(permissions, source="permissions")
        check_subset(perms, granted)
    return _mint(user, perms)


def issue_for(kind: str, user: ToucanUser | None = None) -> Issued:
    """The token a component ``kind`` needs (``dashboard``, ``chart``, ``assistant``).

    The permissions mapper runs once; :class:`PermissionDenied` means the
    user may not have this kind at all.
    """
    user = _user_or_current(user)
    state = get_state()
    perms = permissions_for_kind(state.mappers.map_permissions(user), kind)
    return Issued(_mint(user, perms, state), perms)


def can(kind: str, user: ToucanUser | None = None) -> bool:
    """Whether ``user`` (default: current) may have a ``kind`` token (``False`` while the store is down)."""
    try:
        found = user if user is not None else identity.current_user()
        if found is None:
            return False
        permissions_for_kind(get_state().mappers.map_permissions(found), kind)
    except ToucanError:
        return False
    return True


def _mint(user: ToucanUser, perms: Permissions, state: ToucanState | None = None) -> EmbedToken:
    """Mint for permissions already checked against the user's grants.

    One token per request per permission set (memoised on ``g``), then the
    cache across requests until near expiry.
    """
    memo = memo_for(user)
    memo_key = memo_key_of(user, canonical(perms)) if memo is not None else None
    if memo is not None:
        hit = memo.get(memo_key)
        if hit is not None and not hit.expired:
            return hit
    state = state if state is not None else get_state()
    token, cached = state.service.issue(mint_request(user, perms, state))
    if memo is not None:
        memo[memo_key] = token
    announce(user, token, cached)
    return token


def mint_request(user: ToucanUser, perms: Permissions, state: ToucanState | None = None) -> MintRequest:
    """The core's request for ``user`` and ``perms``: the attribute (and classic) mappers run here."""
    state = state if state is not None else get_state()
    config = state.config
    attributes = state.mappers.map_attributes(user, config.required_attributes, config.attribute_schema)
    classic = state.mappers.map_classic(user) if config.mode == "signed" else None
    return MintRequest(user, attributes, perms, classic)


def remember(
    user: ToucanUser, perms: Permissions, token: EmbedToken, at: identity.Here | None = None
) -> None:
    """Put a token fetched elsewhere (the refresh endpoint) into the per-request memo."""
    memo = memo_for(user, at)
    if memo is not None:
        memo[memo_key_of(user, canonical(perms))] = token


def announce(user: ToucanUser, token: EmbedToken, cached: bool, sender: Flask | None = None) -> None:
    """The ``token_issued`` signal, with the real app as sender (``sender``: the caller already has it).

    Sent whenever blinker has a receiver for it (``receivers``: connected to any sender,
    or to this app); with none connected, sending would call nobody, so the sender is
    not even looked up.
    """
    if not signals.token_issued.receivers:
        return
    signals.token_issued.send(
        sender if sender is not None else current_app._get_current_object(),  # type: ignore[attr-defined]
        user=user,
        token=token,
        cached=cached,
    )


#: A permission set as a sorted tuple: hashable, order-free (memo keys, scope names).
Canonical = tuple[tuple[str, tuple[tuple[str, bool], ...]], ...]


def canonical(perms: Mapping[str, Mapping[str, bool]]) -> Canonical:
    """``perms`` as a :data:`Canonical` tuple."""
    return tuple(sorted((r, tuple(sorted(f.items()))) for r, f in perms.items()))


def memo_key_of(user: ToucanUser, perms: Canonical) -> Any:
    """The per-request memo key of ``user``'s token for the permission set ``perms``."""
    return (user.id, perms)


def memo_for(user: ToucanUser, at: identity.Here | None = None) -> dict[Any, EmbedToken] | None:
    """This request's token memo, if ``user`` is the request's own user (``None`` otherwise).

    ``at``: the caller's :class:`~flask_toucan.identity.Here` (saves the ``g`` lookups).
    """
    # Memoised for the request's own user only: an explicit user object may
    # carry other claims (impersonation, tests) under the same identity.
    if at is None and not has_request_context():
        return None
    memo = g if at is None else at.memo
    if user is memo.get("_toucan_user"):
        tokens: dict[Any, EmbedToken] = memo.setdefault("_toucan_tokens", {})
        return tokens
    return None
