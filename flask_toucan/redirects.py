"""Safe post-login redirects: same-origin relative paths only.

Browsers are lenient about what they treat as a path: ``//evil``, ``/\\evil``
and ``/%2F%2Fevil`` (decoded later by some proxies), tabs and newlines that
they strip, ``https:evil`` and ``javascript:`` schemes. Anything that is not
plainly ``/path?query#fragment`` is refused and the caller falls back to the
configured default.
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

_SAFE_CHARS = r"^/[A-Za-z0-9\-._~!$&'()*+,;=:@/?#%\[\]]*$"  # compiled by re's cache on first use


def safe_next(target: str | None) -> str | None:
    """Return ``target`` if it is a same-origin relative path, else ``None``."""
    if not target or not isinstance(target, str) or len(target) > 2048:
        return None
    # Check the raw value and its (repeatedly) decoded forms: a proxy may decode once more.
    candidate = target
    for _ in range(3):
        if not _is_plain_path(candidate):
            return None
        decoded = unquote(candidate)
        if decoded == candidate:
            break
        candidate = decoded
    else:
        return None  # still changing after three decodes: refuse
    return target


def _is_plain_path(value: str) -> bool:
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in value):
        return False  # control characters, spaces, tabs, newlines
    if not re.match(_SAFE_CHARS, value):
        return False
    if value.startswith("//") or "\\" in value:
        return False
    try:
        parts = urlsplit(value)
    except ValueError:  # "http://[" and friends: not a plain path either
        return False
    return not parts.scheme and not parts.netloc
