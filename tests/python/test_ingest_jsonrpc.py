"""JSON-RPC ingestion from a foreign publisher: plain `requests` plus a few lines of HMAC, against an
unmodified Autobahn|Python subscriber (DESIGN.md section 5 wire format only)."""

import asyncio
import json
import time

import pytest
import requests

import support
from ingest_support import SECURITY_CONFIG, sign, subscribed
from support import Clients, Gateway, uid, wamp_test


class IngestGateway(Gateway):
    """The suite's gateway with a secret and `[ingest.jsonrpc]` on a port the OS chooses (start() sets
    rpc_port and rpc_url from the ready file)."""

    def __init__(self):
        super().__init__(extra_config=SECURITY_CONFIG + '\n[ingest.jsonrpc]\nlisten = "127.0.0.1:0"\n')


@pytest.fixture(scope="module")
def gw():
    gateway = IngestGateway().start()
    try:
        yield gateway
    finally:
        gateway.close()


_ids = iter(range(1, 1 << 30))


def rpc_body(method: str, params) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": next(_ids), "method": method, "params": params}).encode()


async def post(gw, body: bytes, signature: str | None = "sign") -> dict:
    """POST in a worker thread, so the event loop keeps serving the Autobahn sessions meanwhile."""
    headers = {"Content-Type": "application/json"}
    if signature == "sign":
        signature = sign(body)
    if signature is not None:
        headers["X-Switchboard-Signature"] = signature
    response = await asyncio.to_thread(requests.post, gw.rpc_url, data=body, headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


async def call(gw, method: str, params) -> dict:
    return await post(gw, rpc_body(method, params))


async def result(gw, method: str, params):
    answer = await call(gw, method, params)
    assert "error" not in answer, answer
    return answer["result"]


@wamp_test()
async def test_model_change_reaches_autobahn_with_exact_kwargs(gw, serializer):
    async with Clients(gw.url, serializer) as clients:
        session = await clients.connect()
        topic = f"models.shop.order{uid()}"
        inbox = await subscribed(session, topic)
        kwargs = {
            "action": "updated",
            "model": f"shop.order{topic[len('models.shop.order'):]}",
            "pk": 42,
            "data": {"status": "paid", "total": 30.5, "tags": ["a", "ü"]},
            "changed": ["status"],
        }
        answer = await result(gw, "publish", {"topic": topic, "kwargs": kwargs})
        assert isinstance(answer["publication"], int)
        items = await inbox.count(1, "the model change")
        assert items == [([], kwargs)]


@wamp_test()
async def test_publish_batch_answers_per_event(gw, serializer):
    async with Clients(gw.url, serializer) as clients:
        session = await clients.connect()
        topic = f"com.example.batch.{uid()}"
        inbox = await subscribed(session, topic)
        events = [{"topic": topic, "args": [1]}, {"topic": "bad topic"}, {"topic": topic, "args": [2]}]
        answers = await result(gw, "publish_batch", {"events": events})
        assert isinstance(answers[0]["publication"], int)
        assert answers[1]["error"]["code"] == -32602
        assert answers[1]["error"]["data"]["field"] == "events[1].topic"
        assert isinstance(answers[2]["publication"], int)
        items = await inbox.count(2, "two batched events")
        assert items == [([1], {}), ([2], {})]


@wamp_test(timeout=20)
async def test_every_rejection_is_precise_and_not_delivered(gw):
    async with Clients(gw.url, "json") as clients:
        session = await clients.connect()
        topic = f"com.example.reject.{uid()}"
        inbox = await subscribed(session, topic)
        body = rpc_body("publish", {"topic": topic, "args": ["refused"]})
        now = int(time.time())
        signatures = {
            "missing": None,
            "malformed": "t=now,n=x,s=y",
            "invalid": sign(body, secret="wrong-secret"),
            "expired": sign(body, t=now - 3600),
        }
        for which, signature in signatures.items():
            answer = await post(gw, body, signature)
            assert answer["error"]["code"] == -32001, (which, answer)
            assert answer["error"]["data"]["reason"] == which, answer
            assert which in answer["error"]["message"], answer

        replayed = sign(body)
        first = await post(gw, body, replayed)
        assert "publication" in first["result"], first
        again = await post(gw, body, replayed)
        assert again["error"]["code"] == -32001 and again["error"]["data"]["reason"] == "replayed", again

        parse = await post(gw, b'{"jsonrpc": "2.0", "id": 1, "method": "publish", ')
        assert parse["error"]["code"] == -32700, parse
        invalid = await post(gw, json.dumps({"id": 1, "method": "publish"}).encode())
        assert invalid["error"]["code"] == -32600, invalid
        for params, field in [
            ({"topic": "com..x"}, "topic"),
            ({"topic": topic, "args": "x"}, "args"),
            ({"topic": topic, "kwargs": [1]}, "kwargs"),
            ({"topic": topic, "options": {"eligible_authid": [1]}}, "options.eligible_authid[0]"),
            ({"topic": topic, "realm": "no.such.realm"}, "realm"),
        ]:
            answer = await call(gw, "publish", params)
            assert answer["error"]["code"] == -32602, (params, answer)
            assert answer["error"]["data"]["field"] == field, (params, answer)

        await result(gw, "publish", {"topic": topic, "args": ["marker"]})
        items = await inbox.count(2, "the one accepted event and the marker")
        await asyncio.sleep(0)  # let anything already received be recorded
        assert items == [(["refused"], {}), (["marker"], {})], items


@wamp_test()
async def test_private_delivery_and_kick(gw):
    async with Clients(gw.url, "json") as clients:
        alice = await clients.connect()
        bob = await clients.connect()
        topic = f"com.example.private.{uid()}"
        alice_inbox = await subscribed(alice, topic)
        bob_inbox = await subscribed(bob, topic)
        alice_authid = (await alice.joined).authid
        await result(gw, "publish", {"topic": topic, "args": ["psst"], "options": {"eligible_authid": [alice_authid]}})
        await result(gw, "publish", {"topic": topic, "args": ["all"]})
        assert await alice_inbox.count(2) == [(["psst"], {}), (["all"], {})]
        assert await bob_inbox.count(1) == [(["all"], {})]

        listed = await result(gw, "sessions", {"authid": alice_authid})
        assert [s["session"] for s in listed] == [alice.session_id]
        watchers = await result(gw, "subscribers", {"topic": topic})
        assert sorted(watchers["sessions"]) == sorted([alice.session_id, bob.session_id])
        assert await result(gw, "kick", {"authid": alice_authid}) == {"kicked": 1}
        details = await asyncio.wait_for(asyncio.shield(alice.left), 5)
        assert details.reason == "wamp.close.killed"
        assert not bob.left.done()


@wamp_test(timeout=30)
async def test_rust_emitter_cli_reaches_autobahn_with_exact_kwargs(gw, serializer):
    """`switchboard emit` (the Rust emitter, transport from [emitter]) to an Autobahn subscriber."""
    config = gw.dir / "emitter.toml"
    config.write_text(
        SECURITY_CONFIG
        + f'[ingest.jsonrpc]\nlisten = "127.0.0.1:{gw.rpc_port}"\n'
        '[emitter]\ntransport = "jsonrpc"\n'
    )
    async with Clients(gw.url, serializer) as clients:
        session = await clients.connect()
        app = f"shop{uid()}"
        inbox = await subscribed(session, f"models.{app}.order")
        command = [
            support.gateway_binary(), "emit", "--config", str(config),
            "--model", f"{app}.order", "--action", "updated", "--pk", "42",
            "--data", '{"status": "paid", "total": 30}', "--changed", "status",
        ]
        proc = await asyncio.create_subprocess_exec(
            *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await asyncio.wait_for(proc.communicate(), 20)
        assert proc.returncode == 0, err.decode()
        assert isinstance(json.loads(out)["publication"], int)
        items = await inbox.count(1, "the model change")
        assert items == [([], {
            "action": "updated",
            "model": f"{app}.order",
            "pk": 42,
            "data": {"status": "paid", "total": 30},
            "changed": ["status"],
        })]
