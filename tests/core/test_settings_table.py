"""One settings table: it validates, it fills app.config's defaults, and the docs are rendered from it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from authlib.integrations.flask_client import OAuth
from flask import Flask

from flask_toucan import ConfigurationError, Toucan
from flask_toucan.config import ToucanConfig
from flask_toucan.settings import DEFAULTS, SETTINGS
from flask_toucan.settings_docs import DOC_FILES, TABLE_END, TABLE_START, markdown_table, render_into

from .helpers import API_KEY, SECRET_KEY

ROOT = Path(__file__).resolve().parents[2]


def api_app(**config):
    app = Flask("settings")
    app.config.update(SECRET_KEY=SECRET_KEY, TOUCAN_BASE_URL="http://127.0.0.1:9", TOUCAN_API_KEY=API_KEY)
    app.config.update(config)
    return app


@pytest.mark.parametrize("name", DOC_FILES)
def test_docs_tables_are_the_settings_table(name):
    text = (ROOT / name).read_text(encoding="utf-8")
    assert TABLE_START in text and TABLE_END in text
    assert render_into(text) == text, f"{name} drifted: run python -m flask_toucan.settings_docs --write"


def test_every_key_is_documented_once_in_the_table():
    table = markdown_table()
    keys = [s.key for s in SETTINGS]
    assert len(keys) == len(set(keys))
    for key in keys:
        assert table.count(f"\n| `{key}` |") == 1


def test_every_config_field_comes_from_a_row():
    fields = set(ToucanConfig._fields)
    assert fields == {s.field for s in SETTINGS if s.field is not None}


def test_the_config_is_read_only_and_spills_no_secret():
    """Not a tuple: iterating, indexing or serialising it cannot expose the API key."""
    app = api_app()
    Toucan(app)
    config = app.extensions["toucan"].config
    assert config.api_key == API_KEY and API_KEY not in repr(config) and API_KEY not in str(config)
    for spill in (list, tuple, dict, json.dumps, lambda c: c[2]):
        with pytest.raises(TypeError):
            spill(config)
    with pytest.raises(AttributeError):
        config.api_key = "changed"
    with pytest.raises(AttributeError):
        del config.mode
    with pytest.raises(TypeError, match="unknown fields"):
        ToucanConfig(mode="api", nonsense=1)


def test_defaults_are_visible_in_app_config():
    app = api_app()
    assert "TOUCAN_RATE_LIMIT" not in app.config
    Toucan(app)
    for key, default in DEFAULTS.items():
        assert key in app.config
    assert app.config["TOUCAN_RATE_LIMIT"] == "30/minute"
    assert app.config["TOUCAN_URL_PREFIX"] == "/toucan"
    assert app.config["TOUCAN_API_KEY"] == API_KEY  # a value the app set is kept


def test_bad_values_still_name_their_key():
    for key, value in [
        ("TOUCAN_HTTP_RETRIES", 9),
        ("TOUCAN_STORE_BREAKER_FAILURES", 0),
        ("TOUCAN_HTTP_TRUST_ENV", "yes"),
        ("TOUCAN_URL_PREFIX", "toucan/"),
    ]:
        with pytest.raises(ConfigurationError, match=key):
            Toucan(api_app(**{key: value}))


# --------------------------------------------------------------- OAuth client
def oauth_app(method=None, scope="openid email", **config):
    app = api_app(**config)
    oauth = OAuth(app)
    kwargs = {"scope": scope}
    if method:
        kwargs["code_challenge_method"] = method
    oauth.register(
        "idp",
        client_id="c",
        client_secret="s",
        client_kwargs=kwargs,
        authorize_url="https://idp.example/auth",
        access_token_url="https://idp.example/token",
    )
    return app, oauth


def test_pkce_is_set_once_at_init_app():
    app, oauth = oauth_app()
    Toucan(app, oauth=oauth)
    client = oauth.create_client("idp")
    assert client.client_kwargs["code_challenge_method"] == "S256"
    assert app.extensions["toucan"].oauth_client is client


def test_plain_pkce_refused_at_init_app():
    app, oauth = oauth_app(method="plain")
    with pytest.raises(ConfigurationError, match="S256"):
        Toucan(app, oauth=oauth)


def test_scope_without_openid_refused_at_init_app():
    app, oauth = oauth_app(scope="email")
    with pytest.raises(ConfigurationError, match="openid"):
        Toucan(app, oauth=oauth)


def test_unknown_client_name_refused_at_init_app():
    app, oauth = oauth_app(TOUCAN_OAUTH_CLIENT="other")
    with pytest.raises(ConfigurationError, match="TOUCAN_OAUTH_CLIENT names no registered client"):
        Toucan(app, oauth=oauth)


def test_two_clients_need_a_name():
    app, oauth = oauth_app()
    oauth.register("second", client_id="c2", client_secret="s2", client_kwargs={"scope": "openid"})
    with pytest.raises(ConfigurationError, match="2 are registered"):
        Toucan(app, oauth=oauth)
    app2, oauth2 = oauth_app(TOUCAN_OAUTH_CLIENT="idp")
    oauth2.register("second", client_id="c2", client_secret="s2", client_kwargs={"scope": "openid"})
    Toucan(app2, oauth=oauth2)
    assert app2.extensions["toucan"].oauth_client is oauth2.create_client("idp")


def test_unbound_oauth_registry_refused():
    app = api_app()
    oauth = OAuth()
    oauth.register("idp", client_id="c", client_secret="s", client_kwargs={"scope": "openid"})
    with pytest.raises(ConfigurationError, match="not bound to the app"):
        Toucan(app, oauth=oauth)
