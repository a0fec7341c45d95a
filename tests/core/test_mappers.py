from __future__ import annotations

import pytest

from flask_toucan import AttributeMappingError, PermissionDenied, Toucan, verify_token
from flask_toucan.keys import load_signing_key

from .helpers import make_app, rsa_pem, signed_config


def signed_app(toucan=None, **extra):
    return make_app(toucan, **signed_config(**extra))


def mint_claims(app, toucan, claims, **kw):
    with app.test_request_context():
        user = toucan.login_user(claims)
        token = toucan.issue_token(user, **kw)
        key = load_signing_key(rsa_pem(0))
        return verify_token(
            token.value, {"keys": [key.public_jwk()]}, audience="toucan-embed", issuer="https://host.example"
        )


@pytest.mark.parametrize("org", [None, "", "   ", ["acme", "globex"], {"a": 1}])
def test_required_attribute_refusal(org):
    app, toucan = signed_app()
    with app.test_request_context():
        user = toucan.login_user({"sub": "alice", "iss": "https://idp", "org": org})
        with pytest.raises(AttributeMappingError) as info:
            toucan.issue_token(user)
        assert info.value.status_code == 403


def test_missing_claim_is_refusal_not_crash():
    app, toucan = signed_app()
    with app.test_request_context():
        user = toucan.login_user({"sub": "alice", "iss": "https://idp"})
        with pytest.raises(AttributeMappingError, match="organization_id"):
            toucan.issue_token(user)


def test_mapper_exception_fails_closed():
    toucan = Toucan()

    @toucan.attribute("region")
    def region(user):
        raise RuntimeError("db down")

    app, _ = signed_app(toucan)
    with app.test_request_context():
        user = toucan.login_user({"sub": "a", "iss": "i", "org": "acme"})
        with pytest.raises(AttributeMappingError):
            toucan.issue_token(user)


def test_only_mapped_attributes_and_embed_context():
    toucan = Toucan()

    @toucan.attribute("region")
    def region(user):
        return user.get("region")

    @toucan.attributes
    def bulk(user):
        return {"roles": ["analyst"], "plan": "gold"}

    toucan.attribute("groups", many=True)(lambda user: user.get("groups"))
    app, _ = signed_app(toucan)
    claims = mint_claims(
        app,
        toucan,
        {
            "sub": "alice",
            "iss": "https://idp",
            "org": "acme",
            "region": "emea",
            "groups": ["g1"],
            "email": "a@x",
        },
    )
    ctx = claims["embed_context"]
    # Classic profile: mapped attributes (whatever their names) stay attributes; roles,
    # privileges and groups come from their own mappers (defaults: USER, none, none).
    assert ctx["attributes"] == {
        "organization_id": "acme",
        "region": "emea",
        "plan": "gold",
        "roles": ["analyst"],
        "groups": ["g1"],
    }
    assert ctx["roles"] == ["USER"]
    assert ctx["groups"] == []
    assert ctx["privileges"] == {}
    assert "email" not in str(claims)
    assert claims["sub"] == "toucan-embed-client"  # docs-v3: sub is the Embed settings' client id
    assert ctx["username"] == "https://idp|alice"  # the user, as api mode's distinctId


def test_browser_supplied_attribute_ignored():
    """Refresh body fields other than 'kind' are refused; attributes never come from the request."""
    app, toucan = signed_app()
    client = app.test_client()

    @app.get("/login-test")
    def login_test():
        toucan.login_user({"sub": "alice", "iss": "https://idp", "org": "acme"})
        return toucan.csrf_token()

    csrf = client.get("/login-test").get_data(as_text=True)
    r = client.post(
        "/toucan/token",
        json={"kind": "dashboard", "organization_id": "globex"},
        headers={"X-Toucan-CSRF": csrf},
    )
    assert r.status_code == 400
    r = client.post(
        "/toucan/token?organization_id=globex", json={"kind": "dashboard"}, headers={"X-Toucan-CSRF": csrf}
    )
    assert r.status_code == 200
    key = load_signing_key(rsa_pem(0))
    claims = verify_token(
        r.get_json()["token"],
        {"keys": [key.public_jwk()]},
        audience="toucan-embed",
        issuer="https://host.example",
    )
    assert claims["embed_context"]["attributes"]["organization_id"] == "acme"


def test_mapper_source_change_shows_in_next_token():
    toucan = Toucan()
    directory = {"alice": "acme"}
    app, _ = make_app(toucan, **signed_config())
    toucan.mappers.single.clear()

    @toucan.attribute("organization_id")
    def org(user):
        return directory[user.subject]

    first = mint_claims(app, toucan, {"sub": "alice", "iss": "i"})
    directory["alice"] = "globex"
    second = mint_claims(app, toucan, {"sub": "alice", "iss": "i"})
    assert first["embed_context"]["attributes"]["organization_id"] == "acme"
    assert second["embed_context"]["attributes"]["organization_id"] == "globex"


def test_permissions_mapper_and_kinds():
    toucan = Toucan()

    @toucan.permissions
    def perms(user):
        grants = {"dashboard": {"can_view": True}}
        if "analyst" in user.get("roles", []):
            grants["ai"] = {"can_query": True}
        return grants

    app, _ = signed_app(toucan)
    analyst = mint_claims(
        app, toucan, {"sub": "a", "iss": "i", "org": "acme", "roles": ["analyst"]}, kind="assistant"
    )
    # Toucan AI's permission object never goes into the classic privileges.
    assert analyst["embed_context"]["privileges"] == {}
    with app.test_request_context():
        viewer = toucan.login_user({"sub": "v", "iss": "i", "org": "acme"})
        assert toucan.can("dashboard", viewer) and not toucan.can("assistant", viewer)
        with pytest.raises(PermissionDenied):
            toucan.issue_token(viewer, kind="assistant")
        with pytest.raises(PermissionDenied):
            toucan.issue_token(viewer, permissions={"dashboard": {"can_edit": True}})


def test_default_classic_privileges_are_empty():
    app, toucan = signed_app()
    claims = mint_claims(app, toucan, {"sub": "a", "iss": "i", "org": "acme"})
    assert claims["embed_context"]["privileges"] == {}
    assert claims["embed_context"]["roles"] == ["USER"]


def test_invalid_attribute_name_rejected_at_registration():
    from flask_toucan import ConfigurationError

    with pytest.raises(ConfigurationError):
        Toucan().attribute("bad name;drop")(lambda u: 1)
