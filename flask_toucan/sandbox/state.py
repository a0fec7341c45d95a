"""Everything one sandbox instance holds, in one object on ``app.extensions``.

No module-level state: several sandboxes can run in one process (a test can
start two with different options), each with its own key, counters and faults.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, current_app

from .codec import TokenCodec
from .data import ORGANIZATIONS, ROW_COUNT, SEED, ensure_database
from .faults import Faults, Stats
from .hostkeys import HostKeys, SeenJti
from .options import SandboxOptions
from .tenants import data_set_digest

EXTENSION_KEY = "toucan_sandbox"
DATA_VERSION = 1


@dataclass(repr=False)
class SandboxState:
    options: SandboxOptions
    data_file: str
    codec: TokenCodec = field(default_factory=TokenCodec)
    faults: Faults = field(default_factory=Faults)
    stats: Stats = field(default_factory=Stats)
    host_keys: HostKeys | None = None
    seen_jti: SeenJti = field(default_factory=SeenJti)
    oauth_server: Any = None  # the classic token endpoint's Authlib AuthorizationServer

    def __repr__(self) -> str:
        return f"SandboxState(data_file={self.data_file!r}, options={self.options!r})"

    @classmethod
    def from_options(cls, options: SandboxOptions) -> SandboxState:
        organizations = options.tenants or ORGANIZATIONS
        data_set = f"{SEED}-{ROW_COUNT}"
        if options.tenants is not None or options.sales is not None:
            data_set = data_set_digest(organizations, options.sales)
        data_file = options.data_file or os.path.join(
            tempfile.gettempdir(), f"flask-toucan-sandbox-v{DATA_VERSION}-{data_set}.sqlite3"
        )
        ensure_database(data_file, organizations, options.sales)
        state = cls(options=options, data_file=data_file)
        state.faults.update(
            latency_ms=options.latency_ms,
            fail_rate=options.fail_rate,
            fail_next=options.fail_next,
            rate_limit_next=options.rate_limit_next,
            lose_next=options.lose_next,
            retry_after=options.retry_after,
            fault_seed=options.fault_seed,
            reject=dict(options.reject) if options.reject is not None else None,
        )
        if options.host_jwks_url:
            state.host_keys = HostKeys(options.host_jwks_url, cooldown=options.jwks_cooldown)
        return state

    def stats_snapshot(self) -> dict[str, Any]:
        snap: dict[str, Any] = self.stats.snapshot()
        snap["jwks_fetches"] = self.host_keys.fetches if self.host_keys else 0
        return snap


def get_state(app: Flask | None = None) -> SandboxState:
    state: SandboxState = (app or current_app).extensions[EXTENSION_KEY]
    return state
