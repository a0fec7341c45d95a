"""``python -m demo``: the provider, the sandbox and the portal, started together.

Ctrl-C (or SIGTERM) stops all three. See docs/demo.md.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import Any

from flask_toucan import ToucanError

from .stack import DemoStack, StackError, StackOptions, quiet_request_logs
from .users import users_table


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m demo",
        description=(
            "Run the flask-toucan demo: a local OpenID provider (Canaille), the Toucan sandbox "
            "and the analytics portal, each on 127.0.0.1. Environment variables override every "
            "default; setting DEMO_OIDC_METADATA_URL or TOUCAN_BASE_URL uses that service "
            "instead of starting the local one."
        ),
        epilog=(
            "environment: DEMO_PORT, DEMO_IDP_PORT, DEMO_SANDBOX_PORT, DEMO_TOKEN_LIFETIME, "
            "DEMO_OIDC_METADATA_URL, DEMO_OIDC_CLIENT_ID, DEMO_OIDC_CLIENT_SECRET, "
            "TOUCAN_BASE_URL, TOUCAN_API_KEY, DEMO_SECRET_KEY"
        ),
    )
    parser.add_argument("--port", type=int, help="the portal's port (default 5000, env DEMO_PORT)")
    parser.add_argument(
        "--idp-port", type=int, help="the local provider's port (default 5001, env DEMO_IDP_PORT)"
    )
    parser.add_argument(
        "--sandbox-port", type=int, help="the local sandbox's port (default 5100, env DEMO_SANDBOX_PORT)"
    )
    parser.add_argument(
        "--token-lifetime",
        type=int,
        help="seconds a sandbox token lives (default 300, env DEMO_TOKEN_LIFETIME); 20 shows refreshes",
    )
    parser.add_argument("--verbose", action="store_true", help="log every request")
    return parser.parse_args(argv)


def banner(stack: DemoStack) -> str:
    lines = ["", f"  Toucan analytics portal (flask-toucan demo):  {stack.url}", ""]
    if stack.provider is not None:
        lines.append(f"  identity provider (Canaille):  {stack.provider.url}")
    else:
        lines.append(f"  identity provider:  {stack.options.oidc_metadata_url}")
    if stack.sandbox is not None:
        # The sandbox's API key is wired into the portal and printed nowhere (not even
        # here): a console banner ends up in CI logs and screen shares. A developer
        # who wants to call the sandbox by hand runs `flask toucan sandbox`.
        lines.append(f"  Toucan sandbox:  {stack.sandbox.url}")
        lines.append(f"  token lifetime:  {stack.options.token_lifetime}s")
    else:
        lines.append(f"  Toucan:  {stack.options.toucan_base_url}")
    if stack.provider is not None:
        lines += ["", "  Sign in as:", users_table()]
    lines += ["", "  Open the URL above in a browser. Ctrl-C stops everything.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    quiet_request_logs(args.verbose)
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        options = StackOptions.from_env(
            port=args.port,
            idp_port=args.idp_port,
            sandbox_port=args.sandbox_port,
            token_lifetime=args.token_lifetime,
        )
        stack = DemoStack(options).start()
    except ToucanError as exc:  # a setting the sandbox or flask-toucan refused
        print(f"demo: {exc.message}", file=sys.stderr)
        return 2
    except (StackError, RuntimeError) as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 2
    try:
        print(banner(stack), flush=True)
        while not stop.wait(0.5):
            pass
        print("demo: stopping...", flush=True)
    finally:
        stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
