"""WAMP URI rules, the same as the gateway's (wire/src/uri.rs): components separated by ``.``, none empty,
no whitespace, ``#``, control characters or code points that print as nothing."""

from __future__ import annotations

import unicodedata
from typing import Optional

# Rust's char::is_whitespace: the Unicode White_Space property.
_WHITESPACE = frozenset(
    [chr(c) for c in range(0x09, 0x0E)]
    + ["\u0020", "\u0085", "\u00a0", "\u1680"]
    + [chr(c) for c in range(0x2000, 0x200B)]
    + ["\u2028", "\u2029", "\u202f", "\u205f", "\u3000"]
)

# Unicode's Default_Ignorable_Code_Point set and the blanks that print as nothing, as ranges.
_INVISIBLE = (
    (0x00AD, 0x00AD), (0x034F, 0x034F), (0x061C, 0x061C), (0x115F, 0x1160), (0x17B4, 0x17B5),
    (0x180B, 0x180F), (0x200B, 0x200F), (0x202A, 0x202E), (0x2060, 0x206F), (0x2800, 0x2800),
    (0x3164, 0x3164), (0xFE00, 0xFE0F), (0xFEFF, 0xFEFF), (0xFFA0, 0xFFA0), (0xFFF0, 0xFFFB),
    (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A), (0xE0000, 0xE0FFF),
)

RESERVED_PREFIXES = ("wamp.", "switchboard.")


def _forbidden(c: str) -> bool:
    if c in _WHITESPACE or c == "#" or unicodedata.category(c) == "Cc":
        return True
    code = ord(c)
    return any(low <= code <= high for low, high in _INVISIBLE)


def check(uri: str) -> Optional[str]:
    """Why `uri` is not a valid exact WAMP URI, or None when it is."""
    for c in uri:
        if _forbidden(c):
            return f"URI {uri!r} contains the forbidden character {c!r}"
    if not uri:
        return "the URI is empty"
    if any(part == "" for part in uri.split(".")):
        return f"URI {uri!r} has an empty component"
    return None


def is_reserved(uri: str) -> bool:
    """True for URIs under the router's own prefixes (``wamp.``, ``switchboard.``)."""
    return uri.startswith(RESERVED_PREFIXES)
