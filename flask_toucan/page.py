"""Page-level work of the component kit: once per request, shared by every component.

A page with twenty components has one user, one CSRF token, one refresh URL,
one session tag and one token per permission set. :func:`current_page`
memoises them on ``g`` (``g._toucan_page``, gone with the request, dropped at
login and logout), so a component only validates its own options and formats
its tags.

Tokens are loaded for every kind the page needs at once, the first time a
component (or ``toucan_prefetch``) asks:

* **one store round trip** for a cached page: the session record that
  confirms the user and the cached tokens of every kind are read in one
  ``get_many`` (one ``MGET`` with Redis) instead of one ``GET`` each;
* **one upstream round trip** for a cold page: the tokens missing from the
  cache are minted concurrently (a small per-app thread pool), each through
  the token service's single flight, so a dashboard and an assistant cost one
  upstream latency, not two.

Which kinds a page needs: those declared with ``toucan_prefetch(...)``, plus
those the same endpoint rendered before (learned per endpoint, in process),
plus the kind being rendered. A kind the user may not have is never minted;
a learned kind the page does not render after all costs a concurrent mint
whose token stays cached for later.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import replace
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from flask import Flask, Request, current_app, g, request, session, url_for
from markupsafe import escape

from . import csrf, identity, issuing, liveness
from .exceptions import AuthenticationRequired, StoreUnavailable, ToucanError
from .mappers import KINDS, Permissions, permissions_for_kind
from .state import EXTENSION_KEY, SESSION_ID, ToucanState, get_state
from .tokens import EmbedToken
from .user import ToucanUser

if TYPE_CHECKING:
    from concurrent.futures import Future, ThreadPoolExecutor

    from .minting import MintRequest
    from .ratelimit import Window

#: Threads minting the missing tokens of one cold page concurrently (per app).
MINT_THREADS = 4
#: Endpoints whose kinds are remembered (a bound, not a cache: beyond it, nothing more is learned).
MAX_LEARNED_ENDPOINTS = 1024
_POOL_KEY = "toucan.mint_pool"
_URLS_KEY = "toucan.route_urls"
_SITE_KEY = "toucan.page_site"
#: Mount points remembered per app by :func:`route_url` (a bound against odd proxies).
MAX_CACHED_URLS = 64
_LEARNED_KEY = "toucan.page_kinds"
_lock = threading.Lock()


class Slot:
    """The outcome for one kind: a token and its scope, or the error that withholds it.

    A plain class with ``__slots__`` (not a dataclass: the decorator's generated
    methods cost about half a millisecond at import, for nothing used here).
    """

    __slots__ = ("error", "head", "key", "missed", "permissions", "request", "scope", "tail", "token")

    def __init__(
        self,
        token: EmbedToken | None = None,
        permissions: Permissions | None = None,
        scope: str = "",
        error: ToucanError | None = None,
        *,
        request: MintRequest | None = None,
        key: str | None = None,
        missed: int | None = None,
    ) -> None:
        self.token = token
        self.permissions = permissions
        self.scope = scope
        self.error = error
        #: The escaped attribute tail every component of this kind shares (built on first use).
        self.tail: str | None = None
        #: The escaped ``auth-token`` and default ``server-url`` (built on first use).
        self.head: str | None = None
        #: A miss read with ``mint=False``: what to mint, its cache key, the flight count before the read.
        self.request = request
        self.key = key
        self.missed = missed


class Site:
    """What every page of an app at one mount point shares, escaped once.

    Only the app's config and its mount point (``SCRIPT_NAME``) go in: nothing
    about the user, the session, the CSRF token or the nonce, so it is safe
    to keep across requests (:func:`site`). Read-only by convention.
    """

    __slots__ = ("activity", "header", "refresh", "scripts", "server")

    def __init__(
        self, scripts: tuple[str, ...], refresh: str, header: str, server: str, activity: str = ""
    ) -> None:
        #: The component script (if configured) and the refresh script: each tag up to its
        #: ``src`` (escaped), ending ``"`` (the nonce and ``></script>`` follow per request);
        #: the second and later ones start with the newline that separates them.
        self.scripts = scripts
        #: `` data-toucan-refresh-url="…"``
        self.refresh = refresh
        #: `` data-toucan-csrf-header="…"``
        self.header = header
        #: `` server-url="…"`` (empty without a configured server URL)
        self.server = server
        #: `` data-toucan-activity-url="…" data-toucan-activity-every="…"`` (empty without an
        #: idle timeout): where and how often the refresh script reports user interaction.
        self.activity = activity


class Page:
    """What one request's components share (see the module docstring).

    Holds the app's state, looked up once: each ``current_app`` / ``g`` /
    ``request`` proxy lookup costs about a microsecond, and a component
    would otherwise make a dozen.
    """

    __slots__ = ("_site", "_strings", "app", "at", "declared", "request", "slots", "state")

    def __init__(self, state: ToucanState, app: Flask, at: identity.Here, request: Request) -> None:
        self.state = state
        self.app = app
        #: This request's ``g`` and session objects (see :class:`~flask_toucan.identity.Here`).
        self.at = at
        #: This request (its endpoint and mount point).
        self.request = request
        self.slots: dict[str, Slot] = {}
        self.declared: set[str] = set()
        self._site: Site | None = None
        self._strings: str | None = None

    def site(self) -> Site:
        """This app's :class:`Site` at this request's mount point."""
        if self._site is None:
            self._site = site(self.app, self.state, self.request.script_root)
        return self._site

    def strings(self) -> str:
        """The escaped refresh URL, CSRF token, session tag and CSRF header: built once per request."""
        if self._strings is None:
            shared = self.site()
            sid = self.at.session.get(SESSION_ID)
            token = csrf.token_for(sid, self.app, self.state.config.csrf_max_age, self.at.memo)  # needs a sid
            tag = session_tag(sid)
            self._strings = (
                f'{shared.refresh} data-toucan-csrf="{escape(token)}" '
                f'data-toucan-session="{escape(tag)}"{shared.header}{shared.activity}'
            )
        return self._strings


def current_page() -> Page:
    """This request's :class:`Page` (created on first use)."""
    memo = g._get_current_object()
    page: Page | None = memo.get("_toucan_page")
    if page is None:
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        state = app.extensions.get(EXTENSION_KEY) or get_state()  # get_state: the clear error
        here = identity.Here(memo, session._get_current_object())  # type: ignore[attr-defined]
        page = memo.setdefault("_toucan_page", Page(state, app, here, request._get_current_object()))  # type: ignore[attr-defined]
    return page


def prefetch(kinds: Iterable[str]) -> None:
    """``toucan_prefetch(...)``: declare the kinds this page renders and load them now, together."""
    wanted = [k for k in kinds if k in KINDS]
    page = current_page()
    page.declared.update(wanted)
    load(page, wanted)


def slot(kind: str, page: Page | None = None) -> Slot:
    """The token (or the error) for ``kind``, loading every kind the page needs on first call."""
    page = page if page is not None else current_page()
    found = page.slots.get(kind)
    if found is not None and found.token is None and found.error is None:
        del page.slots[kind]  # a miss read by a mint=False load: load (and mint) it now
        found = None
    if found is None:
        load(page, [kind, *sorted(page.declared), *sorted(learn(page, kind))])
        found = page.slots[kind]
    return found


def learn(page: Page, kind: str) -> frozenset[str]:
    """Remember that the current endpoint renders ``kind``; the kinds it is known to render."""
    table: dict[str | None, frozenset[str]] = page.app.extensions.setdefault(_LEARNED_KEY, {})
    endpoint = page.request.endpoint
    known = table.get(endpoint)
    if known is not None and kind in known:
        return known
    if known is None and len(table) >= MAX_LEARNED_ENDPOINTS:
        return frozenset({kind})
    with _lock:
        known = table[endpoint] = table.get(endpoint, frozenset()) | {kind}
    return known


def load(
    page: Page, kinds: Iterable[str], *, mint: bool = True, count: list[Window] | None = None
) -> list[int] | None:
    """Fill ``page.slots`` for ``kinds`` not loaded yet: one store read, concurrent mints.

    ``mint=False`` (the refresh endpoint, before its CSRF check): read only;
    a miss gets a slot with what to mint (:func:`mint_missed`), nothing is
    minted or announced yet. ``count``: rate-limit windows hit in the same
    store round trip; their counts are returned (``None``: no read was made).
    """
    todo = [k for k in dict.fromkeys(kinds) if k not in page.slots]
    if not todo:
        return None
    try:
        pending = identity.begin(page.state, page.at)
    except StoreUnavailable as exc:
        _fail_all(page, todo, exc)
        return None
    user = pending.user
    if user is None:
        _fail_all(page, todo, AuthenticationRequired("log in to get a token"))
        return None
    requests, keys = _requests(page, user, todo)
    token_keys = list(dict.fromkeys(keys.values()))
    store_keys = ([pending.record_key] if pending.record_key else []) + token_keys
    # Flights ended so far, per key: a miss below is only trusted if none ends in between.
    flights = page.state.service.flights
    seen = {key: flights.completed(key) for key in token_keys}
    counts: list[int] = []
    store = page.state.store
    try:
        if count:
            values, counts = store.read(store_keys, count, time.time())
        else:
            values = store.get_many(*store_keys) if store_keys else []
    except StoreUnavailable as exc:
        if pending.record_key is not None:
            identity.fail(exc)
        _fail_all(page, todo, exc)
        return None
    found = dict(zip(store_keys, values, strict=True))
    if not _settled(page, pending, found, todo, activity=mint):
        return None
    if mint:
        _fill(page, user, requests, keys, found, seen)
        return counts
    for kind, req in requests.items():
        hit = page.state.service.cache.from_entry(found.get(keys[kind]))
        scope = scope_of(req.permissions)
        if hit is not None:
            page.slots[kind] = Slot(hit, req.permissions, scope)
        else:
            key = keys[kind]
            page.slots[kind] = Slot(None, req.permissions, scope, request=req, key=key, missed=seen[key])
    return counts


def _settled(
    page: Page, pending: identity.Pending, found: dict[str, Any], todo: list[str], *, activity: bool
) -> bool:
    """Whether the login record read confirms the user; else every kind gets the refusal.

    A page rendering the kit is activity; the refresh script's timed refresh
    (``mint=False``) is not (:mod:`flask_toucan.liveness`).
    """
    record = found.get(pending.record_key) if pending.record_key else None
    try:
        confirmed = identity.settle(pending, record, page.at, activity=activity)
    except ToucanError as exc:  # the identity provider had to be asked and is down
        _fail_all(page, todo, exc)
        return False
    if confirmed is None:
        _fail_all(page, todo, liveness.ended_error(page.at.memo))
        return False
    return True


def _requests(
    page: Page, user: ToucanUser, kinds: list[str]
) -> tuple[dict[str, MintRequest], dict[str, str]]:
    """One :class:`MintRequest` and cache key per permitted kind; refusals go straight to slots."""
    state = page.state
    requests: dict[str, MintRequest] = {}
    keys: dict[str, str] = {}
    try:
        granted = state.mappers.map_permissions(user)
    except ToucanError as exc:
        _fail_all(page, kinds, exc)
        return requests, keys
    base: MintRequest | None = None
    for kind in kinds:
        try:
            perms = permissions_for_kind(granted, kind)
            # The attribute mappers run once per page, not once per kind.
            base = issuing.mint_request(user, perms, state) if base is None else base
        except ToucanError as exc:
            page.slots[kind] = Slot(error=exc)
            continue
        req = base if base.permissions == perms else replace(base, permissions=perms)
        requests[kind] = req
        keys[kind] = state.service.key_for(req)
    return requests, keys


def _fill(
    page: Page,
    user: ToucanUser,
    requests: dict[str, MintRequest],
    keys: dict[str, str],
    found: dict[str, Any],
    seen: dict[str, int],
) -> None:
    """Cache hits from ``found``; the misses minted concurrently (one thread per distinct key)."""
    state = page.state
    outcomes: dict[str, tuple[EmbedToken, bool] | ToucanError] = {}
    misses: dict[str, tuple[MintRequest, int]] = {}
    for kind, req in requests.items():
        hit = state.service.cache.from_entry(found.get(keys[kind]))
        if hit is not None:
            outcomes[keys[kind]] = (hit, True)
        else:
            misses.setdefault(keys[kind], (req, seen[keys[kind]]))
    if misses:
        outcomes.update(_mint_all(page, misses))
    memo = issuing.memo_for(user, page.at)
    for kind, req in requests.items():
        outcome = outcomes[keys[kind]]
        if isinstance(outcome, ToucanError):
            page.slots[kind] = Slot(error=outcome)
            continue
        token, cached = outcome
        canonical = issuing.canonical(req.permissions)
        page.slots[kind] = Slot(token, req.permissions, _scope(canonical))
        if memo is not None:  # a later toucan.issue_token(...) in this request gets the same token
            memo[issuing.memo_key_of(user, canonical)] = token
        issuing.announce(user, token, cached, page.app)


def _mint_all(
    page: Page,
    misses: dict[str, tuple[MintRequest, int]],
) -> dict[str, tuple[EmbedToken, bool] | ToucanError]:
    """Mint every miss; all but the last in the pool, the last in this thread, then wait.

    Each through the token service's single flight, told the cache was just
    read (no second store read unless another flight for the key ended since).
    """
    service = page.state.service
    items = list(misses.items())
    futures: dict[str, Future[tuple[EmbedToken, bool]]] = {}
    if len(items) > 1:
        pool = _pool(page.app)
        futures = {key: pool.submit(service.issue, req, missed=n, key=key) for key, (req, n) in items[:-1]}
    out: dict[str, tuple[EmbedToken, bool] | ToucanError] = {}
    for key, (req, n) in items[len(futures) :]:
        out[key] = _outcome(lambda req=req, n=n, key=key: service.issue(req, missed=n, key=key))
    for key, future in futures.items():
        out[key] = _outcome(future.result)
    return out


def _outcome(fn: Any) -> tuple[EmbedToken, bool] | ToucanError:
    try:
        result: tuple[EmbedToken, bool] = fn()
    except ToucanError as exc:
        return exc
    return result


def mint_missed(found: Slot, state: ToucanState | None = None) -> tuple[EmbedToken, bool]:
    """Mint what a ``mint=False`` load found missing (after the caller's own checks)."""
    assert found.request is not None
    state = state if state is not None else get_state()
    return state.service.issue(found.request, missed=found.missed, key=found.key)


def _fail_all(page: Page, kinds: Iterable[str], exc: ToucanError) -> None:
    for kind in kinds:
        page.slots.setdefault(kind, Slot(error=exc))


def _pool(app: Flask) -> ThreadPoolExecutor:
    """The app's mint pool, created on first use (a cold page with one kind never needs it)."""
    pool: ThreadPoolExecutor | None = app.extensions.get(_POOL_KEY)
    if pool is None:
        with _lock:
            pool = app.extensions.get(_POOL_KEY)
            if pool is None:
                from concurrent.futures import ThreadPoolExecutor  # first cold page with two kinds

                pool = app.extensions[_POOL_KEY] = ThreadPoolExecutor(
                    MINT_THREADS, thread_name_prefix="flask-toucan-mint"
                )
    return pool


def tail(page: Page, kind: str, found: Slot) -> str:
    """The escaped attributes every component of ``kind`` shares, after its own ones.

    Built once per kind per request; the expiry countdown is taken then (the
    refresh script counts it from when the page arrived, a few ms later).
    """
    if found.tail is None:
        assert found.token is not None
        # Seconds (fractional): the refresh script counts them on its own
        # monotonic clock from when the page arrived, never against Date.now().
        expires_in = f"{max(0.0, found.token.expires_at.timestamp() - time.time()):.3f}"
        found.tail = (
            f' data-toucan-kind="{escape(kind)}" data-toucan-scope="{escape(found.scope)}" '
            f'data-toucan-expires-in="{escape(expires_in)}"{page.strings()}'
        )
    return found.tail


def head(page: Page, found: Slot) -> str:
    """`` auth-token="…" server-url="…"`` for components with the configured server URL."""
    if found.head is None:
        assert found.token is not None
        found.head = f' auth-token="{escape(found.token.value)}"{page.site().server}'
    return found.head


def route_url(endpoint: str, **values: Any) -> str:
    """``url_for(endpoint, **values)`` for the blueprint's own fixed routes, cached per app.

    Their relative URL depends only on the app's mount point (``SCRIPT_NAME``),
    so it is part of the cache key; building it costs more than the rest of a
    component.
    """
    table: dict[tuple[Any, ...], str] = current_app.extensions.setdefault(_URLS_KEY, {})
    key = (endpoint, request.script_root, *sorted(values.items()))
    url = table.get(key)
    if url is None:
        url = url_for(endpoint, **values)
        if len(table) < MAX_CACHED_URLS:
            table[key] = url
    return url


def site(app: Flask, state: ToucanState, root: str) -> Site:
    """``app``'s :class:`Site` at the mount point ``root`` (``SCRIPT_NAME``; built on first use)."""
    table: dict[str, Site] = app.extensions.setdefault(_SITE_KEY, {})
    found = table.get(root)
    if found is None:
        config = state.config
        urls = (config.embed_script_url, route_url("toucan.static", filename="toucan-refresh.js"))
        found = Site(
            scripts=tuple(
                ("\n" if i else "") + f'<script type="module" src="{escape(url)}"'
                for i, url in enumerate(url for url in urls if url is not None)
            ),
            refresh=f' data-toucan-refresh-url="{escape(route_url("toucan.token"))}"',
            header=f' data-toucan-csrf-header="{escape(config.csrf_header)}"',
            server="" if config.server_url is None else f' server-url="{escape(config.server_url)}"',
            activity=_activity_attributes(state),
        )
        if len(table) < MAX_CACHED_URLS:
            table[root] = found
    return found


def _activity_attributes(state: ToucanState) -> str:
    """The refresh script's activity ping: its URL and its throttle (the record's activity step)."""
    policy = state.sessions.policy
    if not policy.idle:
        return ""
    return (
        f' data-toucan-activity-url="{escape(route_url("toucan.activity"))}"'
        f' data-toucan-activity-every="{policy.activity_step:g}"'
    )


def session_tag(sid: Any = None) -> str:
    """A digest of the server-side session id: groups tabs, reveals nothing (the id is 256 random bits)."""
    if sid is None:
        sid = session.get(SESSION_ID)
    return hashlib.sha256(f"flask-toucan.session:{sid}".encode()).hexdigest()[:16]


def scope_of(permissions: Mapping[str, Mapping[str, bool]]) -> str:
    """A short, stable name for a permission set (not secret: the page may see it)."""
    return _scope(issuing.canonical(permissions))


@lru_cache(maxsize=256)
def _scope(canonical: issuing.Canonical) -> str:
    permissions = {resource: dict(flags) for resource, flags in canonical}
    blob = json.dumps(permissions, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
