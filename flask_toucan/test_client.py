"""A test client that starts logged in, like Flask-Login's ``FlaskLoginClient``.

Lets users test their own templates and views without running an OpenID
provider::

    from flask_toucan.test_client import ToucanTestClient

    app.test_client_class = ToucanTestClient
    with app.test_client(user={"sub": "alice", "iss": "https://idp", "org": "acme"}) as client:
        client.get("/dashboard")

The login goes through :meth:`Toucan.login_user`, so the server-side session
record and the CSRF token are real; ``client.csrf_token`` holds the token the
refresh endpoint expects.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import session
from flask.testing import FlaskClient

from . import csrf, identity
from .state import SESSION_ID


class ToucanTestClient(FlaskClient):
    csrf_token: str | None = None

    def __init__(self, *args: Any, user: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if user is not None:
            self.login(user)

    def login(self, claims: Mapping[str, Any]) -> None:
        """Log ``claims`` in for this client (fresh session, as a real login does)."""
        app = self.application
        with app.test_request_context():
            identity.login_user(claims)
            data = dict(session)
            self.csrf_token = csrf.session_token()
        with self.session_transaction() as sess:
            sess.clear()
            sess.update(data)
        assert data.get(SESSION_ID)

    def logout(self) -> None:
        """Log out the way the app would (server-side record closed)."""
        app = self.application
        with self.session_transaction() as sess:
            data = dict(sess)
        with app.test_request_context():
            session.update(data)
            identity.logout_user()
        with self.session_transaction() as sess:
            sess.clear()
        self.csrf_token = None
