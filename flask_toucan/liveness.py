"""Whether a login read from the store still stands: timeouts, activity, the provider's word.

:mod:`flask_toucan.identity` reads the login record (alone, or in the page's
one store round trip) and hands it here with the cookie's candidate user.
:func:`confirm` then, in this order:

1. judges the record (:mod:`flask_toucan.logins`): absent, another identity,
   past ``TOUCAN_SESSION_LIFETIME`` or idle for ``TOUCAN_SESSION_IDLE_TIMEOUT``
   means no user (the last two leave the reason on ``g`` for the 401's body);
2. asks the identity provider again when ``TOUCAN_IDP_REVALIDATE`` has passed
   (:mod:`flask_toucan.revalidation`; one worker at a time per login, by a
   short ``add``-lock in the store); a refusal deletes the record: the login
   ends on every worker;
3. records an *activity* when the caller says there was one (a page rendering
   the kit, the refresh script's ping after user interaction) and the recorded
   one is a step old; the refresh script's timed refreshes pass ``activity=False``.

The record is the store's, so every worker judges it alike; times come from
``state.sessions.clock`` (tests move it without sleeping).
"""

from __future__ import annotations

import logging
from typing import Any

from . import logins, revalidation
from .exceptions import AuthenticationRequired, SessionExpired, StoreUnavailable
from .state import ToucanState, subject_key
from .user import ToucanUser

log = logging.getLogger("flask_toucan")

#: ``TOUCAN_IDP_REVALIDATE`` when left at ``None`` and the provider issued a refresh token.
DEFAULT_REVALIDATE = 300
#: Seconds the revalidation lock lives if its holder dies mid-call (the call's own timeout is 5 s).
LOCK_TTL = 30
#: Where the reason a login ended is left on ``g`` for the rest of the request.
ENDED = "_toucan_ended"

_MESSAGES = {
    logins.IDLE: "the session expired after a period of inactivity; log in again",
    logins.LIFETIME: "the session reached its maximum lifetime; log in again",
    "revoked": "the identity provider ended the session; log in again",
}


def revalidate_every(state: ToucanState) -> int:
    """Seconds between two revalidations of a login that kept a refresh token (0: never)."""
    every = state.config.idp_revalidate
    return DEFAULT_REVALIDATE if every is None else every


def confirm(
    state: ToucanState, memo: Any, sid: str, user: ToucanUser, record: Any, *, activity: bool = False
) -> ToucanUser | None:
    """``user`` if ``record`` (read for ``sid``) keeps them logged in, else ``None``.

    Raises :class:`~flask_toucan.exceptions.UpstreamError` when the provider
    must be asked and cannot answer.
    """
    sessions = state.sessions
    verdict = sessions.status(record, subject_key(user))
    if verdict != logins.ACTIVE:
        if verdict != logins.ABSENT:
            setattr(memo, ENDED, verdict)
        return None
    now = sessions.clock()
    changes: dict[str, Any] = {}
    if logins.revalidation_due(record, now, revalidate_every(state)):
        confirmed = _revalidate(state, memo, sid, user)
        if confirmed is None:
            return None
        if confirmed:
            changes["v"] = now
    if activity and logins.needs_activity_write(record, now, sessions.policy):
        changes["a"] = now
    if changes:
        try:
            sessions.write(sid, {**record, **changes})
        except StoreUnavailable as exc:  # the user was read: the next request writes again
            log.warning("flask-toucan: login record not updated: %s", exc.message)
    return user


def _revalidate(state: ToucanState, memo: Any, sid: str, user: ToucanUser) -> bool | None:
    """Ask the provider: ``True`` it confirmed, ``False`` another request is asking right
    now (its answer will do), ``None`` it refused (the record is deleted, ``memo`` says why)."""
    sessions, store = state.sessions, state.store
    lock = sessions.lock_prefix + sid
    if not store.add(lock, 1, timeout=LOCK_TTL):
        return False
    try:
        kept = sessions.provider_tokens(sid)
        if not isinstance(kept, dict) or state.oauth_client is None:
            raise revalidation.Revoked("the provider's tokens are gone")
        renewed = revalidation.revalidate(state.oauth_client, kept, user.subject, user.issuer)
    except revalidation.Revoked as exc:
        log.info("flask-toucan: login ended: %s", exc)
        _end(state, sid)
        setattr(memo, ENDED, "revoked")
        return None
    finally:
        store.delete(lock)
    sessions.keep_provider_tokens(sid, renewed)
    return True


def _end(state: ToucanState, sid: str) -> None:
    try:
        state.sessions.close(sid)
    except StoreUnavailable as exc:  # the next request asks the provider again, and hears the same
        log.warning("flask-toucan: ended login not deleted: %s", exc.message)


def ended_error(memo: Any) -> AuthenticationRequired:
    """The 401 to answer for no user: :class:`SessionExpired` (with its reason) if the login ended here."""
    reason = memo.get(ENDED)
    if reason in _MESSAGES:
        return SessionExpired(_MESSAGES[reason], reason=reason)
    return AuthenticationRequired("the session has ended; log in again")
