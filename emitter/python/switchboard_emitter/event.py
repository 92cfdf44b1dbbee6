"""The one event shape every transport carries (the Rust side's wire/src/event.rs): topic, args, kwargs,
delivery options, idempotency key and realm, validated like the gateway validates them so that a bad
event fails here, naming the field, before anything goes on the wire."""

from __future__ import annotations

import datetime
import decimal
import json
import uuid
from collections.abc import Mapping
from typing import Any, Dict, Iterable, List, Optional, Sequence

from . import uri
from .errors import Invalid

#: Longest accepted idempotency key (``id``), in UTF-8 bytes.
MAX_ID_BYTES = 256

KNOWN_KEYS = ("topic", "args", "kwargs", "options", "id", "realm")
KNOWN_OPTIONS = ("retain", "eligible_authid", "exclude_authid", "eligible_authrole", "exclude_authrole")


def json_default(value: Any) -> Any:
    """How values JSON has no type for are sent: datetimes, dates and times as ISO 8601 text, decimals
    and UUIDs as text (what Django's own JSON encoder does)."""
    if isinstance(value, datetime.datetime):
        text = value.isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, (decimal.Decimal, uuid.UUID)):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dumps(value: Any) -> bytes:
    """Compact JSON, UTF-8, as serde_json writes it (no spaces, non-ASCII unescaped); NaN refused."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False,
                      default=json_default).encode("utf-8")


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "an array"
    if isinstance(value, Mapping):
        return "an object"
    return f"a {type(value).__name__}"


def _strings(field: str, value: Any) -> List[str]:
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple, set, frozenset)):
        hint = " (wrap a single value in a list)" if isinstance(value, str) else ""
        raise Invalid(field, f"expected an array of strings, got {_kind(value)}{hint}")
    items = sorted(value) if isinstance(value, (set, frozenset)) else list(value)
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise Invalid(f"{field}[{i}]", f"expected a string, got {_kind(item)}")
    return items


class Event:
    """An event to publish: ``Event("chat.room1", args=["hi"], eligible_authid=["alice"])``.

    Options: `retain` (the gateway keeps it as the topic's retained event), `eligible_authid` /
    `eligible_authrole` (only these authids / roles receive it; an empty list means nobody, None means
    everybody), `exclude_authid` / `exclude_authrole` (these never receive it), `id` (idempotency key,
    1 to 256 bytes: the gateway drops a repeated one) and `realm` (absent: the gateway's first realm).
    `options` takes the same five options as a dict (the wire shape); an unknown key is refused, since a
    misspelt ``eligible_authid`` silently ignored would turn a private message into a broadcast.
    Construction validates everything; an invalid event raises :class:`Invalid`."""

    __slots__ = ("topic", "args", "kwargs", "retain", "eligible_authid", "exclude_authid",
                 "eligible_authrole", "exclude_authrole", "id", "realm")

    def __init__(
        self,
        topic: str,
        args: Optional[Sequence[Any]] = None,
        kwargs: Optional[Mapping[str, Any]] = None,
        *,
        retain: bool = False,
        eligible_authid: Optional[Iterable[str]] = None,
        exclude_authid: Optional[Iterable[str]] = None,
        eligible_authrole: Optional[Iterable[str]] = None,
        exclude_authrole: Optional[Iterable[str]] = None,
        id: Optional[str] = None,  # noqa: A002 - the wire name
        realm: Optional[str] = None,
        options: Optional[Mapping[str, Any]] = None,
    ):
        if not isinstance(topic, str):
            raise Invalid("topic", f"expected a string, got {_kind(topic)}")
        self.topic = topic
        if args is None:
            self.args: List[Any] = []
        elif isinstance(args, (list, tuple)):
            self.args = list(args)
        else:
            raise Invalid("args", f"expected an array, got {_kind(args)}")
        if kwargs is None:
            self.kwargs: Dict[str, Any] = {}
        elif isinstance(kwargs, Mapping):
            self.kwargs = dict(kwargs)
        else:
            raise Invalid("kwargs", f"expected an object, got {_kind(kwargs)}")
        for key in self.kwargs:
            if not isinstance(key, str):
                raise Invalid("kwargs", f"keys must be strings, got {_kind(key)} ({key!r})")
        if not isinstance(retain, bool):
            raise Invalid("options.retain", f"expected a boolean, got {_kind(retain)}")
        self.retain = retain
        self.eligible_authid = None if eligible_authid is None else _strings(
            "options.eligible_authid", eligible_authid)
        self.exclude_authid = [] if exclude_authid is None else _strings(
            "options.exclude_authid", exclude_authid)
        self.eligible_authrole = None if eligible_authrole is None else _strings(
            "options.eligible_authrole", eligible_authrole)
        self.exclude_authrole = [] if exclude_authrole is None else _strings(
            "options.exclude_authrole", exclude_authrole)
        if options is not None:
            self._apply_options(options)
        if id is not None and not isinstance(id, str):
            raise Invalid("id", f"expected a string, got {_kind(id)}")
        if realm is not None and not isinstance(realm, str):
            raise Invalid("realm", f"expected a string, got {_kind(realm)}")
        self.id = id
        self.realm = realm
        self.validate()

    def _apply_options(self, options: Any) -> None:
        if not isinstance(options, Mapping):
            raise Invalid("options", f"expected an object, got {_kind(options)}")
        for key, value in options.items():
            field = f"options.{key}"
            if key == "retain":
                if not isinstance(value, bool):
                    raise Invalid(field, f"expected a boolean, got {_kind(value)}")
                self.retain = value
            elif key == "eligible_authid":
                self.eligible_authid = _strings(field, value)
            elif key == "exclude_authid":
                self.exclude_authid = _strings(field, value)
            elif key == "eligible_authrole":
                self.eligible_authrole = _strings(field, value)
            elif key == "exclude_authrole":
                self.exclude_authrole = _strings(field, value)
            else:
                raise Invalid(field, "unknown option; known options are " + ", ".join(KNOWN_OPTIONS))

    def validate(self) -> None:
        """Checks what the gateway checks (topic and realm URIs, id length); raises :class:`Invalid`."""
        reason = uri.check(self.topic)
        if reason:
            raise Invalid("topic", reason)
        if self.realm is not None:
            reason = uri.check(self.realm)
            if reason:
                raise Invalid("realm", reason)
        if self.id is not None and not 1 <= len(self.id.encode("utf-8")) <= MAX_ID_BYTES:
            raise Invalid("id", f"must be 1 to {MAX_ID_BYTES} bytes long")

    @classmethod
    def from_dict(cls, value: Any) -> "Event":
        """Parses the wire shape (``{"topic", "args"?, "kwargs"?, "options"?, "id"?, "realm"?}``) strictly,
        as the gateway does: unknown keys and option keys are refused, naming the field."""
        if not isinstance(value, Mapping):
            raise Invalid("event", f"expected an object, got {_kind(value)}")
        for key in value:
            if key not in KNOWN_KEYS:
                raise Invalid(str(key), "unknown key; known keys are " + ", ".join(KNOWN_KEYS))
        if "topic" not in value:
            raise Invalid("topic", "missing")
        return cls(
            value["topic"],
            args=value.get("args"),
            kwargs=value.get("kwargs"),
            options=value.get("options"),
            id=value.get("id"),
            realm=value.get("realm"),
        )

    def options(self) -> Dict[str, Any]:
        """The delivery options as the wire (and WAMP PUBLISH) dictionary; only what is set."""
        options: Dict[str, Any] = {}
        if self.retain:
            options["retain"] = True
        if self.eligible_authid is not None:
            options["eligible_authid"] = list(self.eligible_authid)
        if self.exclude_authid:
            options["exclude_authid"] = list(self.exclude_authid)
        if self.eligible_authrole is not None:
            options["eligible_authrole"] = list(self.eligible_authrole)
        if self.exclude_authrole:
            options["exclude_authrole"] = list(self.exclude_authrole)
        return options

    def to_dict(self) -> Dict[str, Any]:
        """The wire shape, keys in the Rust side's order, empty parts left out."""
        out: Dict[str, Any] = {"topic": self.topic}
        if self.args:
            out["args"] = self.args
        if self.kwargs:
            out["kwargs"] = self.kwargs
        options = self.options()
        if options:
            out["options"] = options
        if self.id is not None:
            out["id"] = self.id
        if self.realm is not None:
            out["realm"] = self.realm
        return out

    def to_json(self) -> bytes:
        """The compact JSON body that is signed and sent (byte-identical to the Rust side's for the
        same values). A payload JSON cannot carry raises :class:`Invalid`."""
        try:
            return dumps(self.to_dict())
        except (TypeError, ValueError) as error:
            raise Invalid("event", f"the payload is not JSON: {error}") from None

    def with_id(self, id: Optional[str]) -> "Event":  # noqa: A002
        """A copy with another idempotency key."""
        copy = self.copy()
        copy.id = id
        copy.validate()
        return copy

    def copy(self) -> "Event":
        new = object.__new__(Event)
        for slot in self.__slots__:
            value = getattr(self, slot)
            setattr(new, slot, list(value) if isinstance(value, list) else
                    dict(value) if isinstance(value, dict) else value)
        return new

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Event) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"Event({self.to_dict()!r})"
