"""Opaque embed tokens: the grant as JSON, encrypted with JWE (dir + A256GCM).

Like Toucan's, the token is opaque to the host: it is encrypted and
authenticated with a random 256-bit key that lives only in this process, so
the host can neither read nor forge it, and a sandbox restart revokes every
token it issued. The key is never logged, printed or put in an error.
"""

from __future__ import annotations

import json
import os
from typing import Any

from joserfc import jwe
from joserfc.errors import JoseError
from joserfc.jwk import OctKey

from .grants import Grant

HEADER = {"alg": "dir", "enc": "A256GCM", "typ": "toucan-embed+jwe"}
MAX_TOKEN = 16 * 1024


class TokenRejected(Exception):
    """The token cannot be used: ``code`` is ``invalid_token`` or ``token_expired``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class TokenCodec:
    """Encrypts grants into tokens and back."""

    def __init__(self, key: bytes | None = None) -> None:
        self._key = OctKey.import_key(key if key is not None else os.urandom(32))

    def __repr__(self) -> str:
        return "TokenCodec(<key hidden>)"

    def encode(self, grant: Grant) -> str:
        plaintext = json.dumps(grant.payload(), separators=(",", ":")).encode()
        return jwe.encrypt_compact(HEADER, plaintext, self._key, algorithms=["dir", "A256GCM"])

    def decode(self, token: str, *, check_expiry: bool = True) -> Grant:
        """The grant inside ``token``; :class:`TokenRejected` if forged, garbled or expired."""
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN or token.count(".") != 4:
            raise TokenRejected("invalid_token", "the token is not a sandbox embed token")
        try:
            result = jwe.decrypt_compact(token, self._key, algorithms=["dir", "A256GCM"])
            data: Any = json.loads(result.plaintext or b"")
            grant = Grant.from_payload(data)
        except (JoseError, ValueError, KeyError, TypeError, AttributeError):
            raise TokenRejected("invalid_token", "the token could not be decrypted or verified") from None
        if check_expiry and grant.expired():
            raise TokenRejected("token_expired", "the token has expired; ask the host app for a new one")
        return grant
