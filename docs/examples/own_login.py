"""Apps that own their login: call toucan.login_user(claims) / toucan.logout_user().

Run a sandbox (``python -m flask_toucan.sandbox``, it prints its API key), then::

    TOUCAN_API_KEY=<key> flask --app docs/examples/own_login run

and open http://127.0.0.1:5000/ (log in as alice, no password in this example).
"""

from __future__ import annotations

import os
import secrets

from flask import Flask, jsonify, redirect, render_template_string, request

from flask_toucan import Toucan

app = Flask(__name__)
app.config.update(
    SECRET_KEY=os.environ.get("SECRET_KEY") or secrets.token_hex(32),
    TOUCAN_BASE_URL=os.environ.get("TOUCAN_BASE_URL", "http://127.0.0.1:5100"),
    TOUCAN_API_KEY=os.environ.get("TOUCAN_API_KEY", "set-me"),
)
toucan = Toucan(app)

USERS = {"alice": {"org": "acme", "region": "emea"}}  # your user store


@toucan.attribute("organization_id")
def organization(user):
    return USERS[user.subject]["org"]  # read at mint time: changes apply at the next refresh


PAGE = """
{% from "toucan/components.html" import toucan_scripts, tc_dashboard %}
<!doctype html><title>Analytics</title>
{{ toucan_scripts() }}
{% if toucan.current_user %}
  <form method="post" action="/my-logout"><button>Log out {{ toucan.current_user.subject }}</button></form>
  {{ tc_dashboard("sales-overview", height=480) }}
{% else %}
  <form method="post" action="/my-login">
    <input name="username" value="alice" aria-label="user name"><button>Log in</button>
  </form>
{% endif %}
"""


@app.get("/")
def index():
    return render_template_string(PAGE, toucan=toucan)


@app.post("/my-login")
def my_login():
    username = request.form["username"]
    # ... check the password with your own system ...
    toucan.login_user({"sub": username, "iss": "https://my-app.example"})
    return redirect("/")


@app.post("/my-logout")
def my_logout():
    toucan.logout_user()
    return redirect("/")


@app.get("/whoami")
def whoami():
    user = toucan.current_user
    return jsonify(user=user.subject if user else None)
