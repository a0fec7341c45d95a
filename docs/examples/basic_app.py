"""Basic usage: OpenID Connect login through Authlib, api mode, two mappers.

Run it offline, from the repository root, in three terminals
(``pip install -e '.[demo]'``):

    python -m flask_toucan.sandbox    # a stand-in for Toucan: prints TOUCAN_API_KEY
    python -m demo.provider           # the demo's OpenID provider: prints OIDC_CLIENT_SECRET
    TOUCAN_API_KEY=<key> OIDC_CLIENT_SECRET=<secret> flask --app docs/examples/basic_app run

then open http://127.0.0.1:5000/, log in as alice / alice-demo-pass (the provider prints
the other users). The defaults below are those two servers' default addresses; against
your own provider and Toucan instance set TOUCAN_BASE_URL, OIDC_METADATA_URL and
OIDC_CLIENT_ID too. Its users' tenant is a group named ``org:<id>`` (scope ``groups``), the
region the standard ``address`` claim: see docs/demo.md.
"""

from __future__ import annotations

import os
import secrets

from authlib.integrations.flask_client import OAuth
from flask import Flask, render_template_string

from flask_toucan import Toucan

app = Flask(__name__)
app.config.update(
    SECRET_KEY=os.environ.get("SECRET_KEY") or secrets.token_hex(32),
    TOUCAN_BASE_URL=os.environ.get("TOUCAN_BASE_URL", "http://127.0.0.1:5100"),
    TOUCAN_API_KEY=os.environ.get("TOUCAN_API_KEY", "set-me"),
)
oauth = OAuth(app)
oauth.register(
    "idp",
    server_metadata_url=os.environ.get(
        "OIDC_METADATA_URL", "http://127.0.0.1:5001/.well-known/openid-configuration"
    ),
    client_id=os.environ.get("OIDC_CLIENT_ID", "my-client"),
    client_secret=os.environ.get("OIDC_CLIENT_SECRET", "set-me"),
    client_kwargs={"scope": "openid email profile groups address"},
)
toucan = Toucan(app, oauth=oauth)


@toucan.attribute("organization_id")
def organization(user):
    # Exactly one "org:<id>" group; None is a refusal: no token without a tenant.
    orgs = [g[4:] for g in user.get("groups", []) if g.startswith("org:")]
    return orgs[0] if len(orgs) == 1 else None


@toucan.attribute("region")
def region(user):
    return (user.get("address") or {}).get("region")


@toucan.permissions
def permissions(user):
    grants = {"dashboard": {"can_view": True}}
    if "analysts" in user.get("groups", []):
        grants["ai"] = {"can_query": True}
    return grants


PAGE = """
{% from "toucan/components.html" import toucan_scripts, tc_dashboard, tc_ai_assistant %}
<!doctype html><title>Analytics</title>
{{ toucan_scripts() }}
{% if toucan.current_user %}
  <form method="post" action="{{ url_for('toucan.logout') }}">
    <input type="hidden" name="csrf_token" value="{{ toucan.csrf_token() }}"><button>Log out</button>
  </form>
{% else %}<a href="{{ url_for('toucan.login', next=request.path) }}">Log in</a>{% endif %}
{{ tc_dashboard("sales-overview", height=480) }}
{{ tc_ai_assistant() }}
"""


@app.get("/")
def index():
    return render_template_string(PAGE, toucan=toucan)
