"""signed mode: the app signs the embed JWT and publishes its JWKS (self-hosted Toucan).

Generate a key once:  flask --app docs/examples/signed_mode toucan keygen --out toucan-signing.pem
"""

from __future__ import annotations

import os

from flask import Flask

from flask_toucan import Toucan

app = Flask(__name__)
app.config.update(
    SECRET_KEY="change-me-to-a-long-random-value",
    TOUCAN_MODE="signed",
    TOUCAN_BASE_URL="http://127.0.0.1:5100",
    TOUCAN_SIGNING_KEY=os.environ.get("TOUCAN_SIGNING_KEY", "toucan-signing.pem"),  # PEM text or a path
    TOUCAN_ISSUER="https://analytics.my-app.example",
    TOUCAN_AUDIENCE="toucan-embed",
    TOUCAN_TOKEN_TTL=300,
    # Rotation: publish the next key early; keep the old one verifying for a while.
    TOUCAN_SIGNING_KEY_NEXT=os.environ.get("TOUCAN_SIGNING_KEY_NEXT"),
    TOUCAN_SIGNING_KEY_FALLBACKS=[p for p in [os.environ.get("TOUCAN_SIGNING_KEY_OLD")] if p],
    # Where the deployment swaps the JWT for an opaque token (RFC 7523), if it asks for it:
    TOUCAN_EXCHANGE_URL=os.environ.get("TOUCAN_EXCHANGE_URL"),
)
toucan = Toucan(app)


@toucan.attribute("organization_id")
def organization(user):
    return user["org"]
