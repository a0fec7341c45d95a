"""Shared builders for the core tests."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from flask import Flask

from flask_toucan import Toucan
from flask_toucan.keys import generate_private_key_pem

API_KEY = "tk_live_SECRET_api_key_0123456789abcdef"
SECRET_KEY = "test-secret-key-0123456789abcdef0123456789"


@lru_cache(maxsize=8)
def rsa_pem(n: int = 0, bits: int = 2048) -> str:
    """A cached RSA key per index (key generation is slow)."""
    return generate_private_key_pem("RSA", bits).decode()


def make_app(toucan: Toucan | None = None, **config: Any) -> tuple[Flask, Toucan]:
    app = Flask(f"host-{id(config)}")
    app.config.update(
        SECRET_KEY=SECRET_KEY,
        TESTING=True,
        TOUCAN_BASE_URL="http://127.0.0.1:9",
        TOUCAN_API_KEY=API_KEY,
    )
    app.config.update(config)
    toucan = toucan or Toucan()

    @toucan.attribute("organization_id")
    def _org(user: Any) -> Any:
        return user["org"]

    toucan.init_app(app)
    return app, toucan


def signed_config(**extra: Any) -> dict[str, Any]:
    cfg = {
        "TOUCAN_MODE": "signed",
        "TOUCAN_SIGNING_KEY": rsa_pem(0),
        "TOUCAN_ISSUER": "https://host.example",
        "TOUCAN_AUDIENCE": "toucan-embed",
    }
    cfg.update(extra)
    return cfg
