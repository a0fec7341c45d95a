"""Which logins a user has, so they can be ended from outside the browser.

A login is the server-side record :class:`~flask_toucan.store.SessionRegistry`
keeps under ``sid:<id>`` (what every request checks). Ending a login is
deleting that record: the next request on any worker is anonymous (with the
Redis store's near cache too, since Redis tells every worker of the deletion).
To end logins by *who* rather than by cookie, three kinds of store entries
are kept beside the records, written at login:

* ``login:<id>``: the login's details (issuer, ``sub``, the provider's session
  ``sid``, the id_token RP-Initiated Logout sends back as ``id_token_hint``).
  Server-side only: the cookie never carries the id_token.
* ``logins:sub:<hash>``: the ids of one subject's logins;
* ``logins:sid:<hash>``: the ids of the logins of one provider session
  (Back-Channel Logout names a ``sid``, a ``sub``, or both).

The hashes are salted SHA-256 (a key names no user). An index is a list
updated by read-modify-write: the stores are caches (get/set), not sets. Two
logins of one user at the same instant may race; each writer reads back what
it wrote and tries again when its id is missing, so the loser re-adds
itself. Ids whose record has gone (logged out, expired) are dropped at the
next write, and an index never outlives the login lifetime. Core module: no
Flask.
"""

from __future__ import annotations

import hashlib
from typing import Any

from .store import SessionRegistry

DETAIL_PREFIX = "login:"
SUB_PREFIX = "logins:sub:"
SID_PREFIX = "logins:sid:"
#: The most logins one index keeps (the oldest go first): bounds a user who logs in all day.
MAX_INDEXED = 64
_WRITE_ATTEMPTS = 3


def _digest(*parts: str) -> str:
    joined = "\0".join(parts).encode("utf-8", "surrogatepass")
    return hashlib.sha256(b"flask-toucan.logins\0" + joined).hexdigest()[:40]


def sub_key(sub: str) -> str:
    """The index of one subject's logins (every issuer: the details tell them apart)."""
    return SUB_PREFIX + _digest(sub)


def sid_key(issuer: str, sid: str) -> str:
    """The index of the logins of one provider session."""
    return SID_PREFIX + _digest(issuer, sid)


class LoginIndex:
    """The details and indexes of logins, in the app's store, next to the login records."""

    def __init__(self, store: Any, registry: SessionRegistry) -> None:
        self.store = store
        self.registry = registry

    def record(
        self, login_id: str, *, issuer: str, sub: str, sid: str | None = None, id_token: str | None = None
    ) -> None:
        """Write a new login's details and add it to its subject's (and provider session's) index."""
        lifetime = self.registry.lifetime
        details = {"iss": issuer, "sub": sub, "sid": sid, "id_token": id_token}
        self.store.set(DETAIL_PREFIX + login_id, details, timeout=lifetime)
        self._add(sub_key(sub), login_id)
        if sid:
            self._add(sid_key(issuer, sid), login_id)

    def details(self, login_id: Any) -> dict[str, Any] | None:
        """A login's details (``iss``, ``sub``, ``sid``, ``id_token``), or ``None``."""
        if not isinstance(login_id, str) or not login_id:
            return None
        found = self.store.get(DETAIL_PREFIX + login_id)
        return found if isinstance(found, dict) else None

    def forget(self, login_id: Any) -> None:
        """Drop a login's details (its index entries go at the index's next write)."""
        if isinstance(login_id, str) and login_id:
            self.store.delete(DETAIL_PREFIX + login_id)

    def end(self, *, sub: str | None = None, sid: str | None = None, issuer: str | None = None) -> int:
        """End every live login matching: ``sub`` and/or the provider session ``sid`` (of ``issuer``).

        ``issuer`` ``None`` with ``sub``: the subject's logins from any issuer (an
        operator's call). With both ``sub`` and ``sid``, a login must match both
        (Back-Channel Logout 1.0, section 2.7). Returns how many were live.
        """
        if sid is not None and issuer is None:
            raise ValueError("a provider session id needs its issuer")
        if sub is None and sid is None:
            return 0
        by_sid = sid is not None and issuer is not None
        candidates = self._ids(sid_key(issuer or "", sid or "") if by_sid else sub_key(sub or ""))
        ended = 0
        for login_id in candidates:
            details = self.details(login_id)
            if details is None or not _matches(details, sub=sub, sid=sid, issuer=issuer):
                continue
            live = self.store.get(self.registry.prefix + login_id) is not None
            self.registry.close(login_id)
            self.forget(login_id)
            ended += live
        return ended

    def count(self, *, sub: str, issuer: str | None = None) -> int:
        """How many live logins ``sub`` has (from ``issuer``, or any)."""
        ids = self._ids(sub_key(sub))
        if not ids:
            return 0
        records = self.store.get_many(*(self.registry.prefix + i for i in ids))
        details = self.store.get_many(*(DETAIL_PREFIX + i for i in ids))
        return sum(
            1
            for record, found in zip(records, details, strict=True)
            if record is not None
            and isinstance(found, dict)
            and _matches(found, sub=sub, sid=None, issuer=issuer)
        )

    def _ids(self, key: str) -> list[str]:
        found = self.store.get(key)
        return [i for i in found if isinstance(i, str)] if isinstance(found, list) else []

    def _add(self, key: str, login_id: str) -> None:
        """Add ``login_id`` to the index ``key``; read back, and retry if a concurrent write lost it."""
        for _ in range(_WRITE_ATTEMPTS):
            ids = self._ids(key)
            live = self._live(ids)
            value = [*[i for i in live if i != login_id], login_id][-MAX_INDEXED:]
            self.store.set(key, value, timeout=self.registry.lifetime)
            if login_id in self._ids(key):
                return

    def _live(self, ids: list[str]) -> list[str]:
        if not ids:
            return []
        records = self.store.get_many(*(self.registry.prefix + i for i in ids))
        return [i for i, record in zip(ids, records, strict=True) if record is not None]


def _matches(details: dict[str, Any], *, sub: str | None, sid: str | None, issuer: str | None) -> bool:
    if issuer is not None and details.get("iss") != issuer:
        return False
    if sub is not None and details.get("sub") != sub:
        return False
    return sid is None or details.get("sid") == sid


def count_all(store: Any, registry: SessionRegistry) -> int | None:
    """Every live login in a shared Redis store (``SCAN``, never ``KEYS``); ``None`` for other stores.

    The memory store lives inside each worker and the file store names its
    files by hash: neither can be counted from another process.
    """
    inner = getattr(store, "inner", store)
    client, key_prefix = getattr(inner, "client", None), getattr(inner, "key_prefix", None)
    if client is None or not isinstance(key_prefix, str):
        return None
    pattern = key_prefix + registry.prefix + "*"
    counted: int = store.breaker.call(
        "scan", lambda: sum(1 for _ in client.scan_iter(match=pattern, count=1000))
    )
    return counted
