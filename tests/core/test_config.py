from __future__ import annotations

import pytest
from flask import Flask

from flask_toucan import ConfigurationError, Toucan
from flask_toucan.keys import generate_private_key_pem

from .helpers import API_KEY, SECRET_KEY, make_app, rsa_pem, signed_config


def init(**config):
    app = Flask("cfg")
    app.config.update(SECRET_KEY=SECRET_KEY, **config)
    Toucan(app)
    return app


def expect_error(key: str, **config):
    with pytest.raises(ConfigurationError) as info:
        init(**config)
    assert key in str(info.value)
    return info.value


def test_defaults_in_api_mode():
    app = init(TOUCAN_BASE_URL="http://127.0.0.1:9/", TOUCAN_API_KEY=API_KEY)
    state = app.extensions["toucan"]
    assert state.config.mode == "api"
    assert state.config.token_url == "http://127.0.0.1:9/embed/generate-token"
    assert state.config.embed_script_url == "http://127.0.0.1:9/embed/embed.js"
    assert state.config.required_attributes == ("organization_id",)
    assert state.config.url_prefix == "/toucan"
    assert API_KEY not in repr(state) and API_KEY not in repr(state.config)


def test_missing_api_key_names_the_key():
    expect_error("TOUCAN_API_KEY", TOUCAN_BASE_URL="http://127.0.0.1:9")


def test_missing_base_url_in_api_mode():
    expect_error("TOUCAN_BASE_URL", TOUCAN_API_KEY=API_KEY)


def test_unknown_mode():
    expect_error("TOUCAN_MODE", TOUCAN_MODE="magic")


def test_missing_signing_key():
    expect_error("TOUCAN_SIGNING_KEY", TOUCAN_MODE="signed", TOUCAN_ISSUER="i", TOUCAN_AUDIENCE="a")


def test_weak_rsa_key_refused():
    weak = _rsa_1024()
    err = expect_error("TOUCAN_SIGNING_KEY", **signed_config(TOUCAN_SIGNING_KEY=weak))
    assert "2048" in str(err)
    assert "PRIVATE KEY" not in str(err)


def test_weak_hmac_secret_refused():
    expect_error(
        "TOUCAN_SIGNING_KEY",
        **signed_config(TOUCAN_SIGNING_KEY="short-secret", TOUCAN_SIGNING_ALGORITHM="HS256"),
    )


def test_ttl_above_maximum():
    expect_error("TOUCAN_TOKEN_TTL", **signed_config(TOUCAN_TOKEN_TTL=7200, TOUCAN_TOKEN_MAX_TTL=3600))


def test_hmac_and_asymmetric_mixed():
    err = expect_error(
        "HMAC",
        **signed_config(
            TOUCAN_SIGNING_KEY="x" * 40,
            TOUCAN_SIGNING_ALGORITHM="HS256",
            TOUCAN_SIGNING_KEY_FALLBACKS=[rsa_pem(1)],
        ),
    )
    assert "x" * 40 not in str(err)


def test_hmac_algorithm_with_pem_key():
    expect_error("HMAC", **signed_config(TOUCAN_SIGNING_ALGORITHM="HS256"))


def test_algorithm_must_fit_key():
    expect_error("TOUCAN_SIGNING_ALGORITHM", **signed_config(TOUCAN_SIGNING_ALGORITHM="ES256"))


def test_algorithm_none_refused():
    expect_error("TOUCAN_SIGNING_ALGORITHM", **signed_config(TOUCAN_SIGNING_ALGORITHM="none"))


def test_signed_mode_needs_issuer_and_audience():
    expect_error("TOUCAN_ISSUER", **signed_config(TOUCAN_ISSUER=None))
    expect_error("TOUCAN_AUDIENCE", **signed_config(TOUCAN_AUDIENCE=""))


def test_signing_key_from_file(tmp_path):
    path = tmp_path / "key.pem"
    path.write_text(rsa_pem(0))
    app = init(**signed_config(TOUCAN_SIGNING_KEY=str(path)))
    assert app.extensions["toucan"].config.keys.current.algorithm == "RS256"


def test_signing_key_path_that_does_not_exist():
    err = expect_error("TOUCAN_SIGNING_KEY", **signed_config(TOUCAN_SIGNING_KEY="/nonexistent/key.pem"))
    assert "/nonexistent" not in str(err)  # the value is never echoed


def test_secret_key_required():
    app = Flask("nosecret")
    app.config.update(TOUCAN_BASE_URL="http://127.0.0.1:9", TOUCAN_API_KEY=API_KEY)
    with pytest.raises(ConfigurationError, match="SECRET_KEY"):
        Toucan(app)


def test_base_url_with_credentials_refused():
    expect_error("TOUCAN_BASE_URL", TOUCAN_BASE_URL="http://user:pw@127.0.0.1", TOUCAN_API_KEY=API_KEY)


def test_bad_prefix_and_rate_limit():
    expect_error(
        "TOUCAN_URL_PREFIX",
        TOUCAN_BASE_URL="http://x.test",
        TOUCAN_API_KEY=API_KEY,
        TOUCAN_URL_PREFIX="toucan/",
    )
    expect_error(
        "TOUCAN_RATE_LIMIT", TOUCAN_BASE_URL="http://x.test", TOUCAN_API_KEY=API_KEY, TOUCAN_RATE_LIMIT="lots"
    )


def test_init_twice_refused():
    app, toucan = make_app()
    with pytest.raises(ConfigurationError, match="already"):
        toucan.init_app(app)


def test_app_factory_and_two_apps_mint_different_tokens():
    """One Toucan object, two apps with different keys and audiences."""
    from flask_toucan import verify_token

    toucan = Toucan()
    app1, _ = make_app(toucan, **signed_config(TOUCAN_AUDIENCE="aud-one"))
    app2, _ = make_app(Toucan(), **signed_config(TOUCAN_AUDIENCE="aud-two", TOUCAN_SIGNING_KEY=rsa_pem(1)))
    tokens = []
    for app in (app1, app2):
        with app.test_request_context():
            t = app.extensions["toucan"].manager
            user = t.login_user({"sub": "u1", "iss": "https://idp", "org": "acme"})
            tokens.append((app, t.issue_token(user)))
    (a1, t1), (a2, t2) = tokens
    assert t1.value != t2.value
    with a1.app_context():
        jwks1 = a1.extensions["toucan"].manager.jwks()
    with a2.app_context():
        jwks2 = a2.extensions["toucan"].manager.jwks()
    assert verify_token(t1.value, jwks1, audience="aud-one", issuer="https://host.example")
    assert verify_token(t2.value, jwks2, audience="aud-two", issuer="https://host.example")
    from flask_toucan import InvalidTokenError

    with pytest.raises(InvalidTokenError):
        verify_token(t1.value, jwks2, audience="aud-one", issuer="https://host.example")


def _rsa_1024() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def test_generate_key_kinds():
    for kind in ("RSA", "EC", "OKP"):
        assert b"PRIVATE KEY" in generate_private_key_pem(kind, 2048)
