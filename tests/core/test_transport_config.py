"""``TOUCAN_HTTP_*`` settings: validated at ``init_app``, errors name the key, never a password."""

from __future__ import annotations

import pytest
import trustme

from flask_toucan import ConfigurationError
from flask_toucan.extension import get_state

from .helpers import make_app


def test_defaults():
    app, _ = make_app()
    with app.app_context():
        state = get_state()
    c = state.config
    assert (c.read_timeout, c.http_proxy, c.ca_bundle, c.trust_env) == (5.0, None, None, False)
    assert state.transport.session.trust_env is False
    assert state.transport.session.proxies == {}
    assert state.transport.verify is True


def test_settings_reach_the_transport(tmp_path):
    ca = trustme.CA()
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    app, _ = make_app(
        TOUCAN_HTTP_READ_TIMEOUT=1.5,
        TOUCAN_HTTP_PROXY="http://u:pw@proxy.internal:3128",
        TOUCAN_HTTP_CA_BUNDLE=str(bundle),
        TOUCAN_HTTP_TRUST_ENV=True,
    )
    with app.app_context():
        t = get_state().transport
    assert t.read_timeout == 1.5
    assert t.session.proxies == {
        "http": "http://u:pw@proxy.internal:3128",
        "https": "http://u:pw@proxy.internal:3128",
    }
    assert t.verify == str(bundle)
    assert t.session.trust_env is True
    assert "pw" not in repr(t)


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("TOUCAN_HTTP_READ_TIMEOUT", 0, "TOUCAN_HTTP_READ_TIMEOUT must be a positive number"),
        ("TOUCAN_HTTP_READ_TIMEOUT", "5", "TOUCAN_HTTP_READ_TIMEOUT must be a positive number"),
        ("TOUCAN_HTTP_TRUST_ENV", "yes", "TOUCAN_HTTP_TRUST_ENV must be True or False"),
        ("TOUCAN_HTTP_PROXY", "socks5://u:s3cr3t-pw@proxy:1080", "TOUCAN_HTTP_PROXY must be an http://"),
        ("TOUCAN_HTTP_PROXY", "proxy.internal:3128", "TOUCAN_HTTP_PROXY must be an http://"),
        ("TOUCAN_HTTP_PROXY", "http://u:s3cr3t-pw@proxy:notaport", "TOUCAN_HTTP_PROXY is not a valid URL"),
        ("TOUCAN_HTTP_PROXY", "http://u:s3cr3t-pw@proxy:3128/path", "TOUCAN_HTTP_PROXY must be scheme://"),
        ("TOUCAN_HTTP_PROXY", 3128, "TOUCAN_HTTP_PROXY must be a URL string"),
        (
            "TOUCAN_HTTP_CA_BUNDLE",
            "/nonexistent/ca.pem",
            "TOUCAN_HTTP_CA_BUNDLE: /nonexistent/ca.pem does not exist",
        ),
        ("TOUCAN_HTTP_CA_BUNDLE", 42, "TOUCAN_HTTP_CA_BUNDLE must be the path of a PEM file"),
    ],
)
def test_bad_values_name_the_key(key, value, expected):
    with pytest.raises(ConfigurationError) as info:
        make_app(**{key: value})
    assert expected in info.value.message
    assert "s3cr3t-pw" not in info.value.message


def test_ca_bundle_that_is_not_pem(tmp_path):
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    with pytest.raises(ConfigurationError, match=r"TOUCAN_HTTP_CA_BUNDLE: .* is not a readable PEM bundle"):
        make_app(TOUCAN_HTTP_CA_BUNDLE=str(junk))
