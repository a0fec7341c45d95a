"""Who the user is: an identity keyed on (issuer, subject), never on email.

Only a small claims dict is kept in the session (Authlib users hit cookie-size
limits when whole tokens go there): protocol claims such as ``nonce`` or
``at_hash`` are dropped, and apps can name exactly what to keep with
``TOUCAN_SESSION_CLAIMS``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import lru_cache
from typing import Any

#: Claims that describe the ID token, not the person: never stored.
PROTOCOL_CLAIMS = frozenset(
    {
        "aud",
        "exp",
        "iat",
        "nbf",
        "nonce",
        "at_hash",
        "c_hash",
        "auth_time",
        "azp",
        "jti",
        "sid",
        "acr",
        "amr",
        "s_hash",
        "userinfo",
    }
)
MAX_SESSION_CLAIMS_BYTES = 2048


def _escape_part(value: str) -> str:
    return value.replace("%", "%25").replace("|", "%7C")


@lru_cache(maxsize=4096)
def _distinct_id(issuer: str, subject: str) -> str:
    """Memoised (a pure function, bounded): every mint derives it twice (cache key, claims)."""
    return f"{_escape_part(issuer)}|{_escape_part(subject)}"


class MissingClaim(KeyError):
    """``user["org"]`` for a claim this user does not have: the mapper "maps to nothing".

    A ``KeyError`` (mappers written as ``user["org"]`` keep working) that says the
    key was a claim *name*, so the log may name it: a ``KeyError`` from elsewhere
    in a mapper (``TENANTS[user["org"]]``) may carry a value, and is never logged.
    """

    @property
    def claim(self) -> str:
        return str(self.args[0])


class ToucanUser(Mapping[str, Any]):
    """A read-only view of the user's claims, with ``issuer`` and ``subject``.

    Mappers receive this object: ``user["org"]`` and ``user.get("region")``
    work as on a dict.
    """

    __slots__ = ("_claims", "issuer", "subject")

    def __init__(self, issuer: str, subject: str, claims: Mapping[str, Any]) -> None:
        self.issuer = issuer
        self.subject = subject
        self._claims = dict(claims)

    @property
    def id(self) -> tuple[str, str]:
        return (self.issuer, self.subject)

    @property
    def distinct_id(self) -> str:
        """The ``distinctId`` sent to Toucan: stable per (issuer, subject).

        ``issuer|subject`` with ``%`` and ``|`` escaped in both parts, so two
        different pairs can never give the same id.
        """
        return _distinct_id(self.issuer, self.subject)

    @property
    def claims(self) -> dict[str, Any]:
        return dict(self._claims)

    def __getitem__(self, key: str) -> Any:
        try:
            return self._claims[key]
        except KeyError:
            raise MissingClaim(key) from None

    def get(self, key: str, default: Any = None) -> Any:
        """``user.get("region")``: the dict's own ``get`` (``Mapping.get`` goes through
        ``__getitem__`` and a ``KeyError``: a third of an attribute mapper's cost)."""
        return self._claims.get(key, default)

    def __contains__(self, key: object) -> bool:
        return key in self._claims

    def __iter__(self) -> Iterator[str]:
        return iter(self._claims)

    def __len__(self) -> int:
        return len(self._claims)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ToucanUser) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    def __repr__(self) -> str:
        return f"ToucanUser(issuer={self.issuer!r}, subject={self.subject!r})"

    def to_session(self) -> dict[str, Any]:
        return {"iss": self.issuer, "sub": self.subject, "claims": self._claims}

    @classmethod
    def from_session(cls, data: Any) -> ToucanUser | None:
        if not isinstance(data, Mapping):
            return None
        iss, sub, claims = data.get("iss"), data.get("sub"), data.get("claims")
        if not isinstance(iss, str) or not isinstance(sub, str) or not isinstance(claims, Mapping):
            return None
        return cls(iss, sub, claims)
