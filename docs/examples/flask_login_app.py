"""An app that already has Flask-Login: toucan reads its user through ``@toucan.claims_loader``.

No second login, no ``toucan.login_user`` call: the claims loader hands toucan
the identity of ``flask_login.current_user`` on each request, and
``flask_login.logout_user()`` ends the page's token refreshes (the refresh
endpoint answers 401, the page's script stops).

Run it against the sandbox (two terminals)::

    python -m flask_toucan.sandbox --port 5100 --api-key dev-key
    TOUCAN_BASE_URL=http://127.0.0.1:5100 TOUCAN_API_KEY=dev-key \\
        flask --app docs/examples/flask_login_app.py run --port 5000

then open http://127.0.0.1:5000/ and log in as ``alice`` / ``alice-password``
(tenant acme) or ``bob`` / ``bob-password`` (tenant globex).
"""

from __future__ import annotations

import hmac
import os
import secrets
from typing import Any

from flask import Flask, redirect, render_template_string, request, url_for
from flask_login import LoginManager, UserMixin, current_user, login_required, login_user, logout_user

from flask_toucan import Toucan

#: Your user store (a database in a real app). Passwords in clear only in an example.
USERS = {
    "alice": {"password": "alice-password", "org": "acme", "region": "emea"},
    "bob": {"password": "bob-password", "org": "globex", "region": "amer"},
}

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Analytics</title>
{% from "toucan/components.html" import toucan_scripts, tc_dashboard %}
{{ toucan_scripts() }}</head>
<body>
<p>Signed in as {{ current_user.id }} (toucan sees {{ current_toucan_user.subject }})</p>
<form method="post" action="{{ url_for('logout') }}"><button id="logout">Log out</button></form>
{{ tc_dashboard("sales-overview", id="dash", height=320) }}
</body></html>"""

LOGIN = """<!doctype html>
<html><head><meta charset="utf-8"><title>Log in</title></head><body>
<form method="post">
  <input name="username" id="username"> <input name="password" id="password" type="password">
  <button id="submit">Log in</button>
</form>{% if error %}<p>{{ error }}</p>{% endif %}
</body></html>"""


class User(UserMixin):
    def __init__(self, username: str) -> None:
        self.id = username


def create_app(**config: Any) -> Flask:
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=os.environ.get("SECRET_KEY") or secrets.token_hex(32),
        TOUCAN_BASE_URL=os.environ.get("TOUCAN_BASE_URL", "http://127.0.0.1:5100"),
        TOUCAN_API_KEY=os.environ.get("TOUCAN_API_KEY", "dev-key"),
    )
    app.config.update(config)

    login_manager = LoginManager(app)
    login_manager.login_view = "login"

    @login_manager.user_loader
    def load_user(user_id: str) -> User | None:
        return User(user_id) if user_id in USERS else None

    toucan = Toucan(app)

    @toucan.claims_loader
    def claims() -> dict[str, Any] | None:
        # Called when there is no toucan login: the Flask-Login user's identity, or None.
        if not current_user.is_authenticated:
            return None
        return {"sub": current_user.id, "iss": "https://my-app.example"}

    @toucan.attribute("organization_id")
    def organization(user: Any) -> str:
        return USERS[user.subject]["org"]  # read at mint time: changes apply at the next refresh

    @app.route("/login", methods=["GET", "POST"])
    def login() -> Any:
        error = None
        if request.method == "POST":
            name = request.form.get("username", "")
            password = request.form.get("password", "").encode()
            user = USERS.get(name)
            if user is not None and hmac.compare_digest(password, user["password"].encode()):
                login_user(User(name))
                return redirect(url_for("index"))
            error = "wrong user name or password"
        return render_template_string(LOGIN, error=error)

    @app.post("/logout")
    @login_required
    def logout() -> Any:
        logout_user()  # Flask-Login's: the page's next token refresh gets a 401 and stops
        return redirect(url_for("login"))

    @app.get("/")
    @login_required
    def index() -> str:
        return render_template_string(PAGE)

    return app


app = create_app()
