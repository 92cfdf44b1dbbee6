"""Connection tickets (the Rust side's wire/src/ticket.rs): the web app, which has authenticated its user,
mints a signed, expiring token that the browser presents with WAMP ticket authentication.

A ticket is ``base64url-without-padding(compact JSON {"authid", "roles", "exp"})`` + ``.`` + hex
HMAC-SHA256 keyed with the shared secret over ``"switchboard.ticket.v1." + that base64 text``. It holds no
secret; the gateway refuses it from second `exp` on."""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
import hmac
import json
import math
import re
import time
from typing import Any, Iterable, List, NamedTuple, Optional, Union

from .errors import Invalid, TicketError
from .event import _strings, dumps
from .signing import Secret, _key

CONTEXT = b"switchboard.ticket.v1."
#: Longest ticket the verifier looks at, in bytes.
MAX_TICKET_BYTES = 4096

_HEX64 = re.compile(r"[0-9a-fA-F]{64}\Z")
_B64URL = re.compile(r"[A-Za-z0-9_-]*\Z")

Ttl = Union[int, float, datetime.timedelta]


class TicketClaims(NamedTuple):
    """What a ticket says: who, with which roles (the first is the WAMP authrole), until when."""

    authid: str
    roles: List[str]
    exp: int


def _tag(key: bytes, payload: str) -> bytes:
    return hmac.new(key, CONTEXT + payload.encode("ascii"), hashlib.sha256).digest()


def _seconds(ttl: Any) -> int:
    if isinstance(ttl, datetime.timedelta):
        ttl = ttl.total_seconds()
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not math.isfinite(ttl):
        raise Invalid("ttl", f"expected seconds (a number or a timedelta), got {ttl!r}")
    if ttl <= 0:
        raise Invalid("ttl", "the ttl must be positive")
    return max(int(ttl), 1)


class TicketKey:
    """Mints and verifies tickets with the shared secret (thread-safe: it holds only the key)."""

    def __init__(self, secret: Secret):
        self._key = _key(secret)

    def __repr__(self) -> str:
        return "TicketKey(secret=<redacted>)"

    def mint(self, authid: str, roles: Iterable[str], ttl: Ttl) -> str:
        """A ticket for `authid` with `roles` (a list; the first is the session's authrole), valid for
        `ttl` seconds (or a timedelta) from now."""
        seconds = _seconds(ttl)
        return self.mint_claims(TicketClaims(authid, roles, int(time.time()) + seconds))  # type: ignore[arg-type]

    def mint_claims(self, claims: TicketClaims) -> str:
        """A ticket carrying exactly `claims` (tests, and tickets with a fixed expiry)."""
        authid, roles, exp = claims
        if not isinstance(authid, str) or not authid:
            raise Invalid("authid", "the authid must be a non-empty string")
        roles = _strings("roles", roles)
        if not roles or any(not role for role in roles):
            raise Invalid("roles", "at least one non-empty role is needed")
        if isinstance(exp, bool) or not isinstance(exp, int) or exp < 0:
            raise Invalid("exp", "expected unix seconds (a non-negative integer)")
        json_bytes = dumps({"authid": authid, "roles": roles, "exp": exp})
        payload = base64.urlsafe_b64encode(json_bytes).rstrip(b"=").decode("ascii")
        return f"{payload}.{_tag(self._key, payload).hex()}"

    def verify(self, ticket: str, authid: Optional[str] = None, now: Optional[int] = None) -> TicketClaims:
        """Checks `ticket` as the gateway does (MAC in constant time, then shape, expiry and, when given,
        the authid) and returns its claims; raises :class:`TicketError` naming the check."""
        now = int(time.time()) if now is None else now

        def malformed(reason: str) -> TicketError:
            return TicketError("malformed", f"ticket malformed: {reason}")

        if not isinstance(ticket, str) or len(ticket.encode("utf-8")) > MAX_TICKET_BYTES:
            raise malformed("too long")
        payload, sep, tag_hex = ticket.partition(".")
        if not sep:
            raise malformed("expected <payload>.<mac>")
        if not _HEX64.match(tag_hex):
            raise malformed("the MAC is not 64 hex digits")
        if not payload.isascii():
            raise TicketError("invalid", "ticket signature invalid")
        if not hmac.compare_digest(_tag(self._key, payload), bytes.fromhex(tag_hex)):
            raise TicketError("invalid", "ticket signature invalid")
        if not _B64URL.match(payload) or len(payload) % 4 == 1:
            raise malformed("the payload is not base64url")
        try:
            raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
            claims = json.loads(raw.decode("utf-8"))
        except (binascii.Error, ValueError):
            raise malformed("the payload is not the claims JSON") from None
        if (
            not isinstance(claims, dict)
            or set(claims) != {"authid", "roles", "exp"}
            or not isinstance(claims["authid"], str)
            or not isinstance(claims["roles"], list)
            or not all(isinstance(role, str) for role in claims["roles"])
            or isinstance(claims["exp"], bool)
            or not isinstance(claims["exp"], int)
            or claims["exp"] < 0
        ):
            raise malformed("the payload is not the claims JSON")
        if now >= claims["exp"]:
            raise TicketError("expired", "ticket expired")
        if authid is not None and authid != claims["authid"]:
            raise TicketError("wrong_authid", "ticket was issued for another authid")
        return TicketClaims(claims["authid"], claims["roles"], claims["exp"])


def mint_ticket(secret: Secret, authid: str, roles: Iterable[str], ttl: Ttl) -> str:
    """Shorthand for ``TicketKey(secret).mint(authid, roles, ttl)``."""
    return TicketKey(secret).mint(authid, roles, ttl)


def verify_ticket(secret: Secret, ticket: str, authid: Optional[str] = None,
                  now: Optional[int] = None) -> TicketClaims:
    """Shorthand for ``TicketKey(secret).verify(ticket, authid, now)``."""
    return TicketKey(secret).verify(ticket, authid, now)
