"""WAMP over HTTP long-poll (`/lp`) with raw HTTP requests: what a client without WebSocket sends, and what
a hostile or broken one sends. Unmodified Autobahn|JS over long-poll is tested in tests/js/longpoll.test.js.

The module's gateway holds receives for 1 s and closes a transport after 2.5 s without a request, so
that abandoned transports are observed within a test."""

import asyncio
import json
import socket
import struct
import time
import uuid

import cbor2
import msgpack
import pytest
import requests
from autobahn.wamp.types import PublishOptions

from support import REALM, Clients, Gateway, Inbox, running, uid, wait, wamp_test

REQUEST_TIMEOUT_MS = 1000
SESSION_TIMEOUT_MS = 2500
MAX_MESSAGE_BYTES = 64 * 1024
HTTP_TIMEOUT = 10  # seconds; longer than any hold, only bounds a hang

HELLO = [1, REALM, {"roles": {"subscriber": {}, "publisher": {}, "caller": {}, "callee": {}}}]


@pytest.fixture(scope="module")
def gateway():
    keys = (
        f"max_message_bytes = {MAX_MESSAGE_BYTES}\n"
        f"longpoll_request_timeout_ms = {REQUEST_TIMEOUT_MS}\n"
        f"longpoll_session_timeout_ms = {SESSION_TIMEOUT_MS}\n"
    )
    yield from running(Gateway(gateway_keys=keys))


class LongPoll:
    """One long-poll transport driven by raw HTTP requests."""

    def __init__(self, gateway, protocol: str = "wamp.2.json"):
        self.base = f"http://127.0.0.1:{gateway.port}/lp"
        response = requests.post(f"{self.base}/open", json={"protocols": [protocol]}, timeout=HTTP_TIMEOUT)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/json")
        opened = response.json()
        assert opened["protocol"] == protocol
        self.id = opened["transport"]
        self.protocol = protocol

    def post(self, action: str, body: bytes = b"") -> requests.Response:
        return requests.post(f"{self.base}/{self.id}/{action}", data=body, timeout=HTTP_TIMEOUT)

    def encode(self, message) -> bytes:
        if self.protocol.startswith("wamp.2.msgpack"):
            return msgpack.packb(message)
        if self.protocol.startswith("wamp.2.cbor"):
            return cbor2.dumps(message)
        return json.dumps(message).encode()

    def decode(self, body: bytes):
        if self.protocol.startswith("wamp.2.cbor"):
            return cbor2.loads(body)
        return msgpack.unpackb(body)

    def send(self, *messages) -> None:
        if self.protocol == "wamp.2.json.batched":
            body = b"".join(self.encode(m) + b"\x1e" for m in messages)
        elif self.protocol in ("wamp.2.msgpack.batched", "wamp.2.cbor.batched"):
            body = b"".join(struct.pack(">I", len(e)) + e for e in map(self.encode, messages))
        else:
            assert len(messages) == 1
            body = self.encode(messages[0])
        response = self.post("send", body)
        assert response.status_code == 204, (response.status_code, response.text)

    def receive_raw(self) -> requests.Response:
        return self.post("receive")

    def receive(self, what: str) -> list:
        """The messages of the next receive that carries any (a bounded number of empty polls)."""
        for _ in range(10):
            response = self.receive_raw()
            if response.status_code == 204:
                continue
            assert response.status_code == 200, (what, response.status_code, response.text)
            if self.protocol == "wamp.2.json.batched":
                return [json.loads(part) for part in response.content.split(b"\x1e") if part]
            if self.protocol in ("wamp.2.msgpack.batched", "wamp.2.cbor.batched"):
                return [self.decode(part) for part in split_length_prefixed(response.content)]
            if self.protocol.startswith(("wamp.2.msgpack", "wamp.2.cbor")):
                return [self.decode(response.content)]
            return [response.json()]
        raise AssertionError(f"nothing received: {what}")

    def join(self) -> int:
        self.send(HELLO)
        [welcome] = self.receive("WELCOME")
        assert welcome[0] == 2, welcome
        return welcome[1]

    def close(self) -> None:
        self.post("close")


def split_length_prefixed(body: bytes):
    """The messages (bytes) of a batched binary body, each after its 4-byte big-endian length."""
    while body:
        (length,) = struct.unpack(">I", body[:4])
        yield body[4 : 4 + length]
        body = body[4 + length :]


async def session_alive(watcher, session_id: int) -> bool:
    try:
        await watcher.call("wamp.session.get", session_id)
        return True
    except Exception as error:  # ApplicationError wamp.error.no_such_session
        assert "no_such_session" in str(error), error
        return False


async def until_gone(watcher, session_id: int, what: str) -> None:
    for _ in range(200):
        if not await session_alive(watcher, session_id):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"session {session_id} still there: {what}")


async def held_receive(lp: LongPoll) -> asyncio.Future:
    """A receive the gateway is provably holding: of two concurrent receives the older is answered 204
    as soon as the newer arrives, so once one has come back 204 the other is held. Needs a request
    timeout far longer than STEP_TIMEOUT, so that the 204 cannot be a timeout."""
    first = asyncio.ensure_future(asyncio.to_thread(lp.receive_raw))
    second = asyncio.ensure_future(asyncio.to_thread(lp.receive_raw))
    done, pending = await asyncio.wait([first, second], timeout=5, return_when=asyncio.FIRST_COMPLETED)
    assert len(done) == 1 and len(pending) == 1, "neither receive was answered when the other arrived"
    answered = done.pop().result()
    assert answered.status_code == 204 and answered.content == b""
    return pending.pop()


def long_hold_gateway() -> Gateway:
    """A gateway holding receives for 30 s: a 204 within a test's step timeout is never a timeout."""
    return Gateway(
        gateway_keys="longpoll_request_timeout_ms = 30000\nlongpoll_session_timeout_ms = 60000\n"
    )


def raw_http(port: int, request: bytes) -> bytes:
    """Sends `request` on a fresh connection and reads the response head and what follows it."""
    with socket.create_connection(("127.0.0.1", port), timeout=HTTP_TIMEOUT) as sock:
        sock.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
        return data


@pytest.mark.parametrize(
    "body, expected",
    [
        (b"", "must be JSON"),
        (b"not json", "must be JSON"),
        (b'["wamp.2.json"]', "JSON object"),
        (b"{}", 'no "protocols"'),
        (b'{"protocols": "wamp.2.json"}', "must be a list"),
        (b'{"protocols": []}', "is empty"),
        (b'{"protocols": [2]}', "strings only"),
        (b'{"protocols": ["wamp.2.xml"]}', "none of the protocols offered is supported"),
    ],
)
def test_open_refusals_name_the_problem(gateway, body, expected):
    response = requests.post(f"http://127.0.0.1:{gateway.port}/lp/open", data=body, timeout=HTTP_TIMEOUT)
    assert response.status_code == 400
    assert expected in response.text


def test_wrong_method_and_unknown_paths(gateway):
    base = f"http://127.0.0.1:{gateway.port}/lp"
    response = requests.get(f"{base}/open", timeout=HTTP_TIMEOUT)
    assert response.status_code == 405 and response.headers["allow"] == "POST"
    lp = LongPoll(gateway)
    assert requests.get(f"{base}/{lp.id}/receive", timeout=HTTP_TIMEOUT).status_code == 405
    response = lp.post("frobnicate")
    assert response.status_code == 404 and "send, receive or close" in response.text
    lp.close()


def test_a_page_on_another_origin_may_use_it(gateway):
    # The browser's preflight before a JSON POST, then the POST itself: both readable by any origin.
    base = f"http://127.0.0.1:{gateway.port}/lp"
    origin = {"Origin": "http://app.example", "Access-Control-Request-Method": "POST",
              "Access-Control-Request-Headers": "content-type"}
    preflight = requests.options(f"{base}/open", headers=origin, timeout=HTTP_TIMEOUT)
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert preflight.headers["access-control-allow-methods"] == "POST"
    assert "content-type" in preflight.headers["access-control-allow-headers"]
    opened = requests.post(f"{base}/open", json={"protocols": ["wamp.2.json"]},
                           headers={"Origin": "http://app.example"}, timeout=HTTP_TIMEOUT)
    assert opened.status_code == 200 and opened.headers["access-control-allow-origin"] == "*"
    transport = opened.json()["transport"]
    assert requests.options(f"{base}/{transport}/send", headers=origin, timeout=HTTP_TIMEOUT).status_code == 204
    closed = requests.post(f"{base}/{transport}/close", timeout=HTTP_TIMEOUT)
    assert closed.status_code == 204 and closed.headers["access-control-allow-origin"] == "*"


@pytest.mark.parametrize(
    "transport",
    [uuid.uuid4().hex, "0" * 32, "ZZ" * 16, "abc", "a" * 4000, "%2e%2e", "..", "%ff%fe" * 4],
)
def test_unknown_or_garbled_transport_ids_are_404(gateway, transport):
    for action in ("send", "receive", "close"):
        url = f"http://127.0.0.1:{gateway.port}/lp/{transport}/{action}"
        response = requests.post(url, data=b"[1]", timeout=HTTP_TIMEOUT)
        assert response.status_code == 404, (transport, action, response.status_code)
        if transport not in ("..", "%2e%2e"):  # `..` is resolved by the client: another path
            assert "no such long-poll transport" in response.text


@pytest.mark.parametrize(
    "protocol",
    [
        "wamp.2.json",
        "wamp.2.msgpack",
        "wamp.2.cbor",
        "wamp.2.json.batched",
        "wamp.2.msgpack.batched",
        "wamp.2.cbor.batched",
    ],
)
def test_session_over_longpoll(gateway, protocol):
    lp = LongPoll(gateway, protocol)
    topic = f"com.test.lp.{uid()}"
    if protocol.endswith(".batched"):
        lp.send(HELLO, [32, 1, {}, topic])
        received = []
        while len(received) < 2:
            received += lp.receive("WELCOME and SUBSCRIBED")
        assert [m[0] for m in received] == [2, 33]
    else:
        lp.join()
        lp.send([32, 1, {}, topic])
        assert lp.receive("SUBSCRIBED")[0][0] == 33
    lp.send([16, 2, {"acknowledge": True, "exclude_me": False}, topic, ["hi"]])
    kinds = []
    while len(kinds) < 2:
        kinds += [m[0] for m in lp.receive("PUBLISHED and EVENT")]
    assert sorted(kinds) == [17, 36]
    lp.send([6, {}, "wamp.close.normal"])
    assert lp.receive("GOODBYE")[0][:3] == [6, {}, "wamp.close.goodbye_and_out"]
    assert lp.post("close").status_code == 204
    assert lp.receive_raw().status_code == 404


def test_empty_receive_is_204_after_the_request_timeout(gateway):
    lp = LongPoll(gateway)
    lp.join()
    response = lp.receive_raw()
    assert response.status_code == 204 and response.content == b""
    lp.close()


@wamp_test(timeout=20)
async def test_malformed_wamp_aborts_with_protocol_violation(gateway):
    async with Clients(gateway.url, "json") as clients:
        watcher = await clients.connect()
        lp = LongPoll(gateway)
        session_id = await asyncio.to_thread(lp.join)
        assert await session_alive(watcher, session_id)
        response = await asyncio.to_thread(lp.post, "send", b'[16, 1, {}, "com.x"')
        assert response.status_code == 204
        [abort] = await asyncio.to_thread(lp.receive, "ABORT")
        assert abort[0] == 3 and abort[2] == "wamp.error.protocol_violation", abort
        assert "not valid JSON" in abort[1]["message"]
        after = await asyncio.to_thread(lp.receive_raw)
        assert after.status_code in (404, 410), after.status_code
        await until_gone(watcher, session_id, "after ABORT")
        await asyncio.to_thread(lp.close)


def test_malformed_first_message_and_bad_batches_abort(gateway):
    lp = LongPoll(gateway)
    assert lp.post("send", b"\x00\xff").status_code == 204
    [abort] = lp.receive("ABORT")
    assert abort[2] == "wamp.error.protocol_violation"

    batched = LongPoll(gateway, "wamp.2.json.batched")
    assert batched.post("send", json.dumps(HELLO).encode()).status_code == 204  # no 0x1E at the end
    [abort] = batched.receive("ABORT")
    assert abort[2] == "wamp.error.protocol_violation" and "0x1E" in abort[1]["message"]


def test_oversized_send_is_refused_before_it_is_read(gateway):
    lp = LongPoll(gateway)
    lp.join()
    # Declares a body far over max_message_bytes and sends none of it: the 413 arrives anyway.
    head = (
        f"POST /lp/{lp.id}/send HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Length: {100 * MAX_MESSAGE_BYTES}\r\n\r\n"
    ).encode()
    answer = raw_http(gateway.port, head)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    [abort] = lp.receive("ABORT")
    assert abort[2] == "wamp.error.payload_size_exceeded", abort
    # Without a declared length (chunked), the body is read only up to the limit.
    other = LongPoll(gateway)
    chunks = (b"x" * 4096 for _ in range(2 * MAX_MESSAGE_BYTES // 4096))
    response = requests.post(f"{other.base}/{other.id}/send", data=chunks, timeout=HTTP_TIMEOUT)
    assert response.status_code == 413
    assert other.receive("ABORT")[0][2] == "wamp.error.payload_size_exceeded"


@wamp_test(timeout=20)
async def test_a_client_that_stops_polling_is_closed_and_its_session_leaves(gateway):
    async with Clients(gateway.url, "json") as clients:
        watcher = await clients.connect()
        lp = LongPoll(gateway)
        session_id = await asyncio.to_thread(lp.join)
        assert await session_alive(watcher, session_id)
        # No request for longpoll_session_timeout_ms: the transport is closed, the session leaves.
        await until_gone(watcher, session_id, "after the session timeout")
        response = await asyncio.to_thread(lp.receive_raw)
        assert response.status_code == 404
        assert "no such long-poll transport" in response.text


@wamp_test(timeout=30)
async def test_a_client_that_stops_polling_while_events_queue_is_a_slow_consumer():
    # The session timeout is far away: what closes it is the outbox's slow-consumer check, as for a
    # WebSocket client that stops reading.
    gw = Gateway(
        gateway_keys="slow_consumer_ms = 300\nlongpoll_request_timeout_ms = 30000\n"
        "longpoll_session_timeout_ms = 60000\n"
    ).start()
    try:
        async with Clients(gw.url, "json") as clients:
            publisher = await clients.connect()
            lp = LongPoll(gw)
            topic = f"com.test.lp.{uid()}"
            session_id = await asyncio.to_thread(lp.join)
            await asyncio.to_thread(lp.send, [32, 1, {}, topic])
            assert (await asyncio.to_thread(lp.receive, "SUBSCRIBED"))[0][0] == 33
            for n in range(3):
                await publisher.publish(topic, n, options=PublishOptions(acknowledge=True))
            await until_gone(publisher, session_id, "a long-poll client that stopped polling")
            [abort] = await asyncio.to_thread(lp.receive, "the ABORT that says why")
            assert abort[0] == 3 and abort[2] == "switchboard.error.slow_consumer", abort
    finally:
        gw.close()


@wamp_test(timeout=30)
async def test_concurrent_receives_the_older_is_answered_204():
    gw = long_hold_gateway().start()
    try:
        async with Clients(gw.url, "json") as clients:
            publisher = await clients.connect()
            lp = LongPoll(gw)
            topic = f"com.test.lp.{uid()}"
            await asyncio.to_thread(lp.join)
            await asyncio.to_thread(lp.send, [32, 1, {}, topic])
            assert (await asyncio.to_thread(lp.receive, "SUBSCRIBED"))[0][0] == 33
            newer = await held_receive(lp)
            await publisher.publish(topic, "to the newer", options=PublishOptions(acknowledge=True))
            response = await wait(newer, "the newer receive")
            assert response.status_code == 200
            assert response.json()[0] == 36 and response.json()[4] == ["to the newer"]
            await asyncio.to_thread(lp.close)
    finally:
        gw.close()


@wamp_test(timeout=20)
async def test_close_ends_the_session_and_forgets_the_transport(gateway):
    async with Clients(gateway.url, "json") as clients:
        watcher = await clients.connect()
        lp = LongPoll(gateway)
        session_id = await asyncio.to_thread(lp.join)
        held = asyncio.ensure_future(asyncio.to_thread(lp.receive_raw))
        assert (await asyncio.to_thread(lp.post, "close")).status_code == 204
        # Answered 204 if it was held when close arrived, 404 if it arrived after.
        assert (await wait(held, "the receive sent with close")).status_code in (204, 404)
        await until_gone(watcher, session_id, "after close")
        for action in ("send", "receive", "close"):
            assert (await asyncio.to_thread(lp.post, action, b"[1]")).status_code == 404


def test_longpoll_transports_hold_connection_slots():
    gw = Gateway(gateway_keys="max_connections = 3\n").start()
    try:
        with requests.Session() as http:  # one keep-alive connection: one slot
            base = f"http://127.0.0.1:{gw.port}/lp"

            def open_transport():
                return http.post(f"{base}/open", json={"protocols": ["wamp.2.json"]}, timeout=HTTP_TIMEOUT)

            first, second = open_transport(), open_transport()
            assert first.status_code == 200 and second.status_code == 200
            refused = open_transport()
            assert refused.status_code == 503 and "too many connections" in refused.text
            assert http.post(f"{base}/{first.json()['transport']}/close", timeout=HTTP_TIMEOUT).status_code == 204
            for _ in range(200):  # the slot is freed once the session task has ended
                again = open_transport()
                if again.status_code == 200:
                    break
                time.sleep(0.05)
            assert again.status_code == 200
    finally:
        gw.close()


@wamp_test(timeout=20)
async def test_shutdown_says_goodbye_to_longpoll_sessions():
    gw = long_hold_gateway().start()
    try:
        lp = LongPoll(gw)
        await asyncio.to_thread(lp.join)
        held = await held_receive(lp)
        took = await asyncio.to_thread(gw.terminate, 10.0)
        assert took is not None, "the gateway did not exit after SIGTERM"
        response = await wait(held, "the receive held over shutdown")
        assert response.status_code == 200, response.status_code
        goodbye = response.json()
        assert goodbye[0] == 6 and goodbye[2] == "wamp.close.system_shutdown", goodbye
        assert gw.proc.returncode == 0
    finally:
        gw.close()


@wamp_test()
async def test_gateway_still_serves_websocket_clients(gateway):
    gateway.assert_alive()
    async with Clients(gateway.url, "json") as clients:
        subscriber, publisher = await clients.connect(), await clients.connect()
        inbox = Inbox()
        topic = f"com.test.lp.after.{uid()}"
        await subscriber.subscribe(lambda x: inbox.put(x), topic)
        await publisher.publish(topic, "still here", options=PublishOptions(acknowledge=True))
        assert await inbox.count(1, "an event after the long-poll tests") == ["still here"]
