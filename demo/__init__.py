"""The flask-toucan demo: a multi-tenant analytics portal (``python -m demo``).

``demo.app.create_app`` is the portal alone; ``demo.stack.DemoStack`` runs it
with a local OpenID provider and the Toucan sandbox. See docs/demo.md.
"""

from __future__ import annotations

from .app import create_app

__all__ = ["create_app"]
