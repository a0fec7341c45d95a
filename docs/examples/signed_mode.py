"""signed mode, the classic profile: sign the embed JWT, exchange it, publish the JWKS.

Self-hosted Toucan (docs-v3) exchanges the signed JWT at its realm token endpoint
(TOUCAN_EXCHANGE_URL) with the Embed Manager's client secret; only the opaque token
reaches the page. Without TOUCAN_EXCHANGE_URL the JWT itself goes to the page
("signed-direct"), which no Toucan product accepts: the sandbox and tests only.

Generate a key once, then run it (from the repository root)::

    flask --app docs/examples/signed_mode toucan keygen --out toucan-signing.pem
    flask --app docs/examples/signed_mode run

http://127.0.0.1:5000/toucan/.well-known/jwks.json then publishes the public key.
"""

from __future__ import annotations

import os
import secrets

from flask import Flask

from flask_toucan import Toucan

app = Flask(__name__)
app.config.update(
    SECRET_KEY=os.environ.get("SECRET_KEY") or secrets.token_hex(32),
    TOUCAN_MODE="signed",
    TOUCAN_BASE_URL="http://127.0.0.1:5100",
    TOUCAN_SIGNING_KEY=os.environ.get("TOUCAN_SIGNING_KEY", "toucan-signing.pem"),  # PEM text or a path
    TOUCAN_ISSUER="https://analytics.my-app.example",
    TOUCAN_AUDIENCE="toucan-embed",
    TOUCAN_TOKEN_TTL=300,
    # Rotation: publish the next key early; keep the old one verifying for a while.
    TOUCAN_SIGNING_KEY_NEXT=os.environ.get("TOUCAN_SIGNING_KEY_NEXT"),
    TOUCAN_SIGNING_KEY_FALLBACKS=[p for p in [os.environ.get("TOUCAN_SIGNING_KEY_OLD")] if p],
    # The realm token endpoint that swaps the JWT for an opaque token (RFC 7523, scope=embed),
    # e.g. https://toucan.example/api/auth/realms/<tenant>/protocol/openid-connect/token
    TOUCAN_EXCHANGE_URL=os.environ.get("TOUCAN_EXCHANGE_URL"),
    TOUCAN_EXCHANGE_CLIENT_SECRET=os.environ.get("TOUCAN_EXCHANGE_CLIENT_SECRET"),
)
toucan = Toucan(app)


@toucan.attribute("organization_id")
def organization(user):
    return user["org"]


@toucan.privileges
def privileges(user):
    """embed_context.privileges: app id -> privilege names (default: none)."""
    return {"sales-app": ["view"]}
