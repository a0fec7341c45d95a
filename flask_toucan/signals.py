"""Blinker signals, sent with the real app (``current_app._get_current_object()``) as sender.

* ``user_logged_in``  — kwargs ``user`` (:class:`ToucanUser`)
* ``user_logged_out`` — kwargs ``user`` (may be ``None`` if nobody was logged in)
* ``token_issued``    — kwargs ``user``, ``token`` (:class:`EmbedToken`, value redacted in repr),
  ``cached`` (``True`` when served from the cache)
"""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

user_logged_in = _signals.signal("toucan-user-logged-in")
user_logged_out = _signals.signal("toucan-user-logged-out")
token_issued = _signals.signal("toucan-token-issued")
