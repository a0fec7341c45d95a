"""Import only what is used (issue 11, item 8).

``import flask_toucan`` loads the exceptions, ``EmbedToken``, ``ToucanUser``
and the signals. ``from flask_toucan import Toucan`` adds what building and
``init_app``-ing a ``Toucan`` needs, nothing more: redis-py (a Redis store),
the MCP SDK and views (the assistant), joserfc's exchange, the CLI's command
bodies, the headless client, the sandbox, the key machinery of signed mode,
cachelib and the cold page's thread pool load when
configured or first used; ``limits`` never (the rate limit is a counter in
the store, :mod:`flask_toucan.ratelimit`). Checked in fresh interpreters
(``sys.modules``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

OPTIONAL = ("limits", "redis", "mcp", "joserfc", "authlib", "flask_toucan.exchange")
#: Loaded on first use or when configured, never by the facade's import (bench row 7b).
DEFERRED = (
    "limits",
    "redis",
    "mcp",
    "cachelib",
    "concurrent.futures",
    "flask_toucan.assistant",
    "flask_toucan.assistant_views",
    "flask_toucan.commands",
    "flask_toucan.exchange",
    "flask_toucan.headless",
    "flask_toucan.keys",
    "flask_toucan.live_check",
    "flask_toucan.memstore",
    "flask_toucan.nearcache",
    "flask_toucan.redis_store",
    "flask_toucan.sandbox",
    "flask_toucan.settings_docs",
    "flask_toucan.verify",
)
#: A minimal api-mode app (no test helpers: they import the key machinery themselves).
API_APP = """
from flask import Flask
from flask_toucan import Toucan
app = Flask("x")
app.config.update(SECRET_KEY="k" * 32, TOUCAN_BASE_URL="https://toucan.example", TOUCAN_API_KEY="key",
                  TOUCAN_RATE_LIMIT=None)
toucan = Toucan(app)
"""


def modules_after(code: str) -> set[str]:
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", probe], check=True, capture_output=True, text=True, timeout=60, cwd=REPO_ROOT
    )
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def loaded(code: str, names: tuple[str, ...]) -> list[str]:
    """Which of ``names`` (or their submodules) ``code`` leaves in ``sys.modules``."""
    modules = modules_after(code)
    return [name for name in names if any(m == name or m.startswith(name + ".") for m in modules)]


def test_import_flask_toucan_loads_no_optional_machinery() -> None:
    assert loaded("import flask_toucan", OPTIONAL) == []


def test_the_facade_loads_only_what_init_app_needs() -> None:
    assert loaded("from flask_toucan import Toucan", DEFERRED) == []


def test_an_api_mode_app_loads_no_deferred_module_but_its_store() -> None:
    # init_app builds the memory store, a cachelib cache: those two, and nothing else deferred.
    assert loaded(API_APP, DEFERRED) == ["cachelib", "flask_toucan.memstore"]


def test_each_deferred_piece_loads_on_first_use() -> None:
    code = (
        API_APP
        + """
assert app.test_cli_runner().invoke(args=["toucan", "check"]).exit_code == 0
with app.app_context():
    toucan.api
"""
    )
    first_use = {"flask_toucan.commands", "flask_toucan.live_check", "flask_toucan.headless"}
    assert first_use <= modules_after(code)


def test_signed_mode_loads_the_key_machinery() -> None:
    code = """
from flask import Flask
from flask_toucan import Toucan
from flask_toucan.keys import generate_private_key_pem
app = Flask("x")
app.config.update(SECRET_KEY="k" * 32, TOUCAN_RATE_LIMIT=None, TOUCAN_MODE="signed",
                  TOUCAN_SIGNING_KEY=generate_private_key_pem("EC").decode(),
                  TOUCAN_ISSUER="https://host.example", TOUCAN_AUDIENCE="toucan-embed")
Toucan(app)
assert app.extensions["toucan"].config.keys.current.algorithm == "ES256"
"""
    assert "flask_toucan.keys" in modules_after(code)


def test_the_cli_group_lists_every_command_without_loading_them() -> None:
    code = (
        API_APP
        + """
group = app.cli.get_command(None, "toucan")
print(",".join(group.list_commands(None)))
import sys
assert "flask_toucan.commands" not in sys.modules
"""
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=60, cwd=REPO_ROOT
    )
    assert {"check", "jwks", "keygen", "mint"} <= set(out.stdout.strip().split(","))


def test_an_app_without_rate_limit_or_redis_loads_neither() -> None:
    code = """
from flask import Flask
from flask_toucan import Toucan
from tests.core.helpers import signed_config
app = Flask("x")
app.config.update(SECRET_KEY="k" * 32, TOUCAN_RATE_LIMIT=None, **signed_config())
Toucan(app)
"""
    assert loaded(code, ("limits", "redis")) == []


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
    assert loaded(code, ("limits", "redis")) == []


def test_the_facade_compiles_no_pattern_of_the_kit_or_the_rate_limit() -> None:
    """Their patterns are compiled on first use (bench row 7b), and still match then."""
    code = """
import re
compiled = []
original = re.compile
re.compile = lambda pattern, flags=0: compiled.append(pattern) or original(pattern, flags)
from flask_toucan import Toucan
from flask_toucan import components, ratelimit
re.compile = original
ours = {components.HEIGHT, components.CLASS_NAME, components.HTML_ID, components._LOGGABLE_CODE,
        ratelimit._ITEM, ratelimit._SEPARATORS}
assert not ours & set(compiled), ours & set(compiled)
assert components._height("480px") == "480px" and ratelimit.parse("5 per minute")[0].amount == 5
print("ok")
"""
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=60, cwd=REPO_ROOT
    )
    assert out.stdout.strip() == "ok"


def test_the_facade_makes_no_dataclass_of_the_kit_or_the_rate_limit() -> None:
    """``page``'s records, ``ToucanState``, ``Limit`` / ``Window``, ``Pending`` / ``Here``: plain classes.

    Neither a dataclass nor a NamedTuple: both compile generated code at import (bench row 7b).
    """
    code = """
import dataclasses
from flask_toucan import Toucan
from flask_toucan import identity, page, ratelimit, state
kinds = (page.Slot, page.Site, page.Page, state.ToucanState, ratelimit.Limit, ratelimit.Window,
         identity.Pending, identity.Here)
assert not [k.__name__ for k in kinds if dataclasses.is_dataclass(k) or issubclass(k, tuple)]
print("ok")
"""
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=60, cwd=REPO_ROOT
    )
    assert out.stdout.strip() == "ok"
