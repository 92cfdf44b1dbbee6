"""Message signatures (the Rust side's wire/src/signing.rs): ``t=<unix seconds>,n=<nonce>,s=<hex
HMAC-SHA256(secret, "<t>.<n>.<body>")>``, sent in the ``X-Switchboard-Signature`` HTTP header, the
``x-switchboard-signature`` AMQP header, or as the first ZeroMQ frame."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from typing import Dict, Optional, Union

from .errors import SignatureError

SIGNATURE_HEADER = "X-Switchboard-Signature"
AMQP_SIGNATURE_HEADER = "x-switchboard-signature"

_NONCE = re.compile(r"[A-Za-z0-9_-]{8,128}\Z")
_HEX64 = re.compile(r"[0-9a-fA-F]{64}\Z")

Secret = Union[str, bytes]


def _key(secret: Secret) -> bytes:
    return secret.encode("utf-8") if isinstance(secret, str) else bytes(secret)


def _mac(key: bytes, timestamp: int, nonce: str, body: bytes) -> bytes:
    return hmac.new(key, f"{timestamp}.{nonce}.".encode("utf-8") + body, hashlib.sha256).digest()


class Signer:
    """Signs message bodies with the shared ``[security]`` secret."""

    def __init__(self, secret: Secret):
        self._key = _key(secret)

    def __repr__(self) -> str:
        return "Signer(secret=<redacted>)"

    def sign(self, body: bytes) -> str:
        """The signature of `body` now, with a fresh random nonce."""
        return self.sign_with(body, int(time.time()), secrets.token_hex(16))

    def sign_with(self, body: bytes, timestamp: int, nonce: str) -> str:
        """The signature of `body` for a given timestamp and nonce (tests and test vectors)."""
        tag = _mac(self._key, timestamp, nonce, body).hex()
        return f"t={timestamp},n={nonce},s={tag}"


def _parse(header: str):
    def malformed(reason: str) -> SignatureError:
        return SignatureError("malformed", f"signature malformed: {reason}")

    parts: Dict[str, str] = {}
    for part in header.strip().split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            raise malformed("expected t=<unix>,n=<nonce>,s=<hex>")
        if key not in ("t", "n", "s"):
            raise malformed(f"unknown part {key!r}")
        if key in parts:
            raise malformed(f"part {key!r} appears twice")
        parts[key] = value
    for key, what in (("t", "timestamp"), ("n", "nonce"), ("s", "MAC")):
        if key not in parts:
            raise malformed(f"no {key}= ({what})")
    if not parts["t"].isascii() or not parts["t"].isdigit():
        raise malformed("t= is not a unix time in seconds")
    if not _NONCE.match(parts["n"]):
        raise malformed("n= must be 8 to 128 characters of [A-Za-z0-9_-]")
    if not _HEX64.match(parts["s"]):
        raise malformed("s= is not 64 hex digits (HMAC-SHA256)")
    return int(parts["t"]), parts["n"], bytes.fromhex(parts["s"])


class Verifier:
    """Checks signatures the way the gateway does: MAC in constant time, timestamp within `max_skew_s`
    of now, nonce not seen before within that window. Raises :class:`SignatureError` naming the check.
    Thread-safe."""

    def __init__(self, secret: Secret, max_skew_s: int = 300):
        self._key = _key(secret)
        self.max_skew_s = max_skew_s
        self._nonces: Dict[str, int] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Verifier(max_skew_s={self.max_skew_s})"

    def verify(self, header: Optional[str], body: bytes, now: Optional[int] = None) -> None:
        """Checks `header` (None when the message had none) against `body` at `now` (default: the
        current unix time)."""
        now = int(time.time()) if now is None else now
        if header is None:
            raise SignatureError("missing", "signature missing")
        timestamp, nonce, tag = _parse(header)
        age = abs(now - timestamp)
        if age > self.max_skew_s:
            raise SignatureError(
                "expired",
                f"signature expired: timestamp {timestamp} is {age} s away from now (max {self.max_skew_s} s)",
            )
        if not hmac.compare_digest(_mac(self._key, timestamp, nonce, body), tag):
            raise SignatureError("invalid", "signature invalid: the MAC does not match the body")
        with self._lock:
            for old in [n for n, expiry in self._nonces.items() if expiry < now]:
                del self._nonces[old]
            if nonce in self._nonces:
                raise SignatureError("replayed", f"signature replayed: nonce {nonce!r} was already used")
            self._nonces[nonce] = timestamp + self.max_skew_s
