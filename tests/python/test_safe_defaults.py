"""The gateway as a new user starts it: `switchboard gateway` with no config file (the embedded default).
Anonymous browsers may subscribe, call, register and publish, but not publish model events (those come
from the web app) and nothing under the router's own `wamp.` and `switchboard.`. And the web app's `kick`
with a reason in any script reaches the browser as GOODBYE."""

import asyncio
import json
import os
import subprocess
import tempfile
from pathlib import Path

import pytest
import requests

from ingest_support import sign
from rawws import RawWs
from support import gateway_binary, port_of, wait_for_ready_file, wamp_test


class DefaultGateway:
    """`switchboard gateway` without --config; only the ports are moved (--listen and env overrides, all
    port 0: the ready file says which), so that tests can run beside each other."""

    def __init__(self):
        self.secret = "defaults-test-secret"
        self.tmp = tempfile.TemporaryDirectory(prefix="switchboard-default-")
        self.log_path = Path(self.tmp.name) / "gateway.log"
        self.log = open(self.log_path, "wb")
        env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD__")}
        env.update(
            SWITCHBOARD__INGEST__JSONRPC__LISTEN="127.0.0.1:0",
            SWITCHBOARD__INGEST__ZMQ__ENDPOINT="tcp://127.0.0.1:0",
            SWITCHBOARD__SECURITY__SECRET=self.secret,
            RUST_LOG="info",
        )
        ready_path = Path(self.tmp.name) / "ready.json"
        self.proc = subprocess.Popen(
            [gateway_binary(), "gateway", "--listen", "127.0.0.1:0", "--ready-file", str(ready_path)],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        ready = wait_for_ready_file(self.proc, ready_path, 30, lambda: self.log_path.read_text(errors="replace"))
        self.port, self.rpc_port, self.zmq_port = (port_of(ready[k]) for k in ("http", "jsonrpc", "zmq"))

    def rpc(self, method, params):
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
        headers = {"Content-Type": "application/json", "X-Switchboard-Signature": sign(body, self.secret)}
        return requests.post(f"http://127.0.0.1:{self.rpc_port}/", data=body, headers=headers, timeout=10).json()

    def close(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.log.close()
        self.tmp.cleanup()


@pytest.fixture(scope="module")
def gw():
    gateway = DefaultGateway()
    try:
        yield gateway
    finally:
        gateway.close()


@pytest.mark.parametrize(
    "topic,allowed",
    [
        ("com.example.news", True),
        ("models.shop.order", False),
        ("models.auth.user", False),
        ("wamp.session.on_join", False),
        ("switchboard.anything", False),
    ],
)
@wamp_test()
async def test_anonymous_browsers_may_not_forge_model_events(gw, topic, allowed):
    ws = await RawWs.connect(gw.port)
    try:
        await ws.join()
        await ws.send([32, 1, {}, "models.shop.order"])
        assert (await ws.recv())[0] == 33, "reading model events is allowed"
        await ws.send([16, 2, {"acknowledge": True, "eligible_authid": ["victim"]}, topic, []])
        answer = await ws.recv()
        if allowed:
            assert answer[0] == 17, answer
        else:
            assert answer[:2] == [8, 16] and answer[4] == "wamp.error.not_authorized", answer
    finally:
        ws.close()


@wamp_test()
async def test_a_kick_reason_in_any_script_reaches_the_browser_as_goodbye(gw):
    ws = await RawWs.connect(gw.port)
    try:
        await ws.join()
        authid = ws.welcome[2]["authid"]
        reason = "app.x" + "é" * 70  # a close frame holds 123 bytes: the cut falls inside a character
        answer = await asyncio.to_thread(gw.rpc, "kick", {"authid": authid, "reason": reason, "message": "bye ✓"})
        assert answer["result"] == {"kicked": 1}, answer
        goodbye = await ws.recv()
        assert goodbye[0] == 6 and goodbye[2] == reason, goodbye
        assert goodbye[1]["message"] == "bye ✓"
    finally:
        ws.close()
