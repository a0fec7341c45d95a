"""Start-up checks of the app's config beyond one setting's value: typos and placeholder secrets.

``TOUCAN_TOKN_TTL = 60`` used to be silently ignored (the default applied) and
the README's own ``SECRET_KEY="..."`` was accepted. :func:`check_app_config`
runs at ``init_app`` before the settings are parsed and refuses both, naming
the fix. Messages never repeat a secret's value. Core module: no Flask.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any

from .exceptions import ConfigurationError

#: ``TOUCAN_*`` names that are not settings of this extension but are ours all the same.
_OTHER_PREFIXES = ("TOUCAN_SANDBOX_",)  # the sandbox's own options (environment variables)

#: Below this many bytes a ``SECRET_KEY`` is guessable (Flask's docs: ``secrets.token_hex()`` is 32).
MIN_SECRET_BYTES = 32

#: Values copied from a tutorial rather than generated (compared lower-cased, stripped).
_PLACEHOLDERS = (
    "...",
    "change-me",
    "changeme",
    "change_me",
    "secret",
    "dev",
    "development",
    "test",
    "testing",
    "password",
    "secret-key",
    "secret_key",
    "your-secret-key",
    "xxx",
)

_FIX = "generate one with: python -c 'import secrets; print(secrets.token_hex(32))'"


def unknown_keys(config: Mapping[str, Any], known: Iterable[str]) -> list[str]:
    """One message per ``TOUCAN_*`` key that is no setting, with "did you mean ...?" when close."""
    names = set(known)
    problems = []
    for key in sorted(k for k in config if isinstance(k, str) and k.startswith("TOUCAN_")):
        if key in names or key.startswith(_OTHER_PREFIXES):
            continue
        close = difflib.get_close_matches(key, names, n=1, cutoff=0.75)
        hint = f"; did you mean {close[0]}?" if close else " (see docs/configuration.md)"
        problems.append(f"{key} is not a flask-toucan setting{hint}")
    return problems


def secret_key_problem(secret: Any) -> str | None:
    """Why ``SECRET_KEY`` is unsafe (missing, a placeholder, too short), or ``None``."""
    if not secret:
        return (
            "SECRET_KEY is required: flask-toucan keeps the login in the session "
            f"and signs CSRF tokens with it; {_FIX}"
        )
    raw = secret if isinstance(secret, bytes) else str(secret).encode()
    text = raw.decode(errors="replace").strip().lower()
    if text in _PLACEHOLDERS or text.startswith(("change-me", "changeme")):
        return f"SECRET_KEY is a placeholder value: {_FIX}"
    if len(raw) < MIN_SECRET_BYTES:
        return f"SECRET_KEY is shorter than {MIN_SECRET_BYTES} bytes ({len(raw)}): {_FIX}"
    return None


def check_app_config(config: Mapping[str, Any], known: Iterable[str]) -> None:
    """Raise :class:`ConfigurationError` naming every problem found (one per line)."""
    problems = unknown_keys(config, known)
    secret = secret_key_problem(config.get("SECRET_KEY"))
    if secret is not None:
        problems.insert(0, secret)
    if problems:
        raise ConfigurationError("\n".join(problems))
