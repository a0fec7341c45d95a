"""Apps that own their login: call toucan.login_user(claims) / toucan.logout_user()."""

from __future__ import annotations

from flask import Flask, jsonify, redirect, request

from flask_toucan import Toucan

app = Flask(__name__)
app.config.update(
    SECRET_KEY="change-me-to-a-long-random-value",
    TOUCAN_BASE_URL="http://127.0.0.1:5100",
    TOUCAN_API_KEY="set-me",
)
toucan = Toucan(app)

USERS = {"alice": {"org": "acme", "region": "emea"}}  # your user store


@toucan.attribute("organization_id")
def organization(user):
    return USERS[user.subject]["org"]  # read at mint time: changes apply at the next refresh


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
