"""Store tests: the OpenID Connect login fixtures, for the callback-during-an-outage test."""

from ..core.oidc_fixtures import idp_user, make_host  # noqa: F401 - pytest fixtures
