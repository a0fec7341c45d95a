"""Fixtures of the sandbox tests (``toucan_sandbox*`` come from flask_toucan.testing).

Plain helpers (token requests, minting over HTTP, direct SQL) are in helpers.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from flask_toucan.sandbox import create_app


@pytest.fixture
def app_client() -> Any:
    """In-process sandbox (no server): fast for the request-level tests."""
    app = create_app()
    return app, app.test_client(), app.extensions["toucan_sandbox"]
