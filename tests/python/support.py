"""Helpers for the Autobahn|Python interop tests.

Everything here drives the *unmodified* Autobahn|Python asyncio client against a
real `switchboard gateway` process:

* `Gateway` starts the binary with its own config on port 0 (the OS chooses), waits
  with a deadline for its `--ready-file` (the bound addresses) and stops it with SIGTERM. Env: SWITCHBOARD_BIN (binary,
  default <repo>/target/debug/switchboard), SWITCHBOARD_TEST_GATEWAY_LOG=1 (print the
  gateway's whole log to stderr when it stops; a failed test always shows its tail).
  `Gateway(extra_config=TOML)` appends more sections (`[security]`, `[ingest.*]`, ...).
* `wamp_test` turns an `async def` test into a plain pytest test that runs in a
  fresh event loop under a hard per-test timeout.
* `Clients.connect()` opens one WebSocket + WAMP session (realm1, anonymous) with
  exactly one serializer and returns the joined `TestSession`.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import urlparse

import txaio

txaio.use_asyncio()

from autobahn.asyncio.wamp import ApplicationSession  # noqa: E402
from autobahn.asyncio.websocket import WampWebSocketClientFactory  # noqa: E402
from autobahn.wamp import message  # noqa: E402
from autobahn.wamp.serializer import JsonSerializer, MsgPackSerializer  # noqa: E402
from autobahn.wamp.types import ComponentConfig  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]
REALM = "realm1"
SERIALIZERS = ("json", "msgpack")
SUBPROTOCOLS = {"json": "wamp.2.json", "msgpack": "wamp.2.msgpack"}

# Default per-test timeout (seconds). Every test finishes in well under a second
# against a healthy gateway; this only bounds a hang.
TEST_TIMEOUT = 10.0
# How long a single awaited step (a join, an expected event, a call) may take.
STEP_TIMEOUT = 5.0


def uid() -> str:
    """A fresh URI component, so tests never share topics or procedures."""
    return uuid.uuid4().hex[:16]


# --------------------------------------------------------------------------- gateway


CONFIG_TEMPLATE = """\
[gateway]
listen = "127.0.0.1:0"
{gateway_keys}
[[realms]]
name = "realm1"
anonymous_role = "anonymous"

[[realms.roles]]
name = "anonymous"
permissions = [{{ uri = "", match = "prefix", allow = {{ subscribe = true, publish = true, call = true, register = true }} }}]
"""


def gateway_binary() -> str:
    return os.environ.get("SWITCHBOARD_BIN") or str(REPO_ROOT / "target" / "debug" / "switchboard")


def port_of(address: str) -> int:
    """The port of `HOST:PORT` or `tcp://HOST:PORT`."""
    return int(address.rsplit(":", 1)[1])


def wait_for_ready_file(proc: subprocess.Popen, path: Path, timeout: float, log_tail) -> dict:
    """Polls (with a deadline) for the ready file `switchboard gateway --ready-file` writes once every
    listener is bound, and returns its JSON: {"http": "127.0.0.1:P", "jsonrpc": ..., "zmq": ..., "pid": N}."""
    deadline = time.monotonic() + timeout
    while True:
        if path.exists():
            return json.loads(path.read_text())
        if proc.poll() is not None:
            raise RuntimeError(
                f"gateway exited with code {proc.returncode} before it was ready\n"
                f"--- gateway log ---\n{log_tail()}"
            )
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait(timeout=10)
            raise RuntimeError(
                f"gateway wrote no {path.name} after {timeout}s\n--- gateway log ---\n{log_tail()}"
            )
        time.sleep(0.02)


class Gateway:
    """One `switchboard gateway --config FILE --ready-file F` process on 127.0.0.1, port chosen by the OS.

    `extra_config` is TOML text appended as is to the config written from CONFIG_TEMPLATE;
    `gateway_keys` are `key = value` lines for its `[gateway]` section (default: max_message_bytes).
    Ingestion sections in `extra_config` may listen on port 0 too: once started, `ready` holds the
    ready file's addresses, and `port`, `rpc_port`/`rpc_url` (JSON-RPC) and `zmq_port`/`endpoint`
    (ZeroMQ) are set from it.
    """

    def __init__(self, ready_timeout: float = 30.0, extra_config: str = "", gateway_keys: str = ""):
        self.ready_timeout = ready_timeout
        self.extra_config = extra_config
        self.gateway_keys = gateway_keys or "max_message_bytes = 1048576"
        self.port: int | None = None  # known once started
        self.ready: dict = {}
        self.tmp = tempfile.TemporaryDirectory(prefix="switchboard-pytest-")
        self.dir = Path(self.tmp.name)
        self.config = self.dir / "switchboard.toml"
        self.log_path = self.dir / "gateway.log"
        self.ready_path = self.dir / "ready.json"
        self.proc: subprocess.Popen | None = None
        self._log = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    @property
    def health_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/healthz"

    def log_tail(self, n: int = 40) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no gateway log)"
        return "\n".join(lines[-n:]) or "(gateway log is empty)"

    def start(self) -> "Gateway":
        binary = gateway_binary()
        if not os.path.exists(binary):
            raise RuntimeError(
                f"gateway binary not found at {binary}; run `cargo build -p switchboard` "
                "or set SWITCHBOARD_BIN"
            )
        config = CONFIG_TEMPLATE.format(gateway_keys=self.gateway_keys.strip() + "\n")
        self.config.write_text(config + self.extra_config)
        env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD__")}
        env.setdefault("RUST_LOG", "info")
        env["NO_COLOR"] = "1"  # the log goes to a file
        self._log = open(self.log_path, "wb")
        self.ready_path.unlink(missing_ok=True)
        self.proc = subprocess.Popen(
            [binary, "gateway", "--config", str(self.config), "--ready-file", str(self.ready_path)],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        self.ready = wait_for_ready_file(self.proc, self.ready_path, self.ready_timeout, self.log_tail)
        self.port = port_of(self.ready["http"])
        if "jsonrpc" in self.ready:
            self.rpc_port = port_of(self.ready["jsonrpc"])
            self.rpc_url = f"http://{self.ready['jsonrpc']}/"
        if "zmq" in self.ready:
            self.endpoint = self.ready["zmq"]
            self.zmq_port = port_of(self.endpoint)
        return self

    def terminate(self, timeout: float = 5.0) -> float | None:
        """SIGTERM and wait. Returns seconds it took to exit, None if it had to be killed."""
        if self.proc is None or self.proc.poll() is not None:
            return 0.0
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
            return time.monotonic() - t0
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def rss(self) -> int:
        """The gateway's resident memory in bytes (VmRSS)."""
        with open(f"/proc/{self.proc.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS")

    def assert_alive(self) -> None:
        """The process runs and /healthz answers ok."""
        assert self.proc.poll() is None, f"the gateway died:\n{self.log_tail()}"
        with urllib.request.urlopen(self.health_url, timeout=5) as response:
            assert response.status == 200 and response.read().strip() == b"ok"

    def wait_for_log(self, text: str, timeout: float = 5.0) -> None:
        """Polls the log until it holds `text` (a deadline, not a sleep)."""
        deadline = time.monotonic() + timeout
        while text not in self.log_path.read_text(errors="replace"):
            assert time.monotonic() < deadline, f"no {text!r} in the log:\n{self.log_tail()}"
            time.sleep(0.02)

    def close(self) -> None:
        self.terminate(timeout=10.0)
        if self._log:
            self._log.close()
        if os.environ.get("SWITCHBOARD_TEST_GATEWAY_LOG") == "1":
            sys.stderr.write(f"--- gateway log ({self.url}) ---\n{self.log_tail(10**9)}\n")
        self.tmp.cleanup()


def running(gateway: "Gateway"):
    """For fixtures: `yield from running(SomeGateway())` starts it, yields it, and always closes it."""
    gateway.start()
    try:
        yield gateway
    finally:
        gateway.close()


# --------------------------------------------------------------------------- running async tests


def wamp_test(timeout: float = TEST_TIMEOUT):
    """Run an `async def` test in a fresh event loop, bounded by `timeout` seconds."""

    def deco(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            async def main():
                txaio.config.loop = asyncio.get_running_loop()
                try:
                    await asyncio.wait_for(fn(*args, **kwargs), timeout)
                finally:
                    txaio.config.loop = None

            asyncio.run(main())

        return wrapper

    return deco


async def wait(fut, what: str, timeout: float = STEP_TIMEOUT):
    """Await `fut` with a deadline and a readable failure message."""
    try:
        return await asyncio.wait_for(asyncio.shield(asyncio.ensure_future(fut)), timeout)
    except asyncio.TimeoutError:
        raise AssertionError(f"timed out after {timeout}s waiting for {what}") from None


class Inbox:
    """Collects items (events, progress results, ...) and lets a test await the n-th one."""

    def __init__(self):
        self.items: list = []
        self._changed = asyncio.Event()

    def put(self, item) -> None:
        self.items.append(item)
        self._changed.set()

    async def until(self, pred, what: str, timeout: float = STEP_TIMEOUT):
        async def loop():
            while not pred(self.items):
                self._changed.clear()
                await self._changed.wait()

        try:
            await asyncio.wait_for(loop(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(
                f"timed out after {timeout}s waiting for {what}; got so far: {self.items!r}"
            ) from None
        return self.items

    async def count(self, n: int, what: str = "", timeout: float = STEP_TIMEOUT):
        return await self.until(lambda xs: len(xs) >= n, what or f"{n} item(s)", timeout)


# --------------------------------------------------------------------------- sessions


class TestSession(ApplicationSession):
    """An ordinary Autobahn ApplicationSession that also records what it receives."""

    __test__ = False  # not a pytest test class

    def __init__(self, config):
        super().__init__(config)
        loop = asyncio.get_running_loop()
        self.joined: asyncio.Future = loop.create_future()
        self.left: asyncio.Future = loop.create_future()
        self.disconnected: asyncio.Future = loop.create_future()
        self.received: list = []  # every WAMP message object received
        self.protocol = None  # the WebSocket protocol (set by Clients.connect)

    # record raw messages, then let Autobahn process them as usual
    def onMessage(self, msg):
        self.received.append(msg)
        return super().onMessage(msg)

    def onJoin(self, details):
        if not self.joined.done():
            self.joined.set_result(details)

    def onLeave(self, details):
        if not self.left.done():
            self.left.set_result(details)
        if not self.joined.done():
            self.joined.set_exception(
                AssertionError(f"session closed before it joined: {details.reason} {details.message}")
            )
        self.disconnect()

    def onDisconnect(self):
        if not self.disconnected.done():
            self.disconnected.set_result(True)
        if not self.joined.done():
            self.joined.set_exception(AssertionError("transport closed before the session joined"))

    # -- helpers used by tests

    @property
    def router_roles(self) -> dict:
        return self._router_roles

    def errors_received(self, request_type=message.Call.MESSAGE_TYPE) -> list:
        return [m for m in self.received if isinstance(m, message.Error) and m.request_type == request_type]

    def pending_call_request_id(self, procedure: str) -> int:
        """Request id of this session's outstanding CALL to `procedure` (for sending a CANCEL by hand)."""
        ids = [rid for rid, req in self._call_reqs.items() if req.procedure == procedure]
        assert len(ids) == 1, f"expected one pending call to {procedure}, found {ids}"
        return ids[0]

    def send(self, msg) -> None:
        """Send a hand-built WAMP message (autobahn.wamp.message) on this session."""
        self._transport.send(msg)

    async def close(self, timeout: float = STEP_TIMEOUT) -> None:
        if self.is_attached():
            try:
                await asyncio.wait_for(asyncio.ensure_future(self.leave()), timeout)
            except Exception:
                pass
        if self.protocol is not None and self.protocol.transport is not None:
            self.protocol.transport.abort()
        try:
            await asyncio.wait_for(asyncio.shield(self.disconnected), timeout)
        except asyncio.TimeoutError:
            pass

    def drop(self) -> None:
        """Cut the TCP connection without GOODBYE or WebSocket close."""
        self.protocol.transport.abort()


class Clients:
    """Opens sessions for one test and closes them all at the end."""

    def __init__(self, url: str, serializer: str):
        assert serializer in SERIALIZERS, serializer
        self.url = url
        self.serializer = serializer
        self.sessions: list[TestSession] = []

    async def __aenter__(self) -> "Clients":
        return self

    async def __aexit__(self, *exc) -> None:
        await asyncio.gather(*(s.close() for s in self.sessions), return_exceptions=True)

    async def connect(self, serializer=None, realm: str = REALM) -> TestSession:
        """A joined session over WebSocket; `serializer` is "json", "msgpack" (default: this set's) or any
        Autobahn|Python serializer object (a batched or CBOR one, say)."""
        chosen = serializer or self.serializer
        if isinstance(chosen, str):
            ser_name = chosen
            ser = JsonSerializer() if ser_name == "json" else MsgPackSerializer()
        else:
            ser, ser_name = chosen, chosen.SERIALIZER_ID
        created: list[TestSession] = []

        def make_session():
            s = TestSession(ComponentConfig(realm=realm))
            created.append(s)
            return s

        loop = asyncio.get_running_loop()
        factory = WampWebSocketClientFactory(make_session, url=self.url, serializers=[ser])
        factory.loop = loop
        u = urlparse(self.url)
        _transport, protocol = await wait(
            loop.create_connection(factory, u.hostname, u.port), f"TCP connect to {self.url}"
        )
        await wait(_opened(protocol), "the WebSocket handshake")
        assert created, "WebSocket opened but Autobahn created no session"
        session = created[-1]
        session.protocol = protocol
        self.sessions.append(session)
        await wait(session.joined, f"WELCOME on {realm} ({ser_name})")
        return session


async def _opened(protocol) -> None:
    # Autobahn creates the WAMP session only after the WebSocket handshake succeeded;
    # a refused handshake resolves is_closed instead of is_open.
    is_open, is_closed = protocol.is_open, protocol.is_closed
    await asyncio.wait([is_open, is_closed], return_when=asyncio.FIRST_COMPLETED)
    if not is_open.done():
        raise AssertionError(
            "WebSocket handshake failed: "
            f"{getattr(protocol, 'wasNotCleanReason', None) or getattr(protocol, 'droppedByMe', '')}"
        )
