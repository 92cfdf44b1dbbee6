"""What one peer may cost the others, tried on the wire with a raw WebSocket client: replies are never
dropped, a stalled subscriber is closed on time, per-session limits answer precisely, the router's own
URIs and invisible characters are refused, and WebSocket protocol errors close with the right code."""

import asyncio
import base64
import hashlib
import hmac
import os
import re
import time

import pytest

from rawws import RawWs
from support import Gateway, running, uid, wamp_test

LIMITS = """
[[realms.users]]
authid = "backend"
secret = "backend-secret"
role = "anonymous"
"""


def gateway_with(gateway_keys: str) -> Gateway:
    return Gateway(extra_config=LIMITS, gateway_keys=gateway_keys)


@pytest.fixture(scope="module")
def gw():
    yield from running(gateway_with(
        "max_message_bytes = 1048576\nmax_subscriptions = 5\nmax_pattern_subscriptions = 2\nmax_pending_requests = 2\n"
        "max_sessions_per_authid = 2\nmax_uri_bytes = 64"
    ))


async def answer(ws: RawWs):
    message = await ws.recv()
    assert message is not None, f"closed (code {ws.close_code}) instead of answering"
    return message


@wamp_test()
async def test_subscription_and_pattern_limits_answer_with_the_key(gw):
    ws = await RawWs.connect(gw.port)
    try:
        await ws.join()
        for i in range(2):
            await ws.send([32, i + 1, {"match": "prefix"}, f"p{i}."])
            assert (await answer(ws))[0] == 33
        await ws.send([32, 3, {"match": "prefix"}, "p9."])
        error = await answer(ws)
        assert error[:5] == [8, 32, 3, {}, "switchboard.error.limit_exceeded"], error
        assert "gateway.max_pattern_subscriptions" in error[5][0]
        for i in range(3):
            await ws.send([32, 10 + i, {}, f"t.{i}"])
            assert (await answer(ws))[0] == 33
        await ws.send([32, 20, {}, "t.x"])
        error = await answer(ws)
        assert error[4] == "switchboard.error.limit_exceeded" and "gateway.max_subscriptions" in error[5][0]
    finally:
        ws.close()


@wamp_test()
async def test_calls_in_flight_are_bounded_per_session(gw):
    callee = await RawWs.connect(gw.port)
    caller = await RawWs.connect(gw.port)
    try:
        await callee.join()
        await caller.join()
        procedure = f"com.slow.{uid()}"
        await callee.send([64, 1, {}, procedure])
        assert (await answer(callee))[0] == 65
        for request in (1, 2, 3):
            await caller.send([48, request, {}, procedure, []])
        error = await answer(caller)
        assert error[:3] == [8, 48, 3] and error[4] == "switchboard.error.limit_exceeded", error
        assert "gateway.max_pending_requests" in error[5][0]
        # The callee got the two that were admitted; answering one makes room again.
        first = await answer(callee)
        await answer(callee)
        await callee.send([70, first[1], {}, ["done"]])
        assert (await answer(caller))[:2] == [50, 1]
        await caller.send([48, 4, {}, procedure, []])
        assert (await answer(callee))[0] == 68
    finally:
        callee.close()
        caller.close()


def cra_signature(challenge: str) -> str:
    return base64.b64encode(hmac.new(b"backend-secret", challenge.encode(), hashlib.sha256).digest()).decode()


async def join_as_backend(gw):
    ws = await RawWs.connect(gw.port)
    await ws.send([1, "realm1", {"roles": {"subscriber": {}}, "authmethods": ["wampcra"], "authid": "backend"}])
    challenge = await answer(ws)
    assert challenge[0] == 4, challenge
    await ws.send([5, cra_signature(challenge[2]["challenge"]), {}])
    return ws, await answer(ws)


@wamp_test()
async def test_sessions_per_authid_are_bounded(gw):
    first, welcome1 = await join_as_backend(gw)
    second, welcome2 = await join_as_backend(gw)
    third, abort = await join_as_backend(gw)
    try:
        assert welcome1[0] == 2 and welcome2[0] == 2
        assert abort[:1] == [3] and abort[2] == "switchboard.error.limit_exceeded", abort
        assert "gateway.max_sessions_per_authid" in abort[1]["message"]
        first.close()
        # Once one leaves, the authid may join again (poll: the gateway notices the close).
        deadline = time.monotonic() + 5
        while True:
            again, answered = await join_as_backend(gw)
            again.close()
            if answered[0] == 2 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        assert answered[0] == 2, answered
    finally:
        for ws in (second, third):
            ws.close()


@pytest.mark.parametrize(
    "topic,error",
    [
        ("com." + "x" * 100, "wamp.error.invalid_uri"),
        ("com.a\u0000b", "wamp.error.invalid_uri"),
        ("com.a\u200bb", "wamp.error.invalid_uri"),
        ("com.\u202eterces", "wamp.error.invalid_uri"),
        ("wamp.session.on_join", "wamp.error.not_authorized"),
        ("switchboard.x", "wamp.error.not_authorized"),
    ],
)
@wamp_test()
async def test_bad_and_reserved_uris_are_refused(gw, topic, error):
    ws = await RawWs.connect(gw.port)
    try:
        await ws.join()
        await ws.send([16, 1, {"acknowledge": True}, topic, []])
        refused = await answer(ws)
        assert refused[:2] == [8, 16] and refused[4] == error, refused
        await ws.send([64, 2, {}, topic])
        refused = await answer(ws)
        assert refused[:2] == [8, 64] and refused[4] == error, refused
    finally:
        ws.close()


@wamp_test(timeout=60)
async def test_twenty_thousand_pipelined_requests_are_each_answered(gw):
    """Replies are never dropped: every request id gets its answer, in order (SUBSCRIBED while the
    subscription limit allows, then ERROR), and the session stays open."""
    ws = await RawWs.connect(gw.port)
    try:
        await ws.join()
        n = 20_000

        async def send_all():
            for request in range(1, n + 1):
                await ws.send([32, request, {}, f"com.pipe.{request}"])

        sender = asyncio.ensure_future(send_all())
        answered = []
        for _ in range(n):
            message = await answer(ws)
            answered.append((message[0], message[1] if message[0] == 33 else message[2]))
        await sender
        assert [request for _, request in answered] == list(range(1, n + 1))
        assert [kind for kind, _ in answered[:5]] == [33] * 5
        assert {kind for kind, _ in answered[5:]} == {8}
        await ws.send([34, n + 1, answered[0][1]])
        assert (await answer(ws))[0] in (8, 35), "still open and answering"
    finally:
        ws.close()


@pytest.fixture(scope="module")
def gw_stall():
    yield from running(
        gateway_with("max_message_bytes = 65536\noutbound_queue_bytes = 33554432\nslow_consumer_ms = 300")
    )


@wamp_test(timeout=30)
async def test_a_stalled_subscriber_is_closed_on_time_after_publishing_stops(gw_stall):
    """Above the low-water mark but under the byte bound, then no more events: the timer alone closes
    it, within slow_consumer_ms (plus scheduling)."""
    gw = gw_stall
    stalled = await RawWs.connect(gw.port, rcvbuf=4096)
    publisher = await RawWs.connect(gw.port)
    try:
        await stalled.join()
        await stalled.send([32, 1, {}, "com.stall"])
        assert (await answer(stalled))[0] == 33
        await publisher.join()
        chunk = "x" * 10_000
        events = 1600  # 16 MB: past the kernel's socket buffers (4 MiB at most here) and the 8 MiB
        # low-water mark, well under the 32 MiB bound
        for n in range(1, events + 1):
            await publisher.send([16, n, {}, "com.stall", [chunk, n]])
        # A round trip: the gateway has taken every PUBLISH before it answers this one.
        await publisher.send([16, events + 1, {"acknowledge": True}, "com.other", []])
        assert (await answer(publisher))[0] == 17
        # Nothing more is published: only the timer can close it (the deadline is a hang guard, 16 times
        # slow_consumer_ms).
        await asyncio.to_thread(gw.wait_for_log, "closing slow consumer", 5.0)
        assert re.search(r"which=\"?(stalled|no_progress)", gw.log_tail(200)), gw.log_tail(30)
        # What the stalled client gets, once it reads, has no gap.
        seen = []
        while (message := await stalled.recv(timeout=5)) is not None:
            if message[0] == 36:
                seen.append(message[4][1])
            elif message[0] == 3:
                assert message[2] == "switchboard.error.slow_consumer", message
        assert seen == list(range(1, len(seen) + 1)) and len(seen) < events
    finally:
        stalled.close()
        publisher.close()


@wamp_test()
async def test_websocket_protocol_errors_close_with_1002_and_bad_utf8_with_1007(gw):
    ws = await RawWs.connect(gw.port)
    try:
        await ws.join()
        ws.writer.write(bytes([0x80 | 0x40 | 0x1, 0x80 | 2]) + os.urandom(4) + b"[]")  # RSV1 set
        await ws.writer.drain()
        assert await ws.recv() is None and ws.close_code == 1002, ws.close_code
    finally:
        ws.close()
    ws = await RawWs.connect(gw.port)
    try:
        await ws.join()
        await ws.send_frame(0x1, b'["\xff\xfe"]')
        assert await ws.recv() is None and ws.close_code == 1007, ws.close_code
    finally:
        ws.close()


@wamp_test()
async def test_a_message_over_the_limit_gets_abort_payload_size_exceeded(gw):
    ws = await RawWs.connect(gw.port)
    try:
        await ws.join()
        await ws.send_frame(0x1, b'[16,1,{},"com.big",["' + b"x" * (1024 * 1024 + 10) + b'"]]')
        abort = await answer(ws)
        assert abort[0] == 3 and abort[2] == "wamp.error.payload_size_exceeded", abort
    finally:
        ws.close()


@wamp_test()
async def test_a_frame_far_over_the_limit_still_gets_its_abort(gw):
    """Past the WebSocket layer's own bound (twice the limit plus a margin) the frame is refused before
    it is read: the client must still see the ABORT, not a reset."""
    ws = await RawWs.connect(gw.port)
    try:
        await ws.join()
        sender = asyncio.ensure_future(ws.send_frame(0x1, b'[16,1,{},"com.big",["' + b"x" * (4 * 1024 * 1024) + b'"]]'))
        abort = await answer(ws)
        assert abort[0] == 3 and abort[2] == "wamp.error.payload_size_exceeded", abort
        assert await ws.recv() is None and ws.close_code == 1009, ws.close_code
        sender.cancel()
    finally:
        ws.close()


@pytest.fixture(scope="module")
def gw_quick():
    yield from running(
        gateway_with(
            "max_message_bytes = 1048576\noutbound_queue_bytes = 33554432\nslow_consumer_ms = 300\n"
            "hello_timeout_ms = 1000"
        )
    )


@wamp_test(timeout=30)
async def test_a_client_that_stops_reading_is_closed_however_little_is_queued(gw_quick):
    """Below the low-water mark (8 MiB of 32 MiB here) a queue never counts as behind; a client that reads
    nothing at all is still closed: frames wait at two progress checks with nothing written."""
    gw = gw_quick
    stalled = await RawWs.connect(gw.port, rcvbuf=4096)
    publisher = await RawWs.connect(gw.port)
    try:
        await stalled.join()
        topic = f"com.quiet.{uid()}"
        await stalled.send([32, 1, {}, topic])
        assert (await answer(stalled))[0] == 33
        await publisher.join()
        chunk = "x" * 10_000
        for n in range(1, 601):  # 6 MB: past the kernel's buffers (4 MiB at most here), under 8 MiB
            await publisher.send([16, n, {}, topic, [chunk, n]])
        await publisher.send([16, 601, {"acknowledge": True}, "com.other", []])
        assert (await answer(publisher))[0] == 17
        await asyncio.to_thread(gw.wait_for_log, "which=\"no_progress\"", 5.0)
    finally:
        stalled.close()
        publisher.close()


@wamp_test(timeout=30)
async def test_the_same_connection_may_join_again_after_goodbye_whenever(gw_quick):
    """The HELLO deadline starts again when a session leaves: re-joining later than hello_timeout_ms after
    the connection opened is fine."""
    ws = await RawWs.connect(gw_quick.port)
    try:
        await ws.join()
        await asyncio.sleep(1.5)  # longer than hello_timeout_ms, on purpose
        await ws.send([6, {}, "wamp.close.normal"])
        assert (await answer(ws))[0] == 6
        await ws.join()
        await ws.send([32, 1, {}, "com.again"])
        assert (await answer(ws))[0] == 33
    finally:
        ws.close()
