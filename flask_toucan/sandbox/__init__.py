"""A local stand-in for the Toucan AI side (token API, components, data API with RLS).

Runs offline so the demo and the tests exercise the whole embedding flow:
``python -m flask_toucan.sandbox`` or, in-process, :class:`SandboxServer`.
See ``docs/sandbox.md``. Needs the ``sandbox`` extra (joserfc).
"""

from __future__ import annotations

from .app import create_app
from .data import ORGANIZATIONS, PRODUCTS, REGIONS
from .grants import Grant
from .options import DEFAULT_ATTRIBUTES, DEFAULT_ORIGINS, SandboxOptions
from .rls import DEFAULT_RULES, Group, MissingAttribute, Rule, where_clause
from .server import SandboxServer

__all__ = [
    "DEFAULT_ATTRIBUTES",
    "DEFAULT_ORIGINS",
    "DEFAULT_RULES",
    "ORGANIZATIONS",
    "PRODUCTS",
    "REGIONS",
    "Grant",
    "Group",
    "MissingAttribute",
    "Rule",
    "SandboxOptions",
    "SandboxServer",
    "create_app",
    "where_clause",
]
