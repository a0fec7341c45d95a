"""Who is logged in: ``login_user`` / ``logout_user`` / ``current_user``.

Two sources of identity, tried in this order:

1. toucan's own login (the blueprint's OpenID Connect callback, or
   ``toucan.login_user(claims)``): a small claims dict in the Flask session and
   a server-side session record, so a logout or an expiry ends replayed cookies;
2. the app's own login manager through ``@toucan.claims_loader`` (Flask-Login):
   the loader returns the claims of *its* current user on every request. No
   second session record is kept: the Flask session only gets a random id
   (``_toucan_sid``, what CSRF tokens and the rate limit are bound to) and a
   digest of the (issuer, subject) it was issued for (``_toucan_subject``), so a
   different user in the same browser session gets a fresh id. When the
   loader returns ``None`` (Flask-Login logged out) there is no user, and the
   refresh endpoint answers 401 like after ``toucan.logout_user()``.

``current_toucan_user`` is a :class:`~werkzeug.local.LocalProxy` to the result,
also a template variable (like Flask-Login's ``current_user``). It proxies
``None`` when nobody is logged in: test it with ``{% if current_toucan_user %}``,
not ``is none``.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Mapping
from typing import Any

from flask import Flask, current_app, g, has_request_context, session
from werkzeug.local import LocalProxy

from . import liveness, revalidation, signals
from .exceptions import LoginError, StoreUnavailable, ToucanError
from .state import DEFAULT_ISSUER, SESSION_ID, SESSION_USER, ToucanState, get_state, subject_key
from .store import user_tag
from .user import MAX_SESSION_CLAIMS_BYTES, PROTOCOL_CLAIMS, ToucanUser

#: Session key of the claims-loader path: which identity the session id was issued for.
SESSION_SUBJECT = "_toucan_subject"


def user_from_claims(state: ToucanState, claims: Mapping[str, Any], issuer: str | None = None) -> ToucanUser:
    """A :class:`ToucanUser` keyed on (issuer, subject), keeping only the claims worth keeping."""
    subject = claims.get("sub")
    iss = issuer or claims.get("iss") or DEFAULT_ISSUER
    if not isinstance(subject, str) or not subject:
        raise LoginError("the identity has no 'sub' claim")
    if not isinstance(iss, str):
        raise LoginError("the identity's issuer is not a string")
    keep = state.config.session_claims
    kept = {k: v for k, v in claims.items() if (k in keep if keep is not None else k not in PROTOCOL_CLAIMS)}
    if len(json.dumps(kept, default=str)) > MAX_SESSION_CLAIMS_BYTES:
        raise LoginError(
            "the identity's claims are too large for the session; "
            "list the ones mappers need in TOUCAN_SESSION_CLAIMS"
        )
    return ToucanUser(iss, subject, kept)


def login_user(
    claims: Mapping[str, Any], *, issuer: str | None = None, provider_token: Mapping[str, Any] | None = None
) -> ToucanUser:
    """Log a user in from identity claims (``sub`` required; ``iss`` or ``issuer``).

    Clears and rotates the session (no fixation: the pre-login record is
    deleted and the new one gets a new random id), opens a server-side session
    record, and keeps only a small set of claims. ``provider_token``: the
    provider's token response (the blueprint's callback); its refresh token is
    kept server-side, in the store, to revalidate the login
    (``TOUCAN_IDP_REVALIDATE``), never in the cookie.
    """
    state = get_state()
    user = user_from_claims(state, claims, issuer)
    kept = None
    if provider_token is not None and liveness.revalidate_every(state) > 0:
        kept = revalidation.kept_tokens(provider_token)
    state.sessions.close(session.get(SESSION_ID))
    session.clear()
    session[SESSION_ID] = state.sessions.open(subject_key(user), kept)
    session[SESSION_USER] = user.to_session()
    g._toucan_user = user
    g.pop(liveness.ENDED, None)
    g.pop("_toucan_tokens", None)
    g.pop("_toucan_page", None)
    g.pop("_toucan_csrf", None)
    signals.user_logged_in.send(current_app._get_current_object(), user=user)  # type: ignore[attr-defined]
    return user


def logout_user() -> None:
    """End toucan's login: the server-side record goes, so replayed cookies stop working.

    With a claims loader, log out through the app's own manager
    (``flask_login.logout_user()``): the loader then returns ``None``.
    """
    state = get_state()
    user = current_user()
    state.sessions.close(session.get(SESSION_ID))
    for key in (SESSION_ID, SESSION_USER, SESSION_SUBJECT):
        session.pop(key, None)
    g._toucan_user = None
    g.pop("_toucan_tokens", None)
    g.pop("_toucan_page", None)
    g.pop("_toucan_csrf", None)
    signals.user_logged_out.send(current_app._get_current_object(), user=user)  # type: ignore[attr-defined]


def current_user() -> ToucanUser | None:
    """The logged-in user, or ``None`` (also after logout, even with an old cookie).

    Raises :class:`StoreUnavailable` when the session record cannot be read
    (the store is down): neither "logged in" (fail closed) nor "logged out"
    (which would send the user to a login that cannot work, and end the
    page's refresh loop with a 401). Component macros turn it into the
    ``unavailable`` placeholder, the refresh endpoint into a 503 with
    ``Retry-After``, any other view into an HTML 503 page. One attempt per
    request: the answer (or the failure) is remembered on ``g``.
    """
    if not has_request_context():
        return None
    if "_toucan_user" in g:
        cached: ToucanUser | None = g._toucan_user
        return cached
    if "_toucan_user_error" in g:
        raise g._toucan_user_error
    state = get_state()
    try:
        user = _session_user(state) if SESSION_USER in session else _loaded_user(state)
    except ToucanError as exc:  # the store, or the identity provider when it had to be asked
        g._toucan_user_error = exc
        raise
    g._toucan_user = user
    return user


class Pending:
    """A user not yet confirmed: the store record to read, and what it must hold.

    Lets a caller fold the session lookup into the same store round trip as
    other reads (:mod:`flask_toucan.page`: session record + tokens in one
    ``get_many``). ``record_key is None``: nothing to read, ``user`` is final.
    A plain slotted class: a NamedTuple compiles code at import (bench row 7b).
    """

    __slots__ = ("record_key", "sid", "state", "user")

    def __init__(
        self,
        user: ToucanUser | None,
        record_key: str | None = None,
        sid: str | None = None,
        state: ToucanState | None = None,
    ) -> None:
        self.user = user
        self.record_key = record_key
        self.sid = sid
        self.state = state


class Here:
    """This request's ``g`` and session objects, for a caller that reads them many times.

    Each access through the ``flask.g`` / ``flask.session`` proxies costs a
    context-variable lookup; the component kit makes a dozen per page.
    """

    __slots__ = ("memo", "session")

    def __init__(self, memo: Any, session: Any) -> None:
        self.memo = memo
        self.session = session


def here() -> Here:
    """The current request's :class:`Here` (inside a request context only)."""
    return Here(g._get_current_object(), session._get_current_object())  # type: ignore[attr-defined]


def begin(state: ToucanState | None = None, at: Here | None = None) -> Pending:
    """The current user if already known, else the cookie's candidate and the record to check.

    Raises :class:`StoreUnavailable` like :func:`current_user` when an earlier
    attempt in this request failed. ``state`` and ``at``: the caller's, saves lookups.
    """
    if not has_request_context():
        return Pending(current_user())
    where = at if at is not None else here()
    memo, cookies = where.memo, where.session
    if "_toucan_user" in memo or "_toucan_user_error" in memo:
        return Pending(current_user())
    cookie = cookies.get(SESSION_USER)
    if cookie is None:
        return Pending(current_user())  # the claims loader: no store read
    state = state if state is not None else get_state()
    user = ToucanUser.from_session(cookie)
    sid = cookies.get(SESSION_ID)
    if user is None or not isinstance(sid, str) or not sid:
        memo._toucan_user = None
        return Pending(None)
    return Pending(user, state.sessions.prefix + sid, sid, state)


def settle(
    pending: Pending, record: Any, at: Here | None = None, *, activity: bool = False
) -> ToucanUser | None:
    """Confirm (or not) the candidate with the record read for it; remembered for the request.

    ``activity``: this request is user activity (a page rendering the kit),
    which keeps the login from its idle timeout (:mod:`flask_toucan.liveness`).
    Raises what :func:`liveness.confirm` raises (the provider down), remembered too.
    """
    if pending.record_key is None or pending.user is None:
        return pending.user
    memo = at.memo if at is not None else g
    assert pending.state is not None and pending.sid is not None
    try:
        user = liveness.confirm(pending.state, memo, pending.sid, pending.user, record, activity=activity)
    except ToucanError as exc:
        memo._toucan_user_error = exc
        raise
    memo._toucan_user = user
    return user


def fail(exc: StoreUnavailable) -> None:
    """The store could not confirm the user: :func:`current_user` re-raises for the rest of the request."""
    g._toucan_user_error = exc


def _session_user(state: ToucanState) -> ToucanUser | None:
    """toucan's own login: valid only while its server-side record is open."""
    user = ToucanUser.from_session(session.get(SESSION_USER))
    sid = session.get(SESSION_ID)
    if user is None or not isinstance(sid, str) or not sid:
        return None
    record = state.store.get(state.sessions.prefix + sid)
    return liveness.confirm(state, g, sid, user, record)


def _loaded_user(state: ToucanState) -> ToucanUser | None:
    """The app's own login, through ``@toucan.claims_loader`` (no server-side record)."""
    loader = state.hooks.claims_loader
    claims = loader() if loader is not None else None
    if not claims:
        return None
    user = user_from_claims(state, claims)
    digest = hashlib.sha256(f"flask-toucan.subject:{subject_key(user)}".encode()).hexdigest()
    if session.get(SESSION_SUBJECT) != digest or not isinstance(session.get(SESSION_ID), str):
        # Another identity (or none) had this browser session: a fresh id, so CSRF
        # tokens and rate-limit counters of the previous user do not carry over. It starts
        # with the user's hash tag, as a login record's id does: on a Redis Cluster the
        # rate-limit counter keyed by it shares the slot of the user's tokens (one round trip).
        session[SESSION_ID] = user_tag(subject_key(user)) + secrets.token_urlsafe(32)
        session[SESSION_SUBJECT] = digest
    return user


#: ``current_toucan_user``: the current user (or ``None``) for views and templates.
current_toucan_user: Any = LocalProxy(current_user)


def _context_processor() -> dict[str, Any]:
    # The proxy, not its value: a template that never uses it costs no store read.
    return {"current_toucan_user": current_toucan_user}


def init_app(app: Flask) -> None:
    """Make ``current_toucan_user`` a template variable."""
    app.context_processor(_context_processor)
