"""Each file in docs/examples/ runs with exactly the commands its docstring gives.

The commands are read from the docstring, not copied here, so a doc that stops
working fails this test. The one liberty taken: ports. The documented commands
use the default ports (5000, 5001, 5100), which a CI machine may not have free;
each server is given port 0 (``--port 0``, ``FLASK_RUN_PORT``) and the app the
addresses the servers printed (the docstrings say to set them when they differ).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import requests

from .helpers import (
    EXAMPLES,
    copy_examples,
    documented_commands,
    form_fields,
    free_port,
    run,
    running,
    wait_http,
)

pytestmark = pytest.mark.integration


def introspect(base: str, key: str, token: str) -> dict:
    resp = requests.post(
        f"{base}/embed/introspect", json={"token": token}, headers={"x-api-key": key}, timeout=10
    )
    assert resp.status_code == 200, resp.text
    return resp.json()


def auth_tokens(html: str) -> list[str]:
    return re.findall(r'auth-token="([^"]+)"', html)


def test_every_example_documents_its_commands() -> None:
    for path in sorted(EXAMPLES.glob("*.py")):
        commands = documented_commands(path.stem)
        assert any(f"--app docs/examples/{path.stem}" in c for c in commands), path.name


def test_basic_app_logs_in_at_the_demo_provider_and_embeds(tmp_path: Path) -> None:
    cwd = copy_examples(tmp_path)
    sandbox_cmd, provider_cmd, app_cmd = documented_commands("basic_app")
    assert sandbox_cmd == "python -m flask_toucan.sandbox" and provider_cmd == "python -m demo.provider"
    app_port = free_port()
    app_url = f"http://127.0.0.1:{app_port}"
    with running(sandbox_cmd, {}, cwd, "--port", "0") as sandbox:
        base = sandbox.wait_for(r"TOUCAN_BASE_URL=(\S+)").group(1)
        key = sandbox.wait_for(r"TOUCAN_API_KEY=(\S+)").group(1)
        with running(
            provider_cmd, {}, cwd, "--port", "0", "--redirect-uri", f"{app_url}/toucan/callback"
        ) as idp:
            metadata_url = idp.wait_for(r"OIDC_METADATA_URL=(\S+)").group(1)
            secret = idp.wait_for(r"OIDC_CLIENT_SECRET=(\S+)").group(1)
            values = {"TOUCAN_API_KEY": key, "OIDC_CLIENT_SECRET": secret}
            with running(
                app_cmd,
                values,
                cwd,
                TOUCAN_BASE_URL=base,
                OIDC_METADATA_URL=metadata_url,
                FLASK_RUN_PORT=str(app_port),
            ) as app:
                home = wait_http(app_url + "/", app)
                assert home.status_code == 200 and "/toucan/login" in home.text
                browser = requests.Session()
                form = browser.get(app_url + "/toucan/login?next=/", timeout=10)  # at the provider
                assert form.status_code == 200 and form.url.startswith(metadata_url.split("/.well")[0])
                step = browser.post(form.url, data={**form_fields(form.text), "login": "alice"}, timeout=10)
                fields = {**form_fields(step.text), "password": "alice-demo-pass"}
                page = browser.post(step.url, data=fields, timeout=10)  # back at the app, logged in
                assert page.status_code == 200 and page.url == app_url + "/", page.url
                assert "Log out" in page.text
                tokens = auth_tokens(page.text)
                assert len(tokens) == 2  # the dashboard and the assistant (alice is an analyst)
                grant = introspect(base, key, tokens[0])
                assert grant["attributes"] == {"organization_id": "acme", "region": "emea"}


def test_basic_app_says_when_the_provider_is_down(tmp_path: Path) -> None:
    """The provider not started: /toucan/login is a clear 503, not a 500."""
    cwd = copy_examples(tmp_path)
    app_cmd = documented_commands("basic_app")[-1]
    app_port, dead_port = free_port(), free_port()
    with running(
        app_cmd,
        {"TOUCAN_API_KEY": "k", "OIDC_CLIENT_SECRET": "s"},
        cwd,
        OIDC_METADATA_URL=f"http://127.0.0.1:{dead_port}/.well-known/openid-configuration",
        FLASK_RUN_PORT=str(app_port),
    ) as app:
        wait_http(f"http://127.0.0.1:{app_port}/", app)
        resp = requests.get(f"http://127.0.0.1:{app_port}/toucan/login", timeout=30, allow_redirects=False)
        assert resp.status_code == 503
        assert resp.json()["message"] == "the identity provider is unreachable; try again"
        assert "Traceback" not in "".join(app.seen)


def test_own_login_runs_as_documented(tmp_path: Path) -> None:
    cwd = copy_examples(tmp_path)
    sandbox_cmd, app_cmd = documented_commands("own_login")
    app_port = free_port()
    app_url = f"http://127.0.0.1:{app_port}"
    with running(sandbox_cmd, {}, cwd, "--port", "0") as sandbox:
        base = sandbox.wait_for(r"TOUCAN_BASE_URL=(\S+)").group(1)
        key = sandbox.wait_for(r"TOUCAN_API_KEY=(\S+)").group(1)
        with running(
            app_cmd, {"TOUCAN_API_KEY": key}, cwd, TOUCAN_BASE_URL=base, FLASK_RUN_PORT=str(app_port)
        ) as app:
            home = wait_http(app_url + "/", app)
            assert home.status_code == 200 and 'action="/my-login"' in home.text
            browser = requests.Session()
            page = browser.post(app_url + "/my-login", data={"username": "alice"}, timeout=10)
            assert page.status_code == 200 and page.url == app_url + "/"  # not a 404
            assert introspect(base, key, auth_tokens(page.text)[0])["attributes"] == {
                "organization_id": "acme"
            }
            out = browser.post(app_url + "/my-logout", timeout=10)
            assert out.status_code == 200 and not auth_tokens(out.text)


def test_signed_mode_keygen_then_run(tmp_path: Path) -> None:
    cwd = copy_examples(tmp_path)
    keygen_cmd, app_cmd = documented_commands("signed_mode")
    done = run(keygen_cmd, {}, cwd)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (cwd / "toucan-signing.pem").is_file()
    app_port = free_port()
    with running(app_cmd, {}, cwd, FLASK_RUN_PORT=str(app_port)) as app:
        wait_http(f"http://127.0.0.1:{app_port}/", app)
        jwks = requests.get(f"http://127.0.0.1:{app_port}/toucan/.well-known/jwks.json", timeout=10)
        assert jwks.status_code == 200 and jwks.json()["keys"][0]["kty"] == "RSA"


def test_own_chat_runs_as_documented(tmp_path: Path) -> None:
    cwd = copy_examples(tmp_path)
    sandbox_cmd, app_cmd = documented_commands("own_chat")
    app_port = free_port()
    app_url = f"http://127.0.0.1:{app_port}"
    with running(sandbox_cmd, {}, cwd, "--port", "0") as sandbox:
        base = sandbox.wait_for(r"TOUCAN_BASE_URL=(\S+)").group(1)
        key = sandbox.wait_for(r"TOUCAN_API_KEY=(\S+)").group(1)
        with running(
            app_cmd, {"TOUCAN_API_KEY": key}, cwd, TOUCAN_BASE_URL=base, FLASK_RUN_PORT=str(app_port)
        ) as app:
            wait_http(app_url + "/", app)
            browser = requests.Session()
            assert browser.post(app_url + "/my-login", data={"username": "alice"}, timeout=10).ok
            answer = browser.post(app_url + "/ask", json={"question": "What are my total sales?"}, timeout=30)
            assert answer.status_code == 200 and answer.json()["answer"].startswith("Total sales for Acme")
