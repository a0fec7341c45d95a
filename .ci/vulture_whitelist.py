"""Names vulture reports as unused that are used where it cannot look.

vulture (run by ``.ci/run``) reads Python only: it cannot see calls from Jinja
templates, from Authlib / werkzeug / sqlite3 (hooks and attributes they read),
or callback signatures whose parameters a protocol fixes. Each entry says
which. Keep this file short: a new entry needs one of these reasons; dead code
is deleted instead.
"""

# ruff: noqa
# mypy: ignore-errors
from vulture.whitelist_utils import Whitelist

_ = Whitelist()

# WSGI start_response(status, headers, exc_info=None) and signal handlers
# (signum, frame): the signature is the protocol's.
exc_info
signum
frame

# Called from templates/toucan/components.html (``_toucan_kit.scripts()``).
_.scripts
# Documents the placeholder reasons the templates render (components.py).
REASONS

# Authlib's AuthorizationServer calls these client / grant hooks (sandbox/classic.py).
_.check_client_secret
_.check_endpoint_auth_method
_.check_grant_type
_.get_allowed_scope
_.validate_token_request
TOKEN_ENDPOINT_AUTH_METHODS

# Attributes the standard library / werkzeug read.
_.row_factory  # sqlite3.Connection
_.direct_passthrough  # werkzeug Response
_.daemon_threads  # socketserver
_.protocol_version  # http.server
_.handle_starttag  # html.parser.HTMLParser
_.connected  # fakeredis.FakeServer: the tests switch the fake Redis off and on
_.log_message  # http.server.BaseHTTPRequestHandler
_.login_view  # flask_login.LoginManager reads it (docs/examples/flask_login_app.py)
do_GET  # http.server dispatches on the method name
do_POST

# PEP 562 module __getattr__ (flask_toucan/__init__.py): Python calls it for a
# missing attribute (the lazily imported Toucan, AssistantSession, verify_token).
__getattr__

# http.server's StreamRequestHandler reads wbufsize (bench/upstream.py: one write per answer).
_.wbufsize
_._toucan_provider_login  # g attribute set by views.callback, read by backchannel.record_login
