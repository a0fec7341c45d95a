"""``token_issued`` reaches every receiver connected at the time of the mint (none skipped).

The issuing path skips the send only when blinker itself has no receiver at all
for the signal; each test fails if that shortcut went stale (a receiver
connected after earlier mints) or were taken while a receiver listens.
"""

from __future__ import annotations

from typing import Any

from flask_toucan import signals
from flask_toucan.user import ToucanUser

from .helpers import make_app, signed_config


def _app() -> tuple[Any, Any]:
    app, toucan = make_app(**signed_config())
    return app, toucan


def test_a_receiver_connected_after_mints_hears_the_next() -> None:
    app, toucan = _app()
    heard: list[tuple[Any, dict[str, Any]]] = []

    user = ToucanUser("https://idp.test", "alice", {"sub": "alice", "iss": "https://idp.test", "org": "acme"})
    with app.app_context():  # an explicit user: no per-request memo, every call mints
        toucan.issue_token(user, kind="dashboard")  # nobody listens yet

        def receiver(sender: Any, **kwargs: Any) -> None:
            heard.append((sender, kwargs))

        with signals.token_issued.connected_to(receiver, sender=app):
            toucan.issue_token(user, kind="dashboard")
        toucan.issue_token(user, kind="dashboard")  # disconnected again
    assert len(heard) == 1
    sender, kwargs = heard[0]
    assert sender is app and kwargs["user"] is user and kwargs["cached"] in (True, False)


def test_a_receiver_for_any_sender_hears_it() -> None:
    app, toucan = _app()
    heard: list[Any] = []

    def receiver(sender: Any, **kwargs: Any) -> None:
        heard.append(sender)

    user = ToucanUser("https://idp.test", "bob", {"sub": "bob", "iss": "https://idp.test", "org": "acme"})
    with app.app_context(), signals.token_issued.connected_to(receiver):
        toucan.issue_token(user, kind="dashboard")
    assert heard == [app]
