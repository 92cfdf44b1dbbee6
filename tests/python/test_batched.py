"""The batched WebSocket subprotocols (wamp.2.json.batched, wamp.2.msgpack.batched, wamp.2.cbor.batched):
unmodified Autobahn|Python sessions with batched serializers, next to unbatched ones; and a raw WebSocket
client (rawws.py) that puts several messages in one WebSocket message, reads several out of one, and lies
in its length prefixes."""

import asyncio
import json
import struct

import cbor2
import msgpack
from autobahn.wamp.serializer import CBORSerializer, JsonSerializer, MsgPackSerializer
from autobahn.wamp.types import PublishOptions

from rawws import RawWs
from support import REALM, Clients, Inbox, TestSession, uid, wait, wamp_test

BATCHED = {
    "json.batched": lambda: JsonSerializer(batched=True),
    "msgpack.batched": lambda: MsgPackSerializer(batched=True),
    "cbor.batched": lambda: CBORSerializer(batched=True),
    "cbor": lambda: CBORSerializer(),
}

ROLES = {"subscriber": {}, "publisher": {}, "caller": {}, "callee": {}}


async def connect_with(c: Clients, make_serializer, realm: str = REALM) -> TestSession:
    """Clients.connect with any Autobahn|Python serializer object (batched or CBOR), checking that the
    gateway chose its subprotocol."""
    ser = make_serializer()
    session = await c.connect(serializer=ser, realm=realm)
    assert session.protocol.websocket_protocol_in_use == f"wamp.2.{ser.SERIALIZER_ID}"
    return session


async def _pubsub_and_rpc(c: Clients, name: str):
    topic, procedure = f"com.test.batched.{uid()}", f"com.test.batched.add.{uid()}"
    batched = await connect_with(c, BATCHED[name])
    plain = await c.connect(serializer="json")
    inbox = Inbox()
    await batched.subscribe(lambda *a, **kw: inbox.put((list(a), kw)), topic)
    await plain.subscribe(lambda *a, **kw: inbox.put((list(a), kw)), topic)
    options = PublishOptions(acknowledge=True, exclude_me=False)
    for i in range(20):
        await batched.publish(topic, i, "zwei ü", b"\x00\xffbytes", k={"v": None}, options=options)
    items = await inbox.count(40, f"40 events ({name} publisher, both subscribers)")
    assert sorted(a[0] for a, _ in items) == sorted(list(range(20)) * 2)
    # Bytes reach the batched binary subscriber as bytes, the JSON one as the NUL+base64 convention
    # (Autobahn|Python's JSON serializer turns that back into bytes).
    assert all(a[1:] == ["zwei ü", b"\x00\xffbytes"] and kw == {"k": {"v": None}} for a, kw in items), items

    await plain.register(lambda a, b: a + b, procedure)
    results = await wait(asyncio.gather(*(batched.call(procedure, i, 40) for i in range(10))), "10 calls")
    assert results == [i + 40 for i in range(10)]


@wamp_test()
async def test_json_batched_autobahn_python(gateway):
    async with Clients(gateway.url, "json") as c:
        await _pubsub_and_rpc(c, "json.batched")


@wamp_test()
async def test_msgpack_batched_autobahn_python(gateway):
    async with Clients(gateway.url, "json") as c:
        await _pubsub_and_rpc(c, "msgpack.batched")


@wamp_test()
async def test_cbor_batched_and_cbor_autobahn_python(gateway):
    async with Clients(gateway.url, "json") as c:
        await _pubsub_and_rpc(c, "cbor.batched")
        await _pubsub_and_rpc(c, "cbor")


# ---------------------------------------------------------------------------------------------
# raw batched WebSocket


def json_batch(*messages, sep=b"\x1e") -> bytes:
    return b"".join(json.dumps(m).encode() + sep for m in messages)


def prefixed(*payloads: bytes) -> bytes:
    return b"".join(struct.pack("!L", len(p)) + p for p in payloads)


def split_json(payload: bytes, sep=b"\x1e"):
    assert payload.endswith(sep), payload[-20:]
    return [json.loads(p) for p in payload.split(sep)[:-1]]


def split_prefixed(payload: bytes, loads):
    out, i = [], 0
    while i < len(payload):
        (n,) = struct.unpack("!L", payload[i : i + 4])
        out.append(loads(payload[i + 4 : i + 4 + n]))
        i += 4 + n
    assert i == len(payload)
    return out


async def recv_batches(ws: RawWs, split, want: int, timeout: float = 5.0):
    """WebSocket messages until `want` WAMP messages arrived: (messages, sizes of each batch)."""
    messages, sizes = [], []
    while len(messages) < want:
        opcode, payload = await asyncio.wait_for(ws.recv_frame(), timeout)
        if opcode == 0x8:
            ws.close_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
            break
        batch = split(payload)
        sizes.append(len(batch))
        messages.extend(batch)
    return messages, sizes


@wamp_test()
async def test_several_messages_in_one_websocket_message_both_ways(gateway):
    for sep in (b"\x1e", b"\x18"):
        ws = await RawWs.connect(gateway.port, protocol="wamp.2.json.batched")
        topic = f"com.test.batched.raw.{uid()}"
        publishes = [[16, 100 + i, {"acknowledge": True, "exclude_me": False}, topic, [i]] for i in range(50)]
        # HELLO, SUBSCRIBE and 50 PUBLISH in one WebSocket message.
        await ws.send_frame(0x1, json_batch([1, REALM, {"roles": ROLES}], [32, 1, {}, topic], *publishes, sep=sep))
        messages, sizes = await recv_batches(ws, lambda p: split_json(p, sep), 2 + 50 * 2)
        kinds = [m[0] for m in messages]
        assert kinds[:2] == [2, 33], kinds[:4]
        assert kinds.count(36) == 50 and kinds.count(17) == 50, kinds
        assert [m[4] for m in messages if m[0] == 36] == [[i] for i in range(50)]
        # The writer packed queued frames: fewer WebSocket messages than WAMP messages.
        assert len(sizes) < len(messages), sizes
        await ws.send_frame(0x1, json_batch([6, {}, "wamp.close.normal"], sep=sep))
        messages, _ = await recv_batches(ws, lambda p: split_json(p, sep), 1)
        assert messages[0][0] == 6
        ws.close()


@wamp_test()
async def test_binary_batches_msgpack_and_cbor(gateway):
    for protocol, dumps, loads in (
        ("wamp.2.msgpack.batched", msgpack.packb, msgpack.unpackb),
        ("wamp.2.cbor.batched", cbor2.dumps, cbor2.loads),
    ):
        ws = await RawWs.connect(gateway.port, protocol=protocol)
        topic = f"com.test.batched.bin.{uid()}"
        hello = dumps([1, REALM, {"roles": ROLES}])
        sub = dumps([32, 1, {}, topic])
        pubs = [dumps([16, 10 + i, {"acknowledge": True, "exclude_me": False}, topic, [b"\x00\x01", i]]) for i in range(10)]
        await ws.send_frame(0x2, prefixed(hello, sub, *pubs))
        messages, _ = await recv_batches(ws, lambda p: split_prefixed(p, loads), 2 + 20)
        assert [m[0] for m in messages[:2]] == [2, 33]
        events = [m for m in messages if m[0] == 36]
        assert [e[4] for e in events] == [[b"\x00\x01", i] for i in range(10)], protocol
        ws.close()


async def _expect_abort(ws: RawWs, split, text: str):
    messages, _ = await recv_batches(ws, split, 1)
    assert messages and messages[0][0] == 3, messages
    assert messages[0][2] == "wamp.error.protocol_violation", messages[0]
    assert text in messages[0][1]["message"], messages[0]


@wamp_test()
async def test_lying_or_malformed_batches_are_aborted_and_the_gateway_keeps_serving(gateway):
    unpack = lambda p: split_prefixed(p, msgpack.unpackb)  # noqa: E731
    hello = msgpack.packb([1, REALM, {"roles": ROLES}])
    cases = [
        # A prefix declaring 4 GiB in a 20-byte message.
        (struct.pack("!L", 0xFFFFFFFF) + b"\x00" * 16, "declares 4294967295 bytes"),
        # A true message, then a prefix that overruns the batch.
        (prefixed(hello) + struct.pack("!L", 1000) + b"\x91\x01", "declares 1000 bytes with 2 bytes left"),
        # Two bytes of a length prefix.
        (prefixed(hello) + b"\x00\x01", "too few for a 4-byte length prefix"),
        (prefixed(hello) + struct.pack("!L", 0), "an empty message"),
    ]
    for payload, text in cases:
        ws = await RawWs.connect(gateway.port, protocol="wamp.2.msgpack.batched")
        await ws.send_frame(0x2, payload)
        await _expect_abort(ws, unpack, text)
        ws.close()

    # Too many messages in one batch; an empty JSON message.
    ws = await RawWs.connect(gateway.port, protocol="wamp.2.json.batched")
    await ws.send_frame(0x1, json_batch([1, REALM, {"roles": ROLES}]) + b"[7]\x1e" * 1024)
    await _expect_abort(ws, split_json, "more than 1024 messages")
    ws.close()
    ws = await RawWs.connect(gateway.port, protocol="wamp.2.json.batched")
    await ws.send_frame(0x1, b"\x1e")
    await _expect_abort(ws, split_json, "empty message")
    ws.close()

    gateway.assert_alive()
    async with Clients(gateway.url, "json") as c:
        await _pubsub_and_rpc(c, "msgpack.batched")
