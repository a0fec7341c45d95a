"""``import flask_toucan`` loads only what every app uses (issue 11, item 8).

redis-py (a Redis store), the MCP SDK (the assistant) and joserfc (the
classic exchange, through Authlib's RFC 7523 module) are imported when
configured; ``limits`` never (the rate limit is a counter in the store). Checked in a fresh interpreter.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

OPTIONAL = ("limits", "redis", "mcp", "joserfc", "authlib", "flask_toucan.exchange")


def loaded_after(code: str) -> list[str]:
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", probe], check=True, capture_output=True, text=True, timeout=60, cwd=REPO_ROOT
    )
    modules = set(json.loads(out.stdout.strip().splitlines()[-1]))
    return [name for name in OPTIONAL if name in modules]


def test_import_flask_toucan_loads_no_optional_machinery() -> None:
    assert loaded_after("import flask_toucan") == []


def test_an_app_without_rate_limit_or_redis_loads_neither() -> None:
    code = """
from flask import Flask
from flask_toucan import Toucan
from tests.core.helpers import signed_config
app = Flask("x")
app.config.update(SECRET_KEY="k" * 32, TOUCAN_RATE_LIMIT=None, **signed_config())
Toucan(app)
"""
    loaded = loaded_after(code)
    assert "limits" not in loaded and "redis" not in loaded


def test_rate_limiting_on_imports_neither_limits_nor_redis() -> None:
    """The rate limit counts in the store (``ratelimit.py``): no library of its own to import."""
    code = """
from flask import Flask
from flask_toucan import Toucan
from tests.core.helpers import signed_config
app = Flask("x")
app.config.update(SECRET_KEY="k" * 32, TOUCAN_RATE_LIMIT="5/minute", **signed_config())
Toucan(app)
assert app.extensions["toucan"].limiter is not None
"""
    loaded = loaded_after(code)
    assert "limits" not in loaded and "redis" not in loaded
