"""WAMP over RawSocket (TCP) on the HTTP port, with Autobahn|Python's unmodified RawSocket transport
(autobahn.asyncio.rawsocket), next to WebSocket clients; and hostile raw bytes."""

import asyncio
import json
import struct

from autobahn.asyncio.rawsocket import WampRawSocketClientFactory
from autobahn.wamp.serializer import CBORSerializer, JsonSerializer, MsgPackSerializer
from autobahn.wamp.types import ComponentConfig

from support import REALM, Clients, Inbox, TestSession, uid, wait, wamp_test

SERIALIZER_IDS = {"json": 1, "msgpack": 2, "cbor": 3}
RAW_SERIALIZERS = {"json": JsonSerializer, "msgpack": MsgPackSerializer, "cbor": CBORSerializer}


class RawClients(Clients):
    """Like `Clients`, but `connect_raw()` opens a RawSocket session (`connect()` still a WebSocket one)."""

    def __init__(self, gateway, serializer: str):
        super().__init__(gateway.url, serializer)
        self.port = gateway.port

    async def connect_raw(self, serializer: str | None = None, realm: str = REALM) -> TestSession:
        ser_name = serializer or self.serializer
        ser = RAW_SERIALIZERS[ser_name]()
        created: list[TestSession] = []

        def make_session():
            s = TestSession(ComponentConfig(realm=realm))
            created.append(s)
            return s

        loop = asyncio.get_running_loop()
        factory = WampRawSocketClientFactory(make_session, serializer=ser)
        _transport, protocol = await wait(
            loop.create_connection(factory, "127.0.0.1", self.port), "TCP connect"
        )
        session = await wait(_session_created(created), "the RawSocket handshake")
        session.protocol = protocol
        self.sessions.append(session)
        await wait(session.joined, f"WELCOME on {realm} over RawSocket ({ser_name})")
        return session


async def _session_created(created):
    while not created:
        await asyncio.sleep(0.01)
    return created[-1]


@wamp_test()
async def test_pubsub_and_rpc_over_rawsocket(gateway, serializer):
    topic, procedure = f"com.test.raw.{uid()}", f"com.test.raw.add.{uid()}"
    async with RawClients(gateway, serializer) as c:
        subscriber = await c.connect_raw()
        publisher = await c.connect_raw()
        inbox = Inbox()
        await subscriber.subscribe(lambda *a, **kw: inbox.put((list(a), kw)), topic)
        await publisher.publish(topic, 1, "zwei ü", [3], k={"v": None}, options=_ack())
        items = await inbox.count(1, "the event over RawSocket")
        assert items[0] == ([1, "zwei ü", [3]], {"k": {"v": None}})

        await subscriber.register(lambda a, b: a + b, procedure)
        assert await wait(publisher.call(procedure, 2, 40), "the call over RawSocket") == 42


@wamp_test()
async def test_cbor_over_rawsocket_meets_json_over_websocket(gateway):
    topic, procedure = f"com.test.raw.cbor.{uid()}", f"com.test.raw.cbor.echo.{uid()}"
    async with RawClients(gateway, "json") as c:
        raw = await c.connect_raw(serializer="cbor")
        ws = await c.connect(serializer="json")
        inbox = Inbox()
        await raw.subscribe(lambda *a, **kw: inbox.put((list(a), kw)), topic)
        await ws.publish(topic, 1, "zwei ü", b"\x00\xffbytes", k={"v": [1.5, None]}, options=_ack())
        items = await inbox.count(1, "a WebSocket (JSON) event on RawSocket (CBOR)")
        assert items[0] == ([1, "zwei ü", b"\x00\xffbytes"], {"k": {"v": [1.5, None]}})

        await ws.register(lambda x: ["ws", x], procedure)
        assert await wait(raw.call(procedure, b"\x01\x02"), "a CBOR call to a JSON callee") == ["ws", b"\x01\x02"]


@wamp_test()
async def test_rawsocket_and_websocket_sessions_meet(gateway, serializer):
    other = "msgpack" if serializer == "json" else "json"
    topic, procedure = f"com.test.raw.{uid()}", f"com.test.raw.echo.{uid()}"
    async with RawClients(gateway, serializer) as c:
        raw = await c.connect_raw()
        ws = await c.connect(serializer=other)
        inbox = Inbox()
        await raw.subscribe(lambda *a: inbox.put(list(a)), topic)
        await ws.publish(topic, "from websocket", options=_ack())
        assert (await inbox.count(1, "a WebSocket event on RawSocket"))[0] == ["from websocket"]

        await raw.register(lambda x: ["raw", x], procedure)
        assert await wait(ws.call(procedure, 7), "WebSocket -> RawSocket call") == ["raw", 7]
        await ws.register(lambda x: ["ws", x], procedure + ".back")
        assert await wait(raw.call(procedure + ".back", 8), "RawSocket -> WebSocket call") == ["ws", 8]
        # The session meta API names each session's transport.
        details = await wait(ws.call("wamp.session.get", raw.session_id), "wamp.session.get")
        assert details["transport"] == {"type": "rawsocket", "serializer": serializer}
        details = await wait(raw.call("wamp.session.get", ws.session_id), "wamp.session.get")
        assert details["transport"] == {"type": "websocket", "serializer": other}


def _ack():
    from autobahn.wamp.types import PublishOptions

    return PublishOptions(acknowledge=True)


# --------------------------------------------------------------------------- raw bytes


async def _raw(gateway, data: bytes):
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
    writer.write(data)
    await writer.drain()
    return reader, writer


async def _read_until_closed(reader) -> bytes:
    return await asyncio.wait_for(reader.read(), 5)


async def _bystander_still_works(gateway):
    topic = f"com.test.raw.bystander.{uid()}"
    async with RawClients(gateway, "json") as c:
        ws = await c.connect()
        raw = await c.connect_raw(serializer="msgpack")
        inbox = Inbox()
        await ws.subscribe(lambda x: inbox.put(x), topic)
        await raw.publish(topic, "still here", options=_ack())
        await inbox.count(1, "the bystander's event")
    gateway.assert_alive()


@wamp_test()
async def test_handshake_errors(gateway):
    for request, code in [
        (bytes([0x7F, 0xF1, 0, 1]), 3),  # reserved bits
        (bytes([0x7F, 0xF1, 0x80, 0]), 3),
        (bytes([0x7F, 0xF4, 0, 0]), 1),  # no serializer 4 (3 is CBOR)
        (bytes([0x7F, 0xF0, 0, 0]), 1),
    ]:
        reader, writer = await _raw(gateway, request)
        answer = await _read_until_closed(reader)
        assert answer == bytes([0x7F, code << 4, 0, 0]), (request, answer)
        writer.close()
    await _bystander_still_works(gateway)


@wamp_test()
async def test_handshake_announces_our_limit_and_echoes_the_serializer(gateway):
    reader, writer = await _raw(gateway, bytes([0x7F, 0x02, 0, 0]))
    answer = await asyncio.wait_for(reader.readexactly(4), 5)
    # max_message_bytes = 1 MiB = 2^(9+11)
    assert answer == bytes([0x7F, 0xB2, 0, 0])
    writer.close()


@wamp_test()
async def test_wrong_magic_is_http_and_gets_400(gateway):
    reader, writer = await _raw(gateway, bytes([0x7E, 0xF1, 0, 0]) + b"\r\n\r\n")
    answer = await _read_until_closed(reader)
    assert answer.startswith(b"HTTP/1.1 400"), answer
    writer.close()
    await _bystander_still_works(gateway)


def _frame(payload: bytes, kind: int = 0) -> bytes:
    return bytes([kind]) + struct.pack(">I", len(payload))[1:] + payload


async def _joined_raw(gateway):
    reader, writer = await _raw(gateway, bytes([0x7F, 0x11, 0, 0]))  # JSON, we accept 1 KiB
    assert await asyncio.wait_for(reader.readexactly(4), 5) == bytes([0x7F, 0xB1, 0, 0])
    hello = json.dumps([1, REALM, {"roles": {"subscriber": {}}}]).encode()
    writer.write(_frame(hello))
    header = await asyncio.wait_for(reader.readexactly(4), 5)
    welcome = json.loads(await reader.readexactly(int.from_bytes(header[1:], "big")))
    assert welcome[0] == 2, welcome
    return reader, writer


@wamp_test()
async def test_ping_is_answered_with_pong(gateway):
    reader, writer = await _joined_raw(gateway)
    writer.write(_frame(b"are you there", kind=1))
    header = await asyncio.wait_for(reader.readexactly(4), 5)
    assert header[0] == 2
    assert await reader.readexactly(int.from_bytes(header[1:], "big")) == b"are you there"
    writer.close()


@wamp_test()
async def test_a_frame_declaring_16_mb_gets_abort_and_close(gateway):
    reader, writer = await _joined_raw(gateway)
    writer.write(bytes([0, 0xFF, 0xFF, 0xFF]) + b"x" * 1000)
    rest = await _read_until_closed(reader)
    assert rest[0] == 0
    abort = json.loads(rest[4 : 4 + int.from_bytes(rest[1:4], "big")])
    assert abort[0] == 3 and abort[2] == "wamp.error.payload_size_exceeded", abort
    writer.close()
    await _bystander_still_works(gateway)


@wamp_test()
async def test_an_outgoing_message_over_the_client_limit_ends_the_session(gateway):
    # The client accepts 1 KiB (exponent 1): a larger event is not sent, the session is aborted.
    topic = f"com.test.raw.big.{uid()}"
    reader, writer = await _raw(gateway, bytes([0x7F, 0x11, 0, 0]))
    assert await asyncio.wait_for(reader.readexactly(4), 5) == bytes([0x7F, 0xB1, 0, 0])
    writer.write(_frame(json.dumps([1, REALM, {"roles": {"subscriber": {}}}]).encode()))
    writer.write(_frame(json.dumps([32, 1, {}, topic]).encode()))
    async with RawClients(gateway, "json") as c:
        publisher = await c.connect()
        frames = []
        while len(frames) < 2:  # WELCOME, SUBSCRIBED
            header = await asyncio.wait_for(reader.readexactly(4), 5)
            frames.append(json.loads(await reader.readexactly(int.from_bytes(header[1:], "big"))))
        assert [f[0] for f in frames] == [2, 33], frames
        await publisher.publish(topic, "x" * 2000, options=_ack())
        rest = await _read_until_closed(reader)
        abort = json.loads(rest[4 : 4 + int.from_bytes(rest[1:4], "big")])
        assert abort[0] == 3 and abort[2] == "wamp.error.payload_size_exceeded", abort
    writer.close()


@wamp_test()
async def test_truncated_frame_then_close_and_bad_frame_types(gateway):
    reader, writer = await _joined_raw(gateway)
    writer.write(_frame(b'[32, 1, {}, "com.x"]')[:10])
    await writer.drain()
    writer.close()
    reader, writer = await _joined_raw(gateway)
    writer.write(bytes([0x07, 0, 0, 0]))  # frame type 7 does not exist
    assert await _read_until_closed(reader) == b""
    writer.close()
    reader, writer = await _raw(gateway, bytes([0x7F]))  # half a handshake, then close
    writer.close()
    await _bystander_still_works(gateway)


@wamp_test()
async def test_past_max_connections_a_rawsocket_client_gets_error_4():
    from support import Gateway

    gw = Gateway(gateway_keys="max_message_bytes = 1048576\nmax_connections = 1").start()
    try:
        holder_reader, holder = await _raw(gw, bytes([0x7F, 0x11, 0, 0]))
        assert await asyncio.wait_for(holder_reader.readexactly(4), 5) == bytes([0x7F, 0xB1, 0, 0])
        reader, writer = await _raw(gw, bytes([0x7F, 0x11, 0, 0]))
        assert await _read_until_closed(reader) == bytes([0x7F, 0x40, 0, 0])
        writer.close()
        holder.close()
    finally:
        gw.close()


@wamp_test(timeout=20)
async def test_sigterm_sends_goodbye_to_rawsocket_sessions(serializer):
    import signal
    import subprocess

    from support import Gateway

    gw = await asyncio.to_thread(lambda: Gateway().start())
    try:
        async with RawClients(gw, serializer) as c:
            s = await c.connect_raw()
            gw.proc.send_signal(signal.SIGTERM)
            details = await wait(s.left, "the RawSocket session to be closed by the gateway")
            assert details.reason == "wamp.close.system_shutdown", details
            try:
                code = await asyncio.to_thread(gw.proc.wait, 5)
            except subprocess.TimeoutExpired:
                raise AssertionError(f"gateway still running after SIGTERM\n{gw.log_tail()}") from None
            assert code == 0
    finally:
        await asyncio.to_thread(gw.close)
