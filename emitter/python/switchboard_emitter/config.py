"""The shared ``switchboard.toml`` as an emitter reads it: the ``[security]`` secret, ``[emitter]
transport`` and the address of that transport's ``[ingest.*]`` section; ``SWITCHBOARD__SECTION__KEY``
environment variables override keys exactly as on the Rust side (shared-config/src/env.rs).

The gateway validates the whole file; here every section and key the file may hold is known, unknown
ones are refused (a misspelt key must not go unnoticed), and the keys an emitter uses are type-checked.
Errors name the key, and the file or variable that set it."""

from __future__ import annotations

import copy
import ipaddress
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.9 and 3.10
    import tomli as tomllib

from .errors import ConfigError

ENV_PREFIX = "SWITCHBOARD__"
TRANSPORTS = ("jsonrpc", "zmq", "amqp")

DEFAULT_JSONRPC_LISTEN = "127.0.0.1:8081"
DEFAULT_ZMQ_ENDPOINT = "tcp://127.0.0.1:5560"
DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2f"
DEFAULT_AMQP_EXCHANGE = "switchboard.events"
DEFAULT_AMQP_QUEUE = "switchboard.ingest"

_INT = "int"
_STR = "str"
_ADDR = "addr"

# Every section and key of switchboard.toml (shared-config/src/lib.rs), with the type checked here.
SCHEMA: Dict[str, Any] = {
    "gateway": {key: _INT for key in (
        "max_message_bytes", "outbound_queue_bytes", "outbound_queue", "slow_consumer_ms",
        "hello_timeout_ms", "max_subscriptions", "max_pattern_subscriptions", "max_pending_requests",
        "max_sessions_per_authid", "max_uri_bytes", "header_timeout_ms", "max_connections",
        "shutdown_grace_ms", "history_max_bytes", "longpoll_request_timeout_ms",
        "longpoll_session_timeout_ms")},
    "security": {"secret": _STR, "secret_file": _STR, "max_skew_s": _INT},
    "ingest": {
        "jsonrpc": {"listen": _ADDR, "max_body_bytes": _INT, "body_timeout_ms": _INT},
        "zmq": {"endpoint": _STR},
        "amqp": {"url": _STR, "exchange": _STR, "queue": _STR},
    },
    "emitter": {"transport": ("jsonrpc", "zmq", "amqp")},
    "realms": list,
    "cluster": None,
}
SCHEMA["gateway"]["listen"] = _ADDR


@dataclass(frozen=True)
class Settings:
    """What an emitter needs from the configuration."""

    secret: str
    transport: str
    #: http://HOST:PORT of ``[ingest.jsonrpc]``, when the section is present.
    jsonrpc_url: Optional[str]
    zmq_endpoint: Optional[str]
    amqp_url: Optional[str]
    amqp_exchange: Optional[str]
    amqp_queue: Optional[str]

    def __repr__(self) -> str:
        return (f"Settings(secret=<redacted>, transport={self.transport!r}, jsonrpc_url={self.jsonrpc_url!r}, "
                f"zmq_endpoint={self.zmq_endpoint!r}, amqp_url={self.amqp_url!r}, "
                f"amqp_exchange={self.amqp_exchange!r}, amqp_queue={self.amqp_queue!r})")


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__


def _check_addr(value: str) -> Optional[str]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        return f"expected IP:PORT (e.g. 127.0.0.1:8081), got {value!r}"
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        if ":" not in host:
            return f"expected IP:PORT (e.g. [::1]:8081), got {value!r}"
    elif ":" in host:
        return f"an IPv6 address needs brackets ([::1]:8081), got {value!r}"
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return f"expected an IP address and a port (no host names), got {value!r}"
    return None


def _problem(table: Any, schema: Any, path: List[str]) -> Optional[Tuple[str, str]]:
    """The first (key path, reason) wrong in `table` against `schema`, or None."""
    where = ".".join(path)
    if schema is list:
        if not isinstance(table, list):
            return where, f"expected an array of tables ([[{where}]]), got {_kind(table)}"
        return None
    if schema is None:
        return where, "clustering is not supported yet; remove the section"
    if isinstance(schema, dict):
        if not isinstance(table, dict):
            return where, f"expected a table ([{where}]), got {_kind(table)}"
        for key, value in table.items():
            if key not in schema:
                known = ", ".join(schema)
                what = "section" if isinstance(value, dict) else "key"
                return ".".join(path + [key]), f"unknown {what}; known here: {known}"
            found = _problem(value, schema[key], path + [key])
            if found:
                return found
        return None
    if isinstance(schema, tuple):
        if isinstance(table, str) and table in schema:
            return None
        return where, f"expected one of {', '.join(repr(s) for s in schema)}, got {table!r}"
    if schema == _INT:
        if isinstance(table, bool) or not isinstance(table, int) or table < 0:
            return where, f"expected a non-negative integer, got {_kind(table)} ({table!r})"
        return None
    if schema in (_STR, _ADDR):
        if not isinstance(table, str):
            return where, f"expected a string, got {_kind(table)} ({table!r})"
        if schema == _ADDR:
            reason = _check_addr(table)
            if reason:
                return where, reason
        return None
    return None  # pragma: no cover


def _parse_value(text: str) -> Any:
    """An override's value as TOML when it parses as one TOML value, else the plain string."""
    try:
        parsed = tomllib.loads(f"v = {text}")
    except tomllib.TOMLDecodeError:
        return text
    if list(parsed) != ["v"]:
        return text
    return parsed["v"]


def _set(table: Dict[str, Any], keys: List[str], value: Any, var: str) -> None:
    current = table
    for depth, key in enumerate(keys[:-1]):
        entry = current.setdefault(key, {})
        if isinstance(entry, list):
            here = ".".join(keys[: depth + 1])
            whole = (ENV_PREFIX + "__".join(keys[: depth + 1])).upper()
            raise ConfigError(
                f"`{here}` is an array ([[{here}]]); its entries cannot be overridden from the environment; "
                f"edit the file, or replace the whole array with {whole}",
                key=".".join(keys), var=var)
        if not isinstance(entry, dict):
            here = ".".join(keys[: depth + 1])
            raise ConfigError(f"`{here}` is a value, not a table, so it has no key `{keys[depth + 1]}`",
                              key=".".join(keys), var=var)
        current = entry
    current[keys[-1]] = value


def apply_env(table: Dict[str, Any], env: Optional[Mapping[str, str]] = None) -> Dict[str, Any]:
    """`table` with the ``SWITCHBOARD__SECTION__KEY`` overrides of `env` (default: the process
    environment) applied: names case-insensitive, ``__`` between levels, the value read as TOML when it
    parses as one and fits the key, else as a string. Applied in name order; other variables are ignored."""
    env = os.environ if env is None else env
    table = copy.deepcopy(table)
    relevant = sorted((name, value) for name, value in env.items()
                      if name[: len(ENV_PREFIX)].upper() == ENV_PREFIX)
    for var, text in relevant:
        keys = [key.lower() for key in var[len(ENV_PREFIX):].split("__")]
        if any(not key for key in keys):
            raise ConfigError("expected SWITCHBOARD__SECTION__KEY, with `__` between non-empty levels", var=var)
        first = _parse_value(text)
        attempts = [first] if isinstance(first, str) else [first, text]
        problem = None
        for value in attempts:
            candidate = copy.deepcopy(table)
            _set(candidate, keys, value, var)
            problem = _problem(candidate, SCHEMA, [])
            if problem is None:
                table = candidate
                break
        if problem is not None:
            raise ConfigError(problem[1], key=problem[0], var=var)
    return table


def load_table(path: Union[str, os.PathLike], env: Optional[Mapping[str, str]] = None) -> Dict[str, Any]:
    """The configuration file at `path` as a table, environment overrides applied and checked."""
    file = str(path)
    try:
        with open(path, "rb") as handle:
            table = tomllib.load(handle)
    except OSError as error:
        raise ConfigError(f"cannot read the configuration: {error.strerror or error}", file=file) from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"not valid TOML: {error}", file=file) from None
    problem = _problem(table, SCHEMA, [])
    if problem:
        raise ConfigError(problem[1], key=problem[0], file=file)
    return apply_env(table, env)


def settings(table: Mapping[str, Any], file: Optional[str] = None) -> Settings:
    """What an emitter needs, from a loaded table: the secret (``secret`` or ``secret_file``, relative
    to the working directory), the transport and its address."""
    security = table.get("security", {})
    secret, secret_file = security.get("secret"), security.get("secret_file")
    if secret is not None and secret_file is not None:
        raise ConfigError("set either `secret` or `secret_file`, not both", key="security.secret_file", file=file)
    if secret is not None:
        if not secret:
            raise ConfigError("the secret is empty", key="security.secret", file=file)
    elif secret_file is not None:
        try:
            secret = Path(secret_file).read_text(encoding="utf-8").rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as error:
            raise ConfigError(f"cannot read {secret_file}: {error}", key="security.secret_file", file=file) from None
        if not secret:
            raise ConfigError(f"{secret_file} is empty", key="security.secret_file", file=file)
    else:
        raise ConfigError("no [security] secret configured: emitters must sign every message with the "
                          "gateway's secret (set `secret` or `secret_file`)", key="security.secret", file=file)
    transport = table.get("emitter", {}).get("transport", "jsonrpc")
    ingest = table.get("ingest", {})
    if transport not in ingest:
        raise ConfigError(f"[emitter] transport = {transport!r} but the configuration has no "
                          f"[ingest.{transport}] section", key=f"ingest.{transport}", file=file)
    jsonrpc = ingest.get("jsonrpc")
    zmq = ingest.get("zmq")
    amqp = ingest.get("amqp")
    return Settings(
        secret=secret,
        transport=transport,
        jsonrpc_url=None if jsonrpc is None else "http://" + jsonrpc.get("listen", DEFAULT_JSONRPC_LISTEN),
        zmq_endpoint=None if zmq is None else zmq.get("endpoint", DEFAULT_ZMQ_ENDPOINT),
        amqp_url=None if amqp is None else amqp.get("url", DEFAULT_AMQP_URL),
        amqp_exchange=None if amqp is None else amqp.get("exchange", DEFAULT_AMQP_EXCHANGE),
        amqp_queue=None if amqp is None else amqp.get("queue", DEFAULT_AMQP_QUEUE),
    )


def load(path: Union[str, os.PathLike], env: Optional[Mapping[str, str]] = None) -> Settings:
    """The emitter settings of the configuration file at `path` with `env` overrides (default: the
    process environment). Raises :class:`ConfigError` naming the key."""
    return settings(load_table(path, env), file=str(path))
