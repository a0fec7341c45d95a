"""The pytest fixtures as a user's test would use them, the CLI, and secret hygiene."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest
import requests
from click.testing import CliRunner
from flask import Flask

from flask_toucan.sandbox import SandboxServer
from flask_toucan.sandbox.cli import sandbox_command

from .helpers import mint


@pytest.mark.integration
def test_user_style_test_with_toucan_config(toucan_sandbox, toucan_config):
    """What docs/sandbox.md shows: an api-mode app pointed at the sandbox fixture."""
    from flask_toucan import Toucan
    from flask_toucan.user import ToucanUser

    app = Flask("user-app")
    app.config.update(SECRET_KEY="k" * 40, **toucan_config)
    toucan = Toucan(app)
    toucan.attribute("organization_id")(lambda user: user["org"])
    user = ToucanUser("https://idp.example", "carol", {"org": "globex"})
    with app.test_request_context():
        first = toucan.issue_token(user, kind="dashboard")
        second = toucan.issue_token(user, kind="dashboard")
    assert first.value == second.value  # cached by the host
    assert toucan_sandbox.stats["token_requests"] == 1
    grant = toucan_sandbox.introspect(first.value)
    assert grant["active"] and grant["attributes"] == {"organization_id": "globex"}
    assert grant["permissions"] == {"dashboard": {"can_view": True}}


def test_fixture_gives_fresh_sandbox(toucan_sandbox, toucan_sandbox_factory):
    other = toucan_sandbox_factory(token_lifetime=5)
    assert other.url != toucan_sandbox.url and other.api_key != toucan_sandbox.api_key
    assert toucan_sandbox.stats == {"jwks_fetches": 0}
    token = toucan_sandbox.issue_token({"organization_id": "acme"})
    assert toucan_sandbox.introspect(token)["attributes"] == {"organization_id": "acme"}
    assert other.introspect(token) == {"active": False, "error": "invalid_token"}


def test_cli_help_and_bad_option():
    runner = CliRunner()
    result = runner.invoke(sandbox_command, ["--help"])
    assert result.exit_code == 0 and "--host-jwks-url" in result.output and "--fail-next" in result.output
    bad = runner.invoke(sandbox_command, ["--origin", "not an origin", "--port", "0"])
    assert bad.exit_code != 0 and "origin" in bad.output


def test_flask_toucan_cli_group_has_sandbox():
    from flask_toucan.cli import toucan_cli

    # Loaded when asked for (it is an optional extra): not in .commands until then.
    assert toucan_cli.get_command(None, "sandbox") is sandbox_command  # type: ignore[arg-type]
    assert "sandbox" in toucan_cli.list_commands(None)  # type: ignore[arg-type]


@pytest.mark.integration
@pytest.mark.slow
def test_python_dash_m_starts_and_prints_url_and_key():
    proc = subprocess.Popen(
        [sys.executable, "-m", "flask_toucan.sandbox", "--port", "0", "--api-key", "local-test-key-123"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("Toucan sandbox on http://127.0.0.1:")
        url = first.split(" on ", 1)[1].strip()
        assert "TOUCAN_API_KEY=local-test-key-123" in proc.stdout.readline() + proc.stdout.readline()
        assert (
            requests.get(f"{url}/embed/embed.js", timeout=5)
            .headers["Content-Type"]
            .startswith("text/javascript")
        )
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout:
            proc.stdout.close()
        if proc.stderr:
            proc.stderr.close()


@pytest.mark.integration
def test_no_secret_in_logs_or_error_bodies(caplog):
    caplog.set_level(logging.DEBUG)
    with SandboxServer(api_key="very-secret-api-key-42") as sandbox:
        token = mint(sandbox, {"organization_id": "acme"})
        bodies = [
            requests.post(
                f"{sandbox.url}/embed/generate-token",
                json={"user": {}},
                headers={"x-api-key": "nope"},
                timeout=5,
            ).text,
            requests.post(
                f"{sandbox.url}/embed/generate-token",
                json={"bad": 1},
                headers={"x-api-key": sandbox.api_key},
                timeout=5,
            ).text,
            requests.get(
                f"{sandbox.url}/api/v1/dashboards/x", headers={"Authorization": f"Bearer {token}x"}, timeout=5
            ).text,
        ]
        assert "very-secret-api-key-42" not in repr(sandbox.state.options)
        assert "key hidden" in repr(sandbox.state.codec)
    for text in [*bodies, caplog.text]:
        assert "very-secret-api-key-42" not in text
        assert token not in text
        assert "Traceback" not in text
