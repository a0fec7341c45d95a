"""Signing keys for ``signed`` mode: loading, algorithm rules, rotation, JWKS.

Kept free of Flask so the sandbox, the CLI and the tests can use it as is.

Rotation follows itsdangerous / Flask's ``SECRET_KEY_FALLBACKS``: one *current*
key signs; *fallback* keys (public halves are enough) still verify during the
overlap; a *next* key is published in the JWKS before it starts signing, so
verifiers that cache the JWKS already know it on the day it is switched in.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from .exceptions import ConfigurationError

#: Asymmetric algorithms by key family. RS256 first: the default of an RSA key,
#: except in the classic profile (``TOUCAN_EXCHANGE_URL``), where it is RS512,
#: the algorithm of docs-v3's example (see ``settings._signing_keys``).
RSA_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")
EC_ALGORITHMS = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}
OKP_ALGORITHMS = ("EdDSA",)
HMAC_ALGORITHMS = ("HS256", "HS384", "HS512")
ASYMMETRIC_ALGORITHMS = (*RSA_ALGORITHMS, *EC_ALGORITHMS.values(), *OKP_ALGORITHMS)
ALL_ALGORITHMS = (*ASYMMETRIC_ALGORITHMS, *HMAC_ALGORITHMS)

MIN_RSA_BITS = 2048
MIN_HMAC_BYTES = 32  # RFC 7518 3.2: a key at least as long as the hash output

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey


@dataclass(frozen=True, repr=False)
class SigningKey:
    """One key: ``kid``, algorithm, the key material (private part optional)."""

    kid: str
    algorithm: str
    public: PublicKey | bytes
    private: PrivateKey | bytes | None = None

    @property
    def is_hmac(self) -> bool:
        return self.algorithm in HMAC_ALGORITHMS

    @property
    def signing_material(self) -> PrivateKey | bytes:
        if self.private is None:
            raise ConfigurationError(f"key {self.kid!r} has no private part and cannot sign")
        return self.private

    def public_jwk(self) -> dict[str, Any]:
        """The public JWK (never for HMAC keys: those are secrets)."""
        if self.is_hmac:
            raise ConfigurationError("HMAC keys are secrets and are never published as JWKS")
        assert not isinstance(self.public, bytes)  # only HMAC keys are bytes
        jwk = _public_jwk_dict(self.public)
        jwk.update({"kid": self.kid, "alg": self.algorithm, "use": "sig"})
        return jwk

    def __repr__(self) -> str:  # never show key material
        return f"SigningKey(kid={self.kid!r}, algorithm={self.algorithm!r})"


@dataclass(frozen=True, repr=False)
class KeySet:
    """The current signing key, the next one (published early) and fallbacks."""

    current: SigningKey
    next: SigningKey | None = None
    fallbacks: tuple[SigningKey, ...] = field(default_factory=tuple)

    def verification_keys(self) -> list[SigningKey]:
        keys = [self.current]
        if self.next is not None:
            keys.append(self.next)
        keys.extend(self.fallbacks)
        return keys

    def jwks(self) -> dict[str, list[dict[str, Any]]]:
        return {"keys": [k.public_jwk() for k in self.verification_keys()]}

    def __repr__(self) -> str:
        kids = [k.kid for k in self.verification_keys()]
        return f"KeySet(current={self.current.kid!r}, kids={kids!r})"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _public_jwk_dict(public: PublicKey) -> dict[str, Any]:
    if isinstance(public, rsa.RSAPublicKey):
        return dict(RSAAlgorithm.to_jwk(public, as_dict=True))
    if isinstance(public, ec.EllipticCurvePublicKey):
        return dict(ECAlgorithm.to_jwk(public, as_dict=True))
    return dict(OKPAlgorithm.to_jwk(public, as_dict=True))


def thumbprint(public: PublicKey) -> str:
    """RFC 7638 JWK thumbprint: a ``kid`` derived from the key, stable across restarts."""
    jwk = _public_jwk_dict(public)
    members = {"RSA": ("e", "kty", "n"), "EC": ("crv", "kty", "x", "y"), "OKP": ("crv", "kty", "x")}
    required = {k: jwk[k] for k in members[jwk["kty"]]}
    canonical = json.dumps(required, separators=(",", ":"), sort_keys=True).encode()
    return _b64(hashlib.sha256(canonical).digest())


def algorithms_for(public: PublicKey) -> tuple[str, ...]:
    """The algorithms a key may be used with (its family, nothing else)."""
    if isinstance(public, rsa.RSAPublicKey):
        return RSA_ALGORITHMS
    if isinstance(public, ec.EllipticCurvePublicKey):
        curve = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}.get(public.curve.name)
        if curve is None:
            raise ConfigurationError(f"unsupported EC curve {public.curve.name!r}")
        return (EC_ALGORITHMS[curve],)
    if isinstance(public, ed25519.Ed25519PublicKey):
        return OKP_ALGORITHMS
    raise ConfigurationError(f"unsupported key type {type(public).__name__}")


def _read_source(source: str | bytes | os.PathLike[str], setting: str) -> bytes:
    """PEM text, or a path to a PEM file. The value itself is never echoed."""
    if isinstance(source, bytes):
        return source
    text = os.fspath(source)
    if "-----BEGIN" in text:
        return text.encode()
    path = Path(text)
    try:
        if path.is_file():
            return path.read_bytes()
    except OSError:
        pass
    raise ConfigurationError(f"{setting} is neither PEM text nor a readable file path")


def _hmac_key(source: Any, algorithm: str, kid: str | None, setting: str) -> SigningKey:
    """An HMAC secret (only with an explicit ``HS*`` algorithm): long enough, never a PEM key."""
    secret = source if isinstance(source, bytes) else os.fspath(source).encode()
    if b"-----BEGIN" in secret:
        raise ConfigurationError(
            f"{setting} is a PEM key but TOUCAN_SIGNING_ALGORITHM is {algorithm}: "
            "HMAC and asymmetric keys cannot be mixed"
        )
    if len(secret) < MIN_HMAC_BYTES:
        raise ConfigurationError(
            f"{setting} is too weak for {algorithm}: use at least {MIN_HMAC_BYTES} random bytes"
        )
    if kid is None:
        kid = _b64(hashlib.sha256(b"flask-toucan-hmac-kid" + secret).digest())[:16]
    return SigningKey(kid=kid, algorithm=algorithm, public=secret, private=secret)


def _load_pem(pem: bytes, setting: str) -> tuple[PrivateKey | None, Any]:
    """(private key or ``None``, public key) of a PEM private or public key."""
    try:
        if b"PRIVATE KEY" in pem:
            loaded = serialization.load_pem_private_key(pem, password=None)
            if not isinstance(
                loaded, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
            ):
                raise ConfigurationError(f"{setting}: unsupported private key type")
            return loaded, loaded.public_key()
        return None, serialization.load_pem_public_key(pem)
    except (ValueError, TypeError):
        raise ConfigurationError(f"{setting} could not be loaded as a PEM key") from None


def load_signing_key(
    source: str | bytes | os.PathLike[str] | Mapping[str, Any],
    *,
    algorithm: str | None = None,
    kid: str | None = None,
    setting: str = "TOUCAN_SIGNING_KEY",
    require_private: bool = True,
    rsa_default: str = "RS256",
) -> SigningKey:
    """Load one key, check its strength and pick or check its algorithm.

    ``source`` may be PEM text, a file path, raw bytes, or a mapping
    ``{"key": ..., "kid": ..., "algorithm": ...}`` (how fallbacks name their kid).
    For HMAC (only with an explicit ``HS*`` algorithm) the source is the secret.
    """
    if isinstance(source, Mapping):
        if "key" not in source:
            raise ConfigurationError(f"{setting}: a key given as a mapping needs a 'key' entry")
        return load_signing_key(
            source["key"],
            algorithm=source.get("algorithm", algorithm),
            kid=source.get("kid", kid),
            setting=setting,
            require_private=require_private,
            rsa_default=rsa_default,
        )
    if algorithm is not None and algorithm not in ALL_ALGORITHMS:
        raise ConfigurationError(
            f"TOUCAN_SIGNING_ALGORITHM {algorithm!r} is not allowed; use one of {', '.join(ALL_ALGORITHMS)}"
        )
    if algorithm in HMAC_ALGORITHMS:
        return _hmac_key(source, algorithm, kid, setting)
    private, public = _load_pem(_read_source(source, setting), setting)
    if require_private and private is None:
        raise ConfigurationError(f"{setting} must be a private key (it signs tokens)")
    if isinstance(public, rsa.RSAPublicKey) and public.key_size < MIN_RSA_BITS:
        raise ConfigurationError(
            f"{setting} is too weak: RSA keys need at least {MIN_RSA_BITS} bits (got {public.key_size})"
        )
    allowed = algorithms_for(public)
    if algorithm is None:
        algorithm = rsa_default if allowed is RSA_ALGORITHMS and rsa_default in allowed else allowed[0]
    elif algorithm not in allowed:
        raise ConfigurationError(
            f"TOUCAN_SIGNING_ALGORITHM {algorithm} does not fit the key in {setting} "
            f"(allowed for this key: {', '.join(allowed)})"
        )
    return SigningKey(kid=kid or thumbprint(public), algorithm=algorithm, public=public, private=private)


def load_key_set(
    current: Any,
    *,
    algorithm: str | None = None,
    kid: str | None = None,
    next_key: Any = None,
    fallbacks: Iterable[Any] | None = None,
    rsa_default: str = "RS256",
) -> KeySet:
    """Build the :class:`KeySet` and refuse mixing HMAC with asymmetric keys.

    ``rsa_default``: the algorithm of an RSA key given none (the classic profile
    passes RS512, docs-v3's example); the next and older keys get the same, so
    the ``alg`` they are published with is the one they sign or signed with.
    """
    cur = load_signing_key(current, algorithm=algorithm, kid=kid, rsa_default=rsa_default)
    nxt = None
    if next_key is not None:
        nxt = load_signing_key(
            next_key,
            algorithm=algorithm if cur.is_hmac else None,
            setting="TOUCAN_SIGNING_KEY_NEXT",
            rsa_default=rsa_default,
        )
    olds: Sequence[Any] = list(fallbacks or ())
    olds_loaded = tuple(
        load_signing_key(
            k,
            algorithm=algorithm if cur.is_hmac else None,
            setting=f"TOUCAN_SIGNING_KEY_FALLBACKS[{i}]",
            require_private=False,
            rsa_default=rsa_default,
        )
        for i, k in enumerate(olds)
    )
    keys = [cur, *([nxt] if nxt else []), *olds_loaded]
    if len({k.is_hmac for k in keys}) > 1:
        raise ConfigurationError(
            "TOUCAN_SIGNING_KEY, TOUCAN_SIGNING_KEY_NEXT and TOUCAN_SIGNING_KEY_FALLBACKS mix "
            "HMAC and asymmetric keys; use one kind"
        )
    kids = [k.kid for k in keys]
    if len(set(kids)) != len(kids):
        raise ConfigurationError("signing keys must have distinct kids")
    return KeySet(current=cur, next=nxt, fallbacks=olds_loaded)


def generate_private_key_pem(kind: str = "RSA", bits: int = 3072) -> bytes:
    """A fresh private key as PKCS#8 PEM (used by ``flask toucan keygen`` and tests)."""
    key: PrivateKey
    if kind == "RSA":
        if bits < MIN_RSA_BITS:
            raise ConfigurationError(f"RSA keys need at least {MIN_RSA_BITS} bits")
        key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    elif kind == "EC":
        key = ec.generate_private_key(ec.SECP256R1())
    elif kind == "OKP":
        key = ed25519.Ed25519PrivateKey.generate()
    else:
        raise ConfigurationError(f"unknown key kind {kind!r} (RSA, EC or OKP)")
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
