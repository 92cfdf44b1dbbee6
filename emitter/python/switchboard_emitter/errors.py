"""What can go wrong, said precisely enough for a web app to decide what to do: fix the event (Invalid),
stop retrying (Rejected), or wait for the gateway (Unreachable)."""

from __future__ import annotations

from typing import Any, Optional


class EmitError(Exception):
    """Base class of every error this package raises."""


class Invalid(EmitError, ValueError):
    """An event, model change or ticket request is not valid; nothing was sent.

    `field` is the path of the offending field (``topic``, ``options.eligible_authid[2]``,
    ``events[3].realm``), as the gateway would name it; `reason` says what is wrong."""

    def __init__(self, field: str, reason: str):
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason

    def within(self, prefix: str) -> "Invalid":
        """The same error with `prefix` in front of the field path (for events inside a batch)."""
        return Invalid(f"{prefix}.{self.field}", self.reason)


class ConfigError(EmitError):
    """The configuration could not be loaded: `key` (``security.secret``) and, where known, the file and
    the environment variable that set it."""

    def __init__(self, reason: str, key: Optional[str] = None, file: Optional[str] = None,
                 var: Optional[str] = None):
        where = []
        if file:
            where.append(str(file))
        if var:
            where.append(var)
        prefix = ": ".join(where)
        text = f"{key}: {reason}" if key else reason
        super().__init__(f"{prefix}: {text}" if prefix else text)
        self.reason = reason
        self.key = key
        self.file = file
        self.var = var


class Rejected(EmitError):
    """The gateway (or the broker) answered with a refusal; retrying will not help. `code` is the JSON-RPC
    error code (``-32602`` invalid params, ``-32001`` signature refused, ...), `message` the gateway's
    words, `data` its optional details."""

    def __init__(self, code: int, message: str, data: Any = None):
        super().__init__(f"gateway refused ({code}): {message}")
        self.code = code
        self.message = message
        self.data = data


class Unreachable(EmitError):
    """The gateway or broker could not be reached (connection refused, timeout, broker away); retrying
    later may work. `target` is the URL or endpoint, `reason` what failed."""

    def __init__(self, target: str, reason: str):
        super().__init__(f"{target} unreachable: {reason}")
        self.target = target
        self.reason = reason


class SignatureError(EmitError):
    """A signature was refused by :class:`Verifier`; `which` is one of ``missing``, ``malformed``,
    ``invalid``, ``expired``, ``replayed`` (the gateway's words for the same checks)."""

    def __init__(self, which: str, message: str):
        super().__init__(message)
        self.which = which


class TicketError(EmitError):
    """A ticket was refused by :meth:`TicketKey.verify`; `which` is one of ``malformed``, ``invalid``,
    ``expired``, ``wrong_authid``."""

    def __init__(self, which: str, message: str):
        super().__init__(message)
        self.which = which
