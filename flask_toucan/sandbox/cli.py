"""``python -m flask_toucan.sandbox`` and ``flask toucan sandbox``: one click command."""

from __future__ import annotations

import click

from ..exceptions import ConfigurationError


@click.command("sandbox")
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="interface to bind (loopback by default)"
)
@click.option("--port", default=5100, show_default=True, type=int, help="0 picks a free port")
@click.option(
    "--data-file", type=click.Path(dir_okay=False), help="SQLite file (sample data written if missing)"
)
@click.option("--token-lifetime", default=3600, show_default=True, type=int, help="seconds")
@click.option(
    "--origin", "origins", multiple=True, help="authorized page origin (repeatable; port may be '*')"
)
@click.option("--host-jwks-url", help="signed mode: the host app's JWKS URL")
@click.option("--issuer", help="signed mode: expected iss (default: the JWKS URL's origin)")
@click.option("--audience", default="toucan-sandbox", show_default=True, help="signed mode: expected aud")
@click.option(
    "--jwks-cooldown", default=30.0, show_default=True, type=float, help="min seconds between refetches"
)
@click.option("--tenant", default="sandbox", show_default=True, help="classic profile: the realm name")
@click.option(
    "--exchange-client-id", default="toucan-embed-client", show_default=True, help="classic: embed client"
)
@click.option(
    "--exchange-client-secret",
    envvar="TOUCAN_SANDBOX_EXCHANGE_CLIENT_SECRET",
    help="classic: the embed client's secret (default: random, printed at start)",
)
@click.option("--api-key", envvar="TOUCAN_SANDBOX_API_KEY", help="default: a random key, printed at start")
@click.option("--latency-ms", default=0, show_default=True, type=int, help="added latency on the token API")
@click.option(
    "--fail-rate", default=0.0, show_default=True, type=float, help="share of token API calls answering 503"
)
@click.option(
    "--fail-next", default=0, show_default=True, type=int, help="the first N token API calls answer 503"
)
@click.option("--rate-limit-next", default=0, show_default=True, type=int, help="the next N calls answer 429")
@click.option("--retry-after", default=1, show_default=True, type=int, help="Retry-After of injected 503/429")
def sandbox_command(host: str, port: int, origins: tuple[str, ...], **options: object) -> None:
    """Run a local stand-in for Toucan AI (token API, embed.js, data API with RLS)."""
    from .server import SandboxServer

    try:
        server = SandboxServer(host=host, port=port, origins=origins or None, **options).bind()
    except ConfigurationError as exc:
        raise click.ClickException(exc.message) from None
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    opts = server.state.options
    base = server.url
    # Printing the sandbox's own, local API key here is intended: it is how the
    # developer copies it into TOUCAN_API_KEY. It is never logged anywhere else.
    click.echo(f"Toucan sandbox on {base}")
    click.echo(f"  TOUCAN_BASE_URL={base}")
    click.echo(f"  TOUCAN_API_KEY={opts.api_key}")
    click.echo(f"  authorized origins: {', '.join(opts.origins)}")
    click.echo(f"  token lifetime: {opts.token_lifetime}s; data: {server.data_file}")
    if opts.host_jwks_url:
        click.echo(f"  signed mode: JWKS {opts.host_jwks_url}, iss {opts.issuer}, aud {opts.audience}")
        # Like the API key above: the sandbox's own local secret, printed to be copied.
        click.echo(f"  TOUCAN_EXCHANGE_URL={server.exchange_url}")
        click.echo(f"  TOUCAN_EXCHANGE_CLIENT_ID={opts.exchange_client_id}")
        click.echo(f"  TOUCAN_EXCHANGE_CLIENT_SECRET={opts.exchange_client_secret}")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


def main() -> None:
    sandbox_command(prog_name="python -m flask_toucan.sandbox")
