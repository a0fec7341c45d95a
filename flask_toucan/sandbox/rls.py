"""Row-level security: access rules declared per table, compiled to SQL.

A rule compares a dataset column with a token attribute::

    Rule("organization_id", "equal", "organization_id")

and rules group with AND / OR (``Rule.all_of`` / ``Rule.any_of``). Compilation
yields a ``WHERE`` fragment with ``?`` placeholders and a parameter list: the
column names come from the declared rules (checked to be plain identifiers when
the rule is built), the values only ever travel as bound parameters, so an
attribute such as ``acme' OR '1'='1`` is just a string that matches no row.

Fail closed: a rule whose attribute the token lacks raises
:class:`MissingAttribute` (the data API answers 403), unless the rule was
declared ``optional``; then, and only then, it is dropped. Wildcard values
(``optional`` rules only, e.g. ``region="*"``) drop it too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

OPERATORS = ("equal", "different", "in", "not in", "is set", "greater", "less")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


class RuleError(Exception):
    """The token's attributes cannot be applied to a rule (the request is refused)."""

    code = "forbidden"


class MissingAttribute(RuleError):
    """A rule needs an attribute the token does not carry: 403, never unfiltered rows."""

    code = "missing_attribute"

    def __init__(self, attribute: str) -> None:
        super().__init__(f"the token has no {attribute!r} attribute, which the access rules need")
        self.attribute = attribute


class AttributeTypeMismatch(RuleError):
    """An attribute's value does not fit the operator (a list for ``equal``...)."""

    code = "invalid_attribute"


@dataclass(frozen=True)
class Rule:
    """``column <operator> token.attributes[attribute]``."""

    column: str
    operator: str
    attribute: str | None = None
    optional: bool = False
    wildcards: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not _IDENT.match(self.column):
            raise ValueError(f"rule column {self.column!r} is not a plain identifier")
        if self.operator not in OPERATORS:
            raise ValueError(f"rule operator {self.operator!r} is not one of {OPERATORS}")
        if self.operator != "is set" and not self.attribute:
            raise ValueError(f"operator {self.operator!r} needs a token attribute")
        if self.wildcards and not self.optional:
            raise ValueError("wildcards only make sense on an optional rule")

    @staticmethod
    def all_of(*rules: RuleNode) -> Group:
        return Group("AND", tuple(rules))

    @staticmethod
    def any_of(*rules: RuleNode) -> Group:
        return Group("OR", tuple(rules))

    def compile(self, attrs: Mapping[str, Any]) -> tuple[str, list[Any]] | None:
        """``(sql, params)``, or ``None`` when an optional rule does not apply."""
        col = f'"{self.column}"'
        if self.operator == "is set":
            return f"{col} IS NOT NULL", []
        assert self.attribute is not None
        value = attrs.get(self.attribute)
        if value is None or (value == [] and self.operator in ("equal", "different", "greater", "less")):
            if self.optional:
                return None
            raise MissingAttribute(self.attribute)
        if self.optional and isinstance(value, str) and value in self.wildcards:
            return None
        if self.operator in ("in", "not in"):
            values = value if isinstance(value, list) else [value]
            if not values:  # "IN ()" is not SQL: an empty list admits nothing / excludes nothing
                return ("0", []) if self.operator == "in" else ("1", [])
            marks = ", ".join("?" for _ in values)
            op = "IN" if self.operator == "in" else "NOT IN"
            return f"{col} {op} ({marks})", list(values)
        if isinstance(value, list):
            raise AttributeTypeMismatch(
                f"attribute {self.attribute!r} is a list; operator {self.operator!r} needs one value"
            )
        op = {"equal": "=", "different": "<>", "greater": ">", "less": "<"}[self.operator]
        return f"{col} {op} ?", [value]


@dataclass(frozen=True)
class Group:
    """Rules joined with AND or OR."""

    joiner: str
    rules: tuple[RuleNode, ...]

    def compile(self, attrs: Mapping[str, Any]) -> tuple[str, list[Any]] | None:
        parts: list[str] = []
        params: list[Any] = []
        for rule in self.rules:
            compiled = rule.compile(attrs)
            if compiled is None:
                continue
            parts.append(f"({compiled[0]})")
            params.extend(compiled[1])
        if not parts:
            return None
        return f" {self.joiner} ".join(parts), params


RuleNode = Rule | Group


def where_clause(
    rules: Mapping[str, RuleNode], table: str, attrs: Mapping[str, Any]
) -> tuple[str, list[Any]]:
    """The ``WHERE`` body for ``table``: ``("1", [])`` only when its rules all dropped out.

    A table without declared rules is refused outright (``"0"``): the sandbox
    never serves a table nobody wrote access rules for.
    """
    node = rules.get(table)
    if node is None:
        return "0", []
    compiled = node.compile(attrs)
    if compiled is None:
        return "1", []
    return compiled


#: The sample data set's rules. A tenant sees its own organisation's rows only;
#: a token with a ``region`` sees that region only, unless the region is
#: ``*`` / ``all`` or absent (an organisation-wide user).
DEFAULT_RULES: dict[str, RuleNode] = {
    "sales": Rule.all_of(
        Rule("organization_id", "equal", "organization_id"),
        Rule("region", "equal", "region", optional=True, wildcards=("*", "all")),
    ),
}
