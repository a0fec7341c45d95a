"""The bodies of ``flask toucan ...``: key generation, JWKS, a debug mint, a config check.

:mod:`flask_toucan.cli` holds the group and loads this module when a command
runs (``init_app`` registers the group without paying for these imports).

None of these prints a secret: ``keygen`` writes the private key to a file
created with mode 0600 and prints only its ``kid``; ``mint`` prints the token
(which is what it is for) and never the API key; ``check`` masks passwords
inside URLs (``TOUCAN_STORE``, ``TOUCAN_HTTP_PROXY``).

``keygen`` runs without an app context: it must work *before* the key exists,
when an app in signed mode refuses to start for want of it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from . import issuing, live_check
from .backchannel import end_sessions, index
from .config import ToucanConfig
from .exceptions import ToucanError
from .http import redact_url
from .keys import generate_private_key_pem, load_signing_key
from .realm import realm_issuer
from .schema import describe as describe_schema
from .sessions import count_all
from .state import get_state
from .store import describe_near_cache, describe_store
from .user import ToucanUser
from .views import public_jwks


@click.command("keygen")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False), help="PEM file to write")
@click.option("--kind", type=click.Choice(["RSA", "EC", "OKP"]), default="RSA", show_default=True)
@click.option("--bits", type=int, default=3072, show_default=True, help="RSA key size")
@click.option("--force", is_flag=True, help="overwrite an existing file")
def keygen(out: str, kind: str, bits: int, force: bool) -> None:
    """Generate a signing key for TOUCAN_SIGNING_KEY (file mode 0600)."""
    path = Path(out)
    if path.exists() and not force:
        raise click.ClickException(f"{out} exists; pass --force to overwrite")
    try:
        pem = generate_private_key_pem(kind, bits)
    except ToucanError as exc:
        raise click.ClickException(exc.message) from None
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    fd = os.open(path, flags, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    os.chmod(path, 0o600)  # also when the file existed with wider permissions
    key = load_signing_key(pem)
    click.echo(f"wrote {kind} key to {out} (mode 0600); kid={key.kid} alg={key.algorithm}")


@click.command("jwks")
@with_appcontext
def jwks_command() -> None:
    """Print the public JWKS of signed mode."""
    click.echo(json.dumps(public_jwks(get_state().config), indent=2))


@click.command("mint")
@click.option("--sub", "subject", required=True, help="the user's subject")
@click.option("--iss", "issuer", default="local", show_default=True)
@click.option("--claim", "claims", multiple=True, help="extra identity claim NAME=VALUE")
@click.option("--kind", type=click.Choice(["dashboard", "chart", "assistant"]), default="dashboard")
@with_appcontext
def mint(subject: str, issuer: str, claims: tuple[str, ...], kind: str) -> None:
    """Mint a token for a subject through the app's own mappers (debugging)."""
    values = {"sub": subject, "iss": issuer}
    for item in claims:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{item!r} is not NAME=VALUE", param_hint="--claim")
        values[name] = value
    user = ToucanUser(issuer, subject, values)
    try:
        with current_app.test_request_context():
            token = issuing.issue_for(kind, user).token
    except ToucanError as exc:
        raise click.ClickException(f"{type(exc).__name__}: {exc.message}") from None
    click.echo(json.dumps({**token.as_json(), "claims": dict(token.claims)}, indent=2, default=str))


@click.command("check")
@click.option("--live", is_flag=True, help="also mint one token against the configured instance")
@click.option(
    "--user", "subject", default="toucan-check-probe", show_default=True, help="probe user's subject"
)
@click.option("--claim", "claims", multiple=True, help="probe identity claim NAME=VALUE (for the mappers)")
@click.option("--attr", "attrs", multiple=True, help="token attribute NAME=VALUE (instead of the mappers)")
@with_appcontext
def check(live: bool, subject: str, claims: tuple[str, ...], attrs: tuple[str, ...]) -> None:
    """Summarise the configuration; with --live, prove it against the instance (exit 1 on failure)."""
    state = get_state()
    _summary(state.config)
    if not live:
        click.echo("ok")
        return
    click.echo("live check:")
    report = live_check.run(
        state.config,
        state.mappers,
        subject=subject,
        claims=_pairs(claims, "--claim"),
        attributes=_pairs(attrs, "--attr") or None,
    )
    for line in report.lines:
        click.echo(line)
    if report.failures:
        raise click.ClickException(f"live check failed: {', '.join(report.failures)}")
    click.echo("ok")


def _pairs(items: tuple[str, ...], option: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{item!r} is not NAME=VALUE", param_hint=option)
        values[name] = value
    return values


def _summary(c: ToucanConfig) -> None:
    """What ``check`` prints: every URL through :func:`redact_url`, no secret at all."""
    click.echo(f"mode: {c.mode}")
    click.echo(f"base url: {c.base_url and redact_url(c.base_url)}")
    if c.mode == "api":
        click.echo(f"token api: {c.token_url and redact_url(c.token_url)}  api key: set")
    click.echo(f"server-url: {c.server_url and redact_url(c.server_url)}")
    if c.keys is not None:
        kids = ", ".join(k.kid for k in c.keys.verification_keys())
        click.echo(
            f"signing: {c.keys.current.algorithm}, current kid {c.keys.current.kid}; published: {kids}"
        )
        click.echo(f"issuer: {c.issuer}  audience: {c.audience}  ttl: {c.token_ttl}s (max {c.max_ttl}s)")
        if c.exchange_url:
            issuer = realm_issuer(c.exchange_url)
            realm = (
                f"realm issuer {redact_url(issuer)}"
                if issuer is not None
                else "warning: not a realm token endpoint (.../realms/{realm}/protocol/openid-connect/token)"
            )
            click.echo(f"exchange: {redact_url(c.exchange_url)}  ({realm})")
    click.echo(f"required attributes: {', '.join(c.required_attributes) or '(none)'}")
    for line in describe_schema(c.attribute_schema):
        click.echo(line)
    store = describe_store(c.store)  # never the URL: it may carry the Redis password
    click.echo(f"url prefix: {c.url_prefix}  store: {store}")
    near = describe_near_cache(c.store, c.store_near_cache)
    if near is not None:
        click.echo(f"store near cache: {near}")
    proxy = redact_url(c.http_proxy) if c.http_proxy else "none"
    env = " (environment proxies trusted)" if c.trust_env else ""
    click.echo(f"http: proxy {proxy}{env}; CA bundle {c.ca_bundle or 'default'}")
    click.echo(
        f"http: connect {c.connect_timeout}s, idle read {c.read_timeout}s, "
        f"deadline {c.deadline}s, retries {c.retries}"
    )


@click.group("sessions")
def sessions_group() -> None:
    """Count or end users' logins (the server-side login records in the store)."""


@sessions_group.command("end")
@click.option("--sub", required=True, help="the user's subject (the identity provider's 'sub')")
@click.option("--issuer", default=None, help="only logins from this issuer (default: any)")
@with_appcontext
def sessions_end(sub: str, issuer: str | None) -> None:
    """End every live login of a user, on every worker: their next request is anonymous."""
    try:
        ended = end_sessions(sub=sub, issuer=issuer)
    except ToucanError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"ended {ended} login(s)")


@sessions_group.command("count")
@click.option("--sub", default=None, help="only this user's logins")
@click.option("--issuer", default=None, help="with --sub: only logins from this issuer")
@with_appcontext
def sessions_count(sub: str | None, issuer: str | None) -> None:
    """How many live logins there are (all of them: Redis store only), or one user's."""
    state = get_state()
    try:
        count = index(state).count(sub=sub, issuer=issuer) if sub else count_all(state.store, state.sessions)
    except ToucanError as exc:
        raise click.ClickException(exc.message) from None
    if count is None:
        raise click.ClickException(
            "this store cannot be counted from outside the app's workers (the memory store lives in "
            "each worker; the file store hashes its keys): use --sub, or a Redis store"
        )
    click.echo(str(count))
