"""The ``SWITCHBOARD`` setting and the process's one :class:`~switchboard_emitter.Emitter`, created on first
use (so that importing, migrating or testing without a gateway costs nothing) and again when a test
overrides the setting."""

from __future__ import annotations

import ipaddress
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.utils.module_loading import import_string

from .. import config as _config
from ..emitter import Emitter

DEFAULT_GATEWAY_LISTEN = "127.0.0.1:8080"
KNOWN_KEYS = ("CONFIG", "GATEWAY_URL", "SCRIPT_URL", "REALM", "TICKET_TTL", "ROLES", "AUTHID", "EMITTER",
              "EMITTER_OPTIONS")


def default_authid(user: Any) -> str:
    """A logged-in user's authid: the username."""
    return str(user.get_username())


@dataclass
class Options:
    """The checked ``SWITCHBOARD`` setting."""

    config: Optional[str]
    gateway_url: str
    script_url: str
    realm: str
    ticket_ttl: int
    roles: List[str]
    authid: Callable[[Any], str]
    emitter: Optional[Emitter] = None
    emitter_options: Dict[str, Any] = field(default_factory=dict)


def _gateway_url_from(path: Optional[str]) -> str:
    """``ws://HOST:PORT/ws`` from the config's ``[gateway] listen`` (after env overrides); an unspecified
    address (0.0.0.0, ::) becomes 127.0.0.1."""
    listen = DEFAULT_GATEWAY_LISTEN
    if path:
        listen = _config.load_table(path).get("gateway", {}).get("listen", DEFAULT_GATEWAY_LISTEN)
    host, _, port = listen.rpartition(":")
    bare = host.strip("[]")
    try:
        if ipaddress.ip_address(bare).is_unspecified:
            host = "127.0.0.1"
    except ValueError:
        pass
    return f"ws://{host}:{port}/ws"


def _script_url(gateway_url: str) -> str:
    scheme, rest = gateway_url.split("://", 1)
    host = rest.split("/", 1)[0]
    return f"{'https' if scheme == 'wss' else 'http'}://{host}/switchboard.js"


def load() -> Options:
    raw = getattr(django_settings, "SWITCHBOARD", None)
    if not isinstance(raw, dict):
        raise ImproperlyConfigured("settings.SWITCHBOARD must be a dict, e.g. "
                                   "{'CONFIG': '/etc/switchboard.toml', 'REALM': 'realm1'}")
    unknown = sorted(set(raw) - set(KNOWN_KEYS))
    if unknown:
        raise ImproperlyConfigured(f"settings.SWITCHBOARD: unknown key(s) {', '.join(unknown)}; "
                                   f"known: {', '.join(KNOWN_KEYS)}")
    config = raw.get("CONFIG")
    emitter = raw.get("EMITTER")
    if config is None and emitter is None:
        raise ImproperlyConfigured("settings.SWITCHBOARD needs CONFIG (the path of switchboard.toml)")
    gateway_url = raw.get("GATEWAY_URL") or _gateway_url_from(str(config) if config else None)
    if not gateway_url.startswith(("ws://", "wss://")):
        raise ImproperlyConfigured(f"settings.SWITCHBOARD['GATEWAY_URL']: expected ws:// or wss://, got {gateway_url!r}")
    roles = list(raw.get("ROLES", ["member"]))
    if not roles or not all(isinstance(r, str) and r for r in roles):
        raise ImproperlyConfigured("settings.SWITCHBOARD['ROLES']: expected a non-empty list of role names")
    ttl = raw.get("TICKET_TTL", 3600)
    if isinstance(ttl, bool) or not isinstance(ttl, int) or ttl <= 0:
        raise ImproperlyConfigured("settings.SWITCHBOARD['TICKET_TTL']: expected a positive number of seconds")
    authid = raw.get("AUTHID", default_authid)
    if isinstance(authid, str):
        authid = import_string(authid)
    return Options(
        config=str(config) if config else None,
        gateway_url=gateway_url,
        script_url=raw.get("SCRIPT_URL") or _script_url(gateway_url),
        realm=raw.get("REALM", "realm1"),
        ticket_ttl=ttl,
        roles=roles,
        authid=authid,
        emitter=emitter,
        emitter_options=dict(raw.get("EMITTER_OPTIONS", {})),
    )


_lock = threading.Lock()
_options: Optional[Options] = None
_emitter: Optional[Emitter] = None


def options() -> Options:
    global _options
    with _lock:
        if _options is None:
            _options = load()
        return _options


def get_emitter() -> Emitter:
    """The process's emitter: ``SWITCHBOARD['EMITTER']`` if given, else ``Emitter.from_config(CONFIG)``
    with ``EMITTER_OPTIONS``, created on first use. Raises ConfigError when the file is unusable."""
    global _emitter
    opts = options()
    with _lock:
        if _emitter is None:
            _emitter = opts.emitter or Emitter.from_config(opts.config, **opts.emitter_options)
        return _emitter


def reset(**_: Any) -> None:
    """Forgets the settings and the emitter (closing it if this module created it)."""
    global _options, _emitter
    with _lock:
        old, given = _emitter, _options.emitter if _options else None
        _options, _emitter = None, None
    if old is not None and old is not given:
        try:
            old.close()
        except Exception:  # pragma: no cover - closing is best effort
            pass


def _on_setting_changed(setting: str, **kwargs: Any) -> None:
    if setting == "SWITCHBOARD":
        reset()


setting_changed.connect(_on_setting_changed, dispatch_uid="switchboard_emitter.django.conf")
