"""OpenID Connect RP-Initiated Logout 1.0: ``POST {prefix}/logout`` also ends the provider's session.

When ``TOUCAN_RP_INITIATED_LOGOUT`` is on (the default), the login came through the
blueprint's callback (so its id_token is kept server-side with the login record,
:mod:`flask_toucan.sessions`; never in the cookie) and the provider's metadata
publishes an ``end_session_endpoint``, the logout redirects there with
``id_token_hint``, ``client_id``, ``post_logout_redirect_uri`` and a random
``state``. The provider sends the browser back to ``post_logout_redirect_uri``:
``{prefix}/logged-out`` (register it at the provider) or
``TOUCAN_POST_LOGOUT_REDIRECT_URI``; that view checks ``state`` and goes on to the
logout's safe ``next``. Otherwise (no id_token, no endpoint, the provider's
metadata unreachable) the logout stays local, as before: never an error page.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

import requests
from authlib.common.urls import add_params_to_uri
from flask import session, url_for

from .sessions import LoginIndex
from .state import SESSION_ID, ToucanState

log = logging.getLogger("flask_toucan")

#: Session key (after logout) of the pending provider logout: its ``state`` and where to go next.
SESSION_LOGOUT = "_toucan_logout"


def provider_logout(state: ToucanState) -> tuple[str, str] | None:
    """The provider's end-session URL and its ``state`` for the current login, or ``None``.

    Read before the local logout (the login's details go with it); the details are dropped.
    """
    client = state.oauth_client
    if not state.config.rp_initiated_logout or client is None:
        return None
    logins = LoginIndex(state.store, state.sessions)
    login_id = session.get(SESSION_ID)
    details = logins.details(login_id)
    logins.forget(login_id)
    id_token = details.get("id_token") if details is not None else None
    if not isinstance(id_token, str) or not id_token:
        return None
    try:
        metadata: Any = client.load_server_metadata()
    except requests.RequestException:
        log.info("flask-toucan: the provider's metadata is unreachable; logout stays local")
        return None
    endpoint = metadata.get("end_session_endpoint")
    if not isinstance(endpoint, str) or not endpoint.startswith(("https://", "http://")):
        return None
    nonce = secrets.token_urlsafe(24)
    back = state.config.post_logout_redirect_uri or url_for("toucan.logged_out", _external=True)
    params = {
        "id_token_hint": id_token,
        "client_id": client.client_id,
        "post_logout_redirect_uri": back,
        "state": nonce,
    }
    return add_params_to_uri(endpoint, params), nonce
