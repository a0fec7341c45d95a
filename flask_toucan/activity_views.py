"""``POST {prefix}/activity``: the refresh script's ping after real user interaction.

What keeps a login from its idle timeout (``TOUCAN_SESSION_IDLE_TIMEOUT``) is
*activity*: a page view that renders the component kit, or this ping. The
refresh script sends it only when the user moved the pointer, typed, scrolled,
touched or brought the tab back since its last ping, at most once per
``data-toucan-activity-every`` seconds; its own timer-driven token refreshes
(``POST {prefix}/token``) never count, so a tab nobody looks at stops getting
tokens once the idle timeout has passed.

Guarded like the refresh endpoint: same origin, a live login, the session's
CSRF token, the per-session rate limit (its own counter). Answers
``{"active": true}``; 401 ``session_expired`` (with its ``reason``) once the
login has ended.
"""

from __future__ import annotations

from flask import Blueprint, g, jsonify, session
from werkzeug.wrappers import Response

from . import liveness, views
from .state import SESSION_ID, SESSION_USER, get_state

ACTIVITY_BUCKET = "toucan-activity"


def add_routes(bp: Blueprint) -> None:
    bp.add_url_rule("/activity", "activity", activity, methods=["POST"])


def activity() -> Response:
    user = views.checked_post(ACTIVITY_BUCKET, "too many activity pings; slow down")
    views.small_json_body()  # bounded, strict (an empty body is the usual one)
    sid = session.get(SESSION_ID)
    if SESSION_USER in session and isinstance(sid, str):  # toucan's own login (a claims loader: the app's)
        state = get_state()
        record = state.store.get(state.sessions.prefix + sid)
        if liveness.confirm(state, g, sid, user, record, activity=True) is None:
            raise liveness.ended_error(g)
    response = jsonify({"active": True})
    response.headers["Cache-Control"] = "no-store"
    return response
