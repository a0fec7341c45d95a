"""The architecture stays as docs/architecture.md draws it.

* the import-linter contract in pyproject.toml holds (layers, no cycle, core
  without Flask, the sandbox independent);
* no function in flask_toucan/ is longer than 60 lines;
* no import inside a function, except the optional extras' and a few modules
  deferred on purpose for start-up time (each listed here with its reason), so
  nobody dodges a cycle that way again.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "flask_toucan"
MAX_FUNCTION_LINES = 60

#: Imports allowed inside functions: optional dependencies and deliberate start-up deferrals.
LAZY_OPTIONAL = {
    "mcp",  # the MCP SDK, `mcp` extra
    "anyio",  # comes with the MCP SDK
    "httpx2",  # comes with the MCP SDK
    "redis",  # `redis` extra
    "cachelib",  # RedisCache needs redis (the `redis` extra)
    "flask_toucan.sandbox",  # `sandbox` extra (joserfc)
    # Machinery used only when configured, so `import flask_toucan` does not pay for it
    # (issue 11 item 8; the acyclic contract sees these imports too, so no cycle hides here):
    "flask_toucan.redis_store",  # a Redis TOUCAN_STORE (redis-py)
    "flask_toucan.exchange",  # TOUCAN_EXCHANGE_URL set (Authlib's OAuth 2 client, joserfc)
    # Deliberately deferred for start-up time (issue 11 item 8, bench row 7b): each is
    # loaded on first use, never needed to build and init_app a default Toucan.
    "flask_toucan.commands",  # `flask toucan ...` bodies, loaded by the cli group when run
    "flask_toucan.assistant_views",  # the MCP assistant (`mcp` extra): opt-in route, toucan.assistant()
    "flask_toucan.headless",  # toucan.api, the headless REST client
    "flask_toucan.keys",  # signed mode's key machinery (api mode never loads it)
    "flask_toucan.memstore",  # the "memory" store, a cachelib cache: built with cachelib at init_app
    "flask_toucan.filestore",  # the "file://" store, a cachelib cache: the same
    "concurrent.futures",  # page.py's mint pool: the first cold page with two kinds
}


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_import_contract_holds() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    if not lint.exists():
        pytest.skip("import-linter is not installed (the dev/test extras install it)")
    result = subprocess.run(
        [str(lint), "--no-cache"], cwd=PACKAGE.parent, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_no_function_longer_than_60_lines() -> None:
    long = []
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                assert node.end_lineno is not None
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name} ({length})")
    assert not long, "functions over 60 lines: " + ", ".join(long)


def _absolute(path: Path, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    base = parts[: len(parts) - node.level]
    return ".".join([*base, node.module] if node.module else base)


def _lazy_imports(path: Path) -> list[tuple[int, str]]:
    found = []
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for func in ast.walk(tree):
        if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for node in ast.walk(func):
            if isinstance(node, ast.Import):
                found += [(node.lineno, alias.name) for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module is None:  # from . import x
                found += [(node.lineno, f"{_absolute(path, node)}.{alias.name}") for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                found.append((node.lineno, _absolute(path, node)))
    return found


def test_no_import_inside_a_function_but_optional_extras() -> None:
    bad = []
    for path in _modules():
        for line, name in _lazy_imports(path):
            if not any(name == ok or name.startswith(ok + ".") for ok in LAZY_OPTIONAL):
                bad.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {name}")
    assert not bad, "imports inside functions (move them to the top): " + ", ".join(bad)
