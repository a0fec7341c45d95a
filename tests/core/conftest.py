"""Fixtures shared by the core tests."""

from __future__ import annotations

# The OpenID Connect login fixtures (Canaille via pytest-iam + a served host app).
from .oidc_fixtures import idp_user, make_host  # noqa: F401 - pytest fixtures
