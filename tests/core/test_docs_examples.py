"""The runnable examples in docs/examples/ stay runnable."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"


def load(name, monkeypatch, **env):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_basic_app_renders_login_link(monkeypatch):
    mod = load("basic_app", monkeypatch)
    r = mod.app.test_client().get("/")
    assert r.status_code == 200
    assert b"/toucan/login" in r.data


def test_own_login_round_trip(monkeypatch):
    mod = load("own_login", monkeypatch)
    c = mod.app.test_client()
    assert c.get("/whoami").get_json()["user"] is None
    c.post("/my-login", data={"username": "alice"})
    assert c.get("/whoami").get_json()["user"] == "alice"
    with mod.app.test_request_context():
        user = mod.toucan.login_user({"sub": "alice", "iss": "https://my-app.example"})
        req_attrs = mod.toucan.mappers.map_attributes(user, ["organization_id"])
    assert req_attrs == {"organization_id": "acme"}


def test_signed_mode_example(monkeypatch, tmp_path):
    from .helpers import rsa_pem

    key = tmp_path / "k.pem"
    key.write_text(rsa_pem(0))
    mod = load("signed_mode", monkeypatch, TOUCAN_SIGNING_KEY=str(key))
    r = mod.app.test_client().get("/toucan/.well-known/jwks.json")
    assert r.status_code == 200 and r.get_json()["keys"][0]["alg"] == "RS256"


@pytest.mark.parametrize("name", ["basic_app", "own_login", "signed_mode"])
def test_examples_exist(name):
    assert (EXAMPLES / f"{name}.py").is_file()
