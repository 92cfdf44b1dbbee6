"""Hostile ZeroMQ peers against the real gateway process: raw ZMTP bytes on a plain TCP socket.

A 73-byte packet declaring a 2^40-byte frame once killed the gateway (the allocation aborted it); a
frame declaring 64 MiB, or endless MORE frames, made it buffer what the peer sent. Each test checks
that the gateway is still alive and serving (healthz, a signed pyzmq event delivered) and that its
resident memory did not grow by what the peer declared or sent."""

import asyncio
import json
import socket
import struct

import pytest
import zmq

from ingest_support import SECURITY_CONFIG, sign, subscribed
from support import Clients, Gateway, running, uid, wamp_test

MAX_MESSAGE_BYTES = 1048576  # the suite's [gateway] max_message_bytes
# Slack for the allocator, logs and the test's own event: far below what the peers declare or send.
RSS_SLACK = 16 * 1024 * 1024

GREETING = b"\xff" + b"\x00" * 8 + b"\x7f" + b"\x03\x00" + b"NULL".ljust(20, b"\x00") + b"\x00" + b"\x00" * 31
_ready_body = b"\x05READY" + b"\x0bSocket-Type" + struct.pack(">I", 4) + b"PUSH"
READY = bytes([0x04, len(_ready_body)]) + _ready_body


def frame(payload: bytes, more: bool) -> bytes:
    flags = 0x01 if more else 0x00
    if len(payload) > 255:
        return bytes([flags | 0x02]) + struct.pack(">Q", len(payload)) + payload
    return bytes([flags, len(payload)]) + payload


class ZmqGateway(Gateway):
    def __init__(self):
        # Port 0: start() sets endpoint and zmq_port from the ready file.
        super().__init__(extra_config=SECURITY_CONFIG + '\n[ingest.zmq]\nendpoint = "tcp://127.0.0.1:0"\n')


@pytest.fixture
def gw():
    yield from running(ZmqGateway())


def raw_peer(gw) -> socket.socket:
    peer = socket.create_connection(("127.0.0.1", gw.zmq_port), timeout=10)
    peer.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return peer


def wait_closed(peer: socket.socket, timeout: float = 10.0):
    """Read until the gateway closes the connection (EOF or reset), within `timeout`."""
    peer.settimeout(timeout)
    try:
        while peer.recv(65536):
            pass
    except ConnectionResetError:
        pass


def send_until_closed(peer: socket.socket, data: bytes):
    try:
        peer.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        return
    raise AssertionError("the gateway read all of it instead of closing the connection")


async def assert_pyzmq_event_arrives(gw):
    async with Clients(gw.url, "json") as clients:
        session = await clients.connect()
        topic = f"com.example.alive.{uid()}"
        inbox = await subscribed(session, topic)
        push = zmq.Context.instance().socket(zmq.PUSH)
        push.setsockopt(zmq.LINGER, 1000)
        push.connect(gw.endpoint)
        try:
            body = json.dumps({"topic": topic, "args": ["alive"]}).encode()
            push.send_multipart([sign(body).encode(), body])
            assert await inbox.count(1, "a signed pyzmq event") == [(["alive"], {})]
        finally:
            push.close()


@wamp_test(timeout=30)
async def test_the_73_byte_packet_declaring_2_40_bytes_does_not_kill_the_gateway(gw):
    packet = GREETING + b"\x02" + struct.pack(">Q", 1 << 40)
    assert len(packet) == 73
    rss_before = gw.rss()
    peer = raw_peer(gw)
    peer.sendall(packet)
    wait_closed(peer)
    peer.close()
    gw.wait_for_log('which="too_large"')
    gw.assert_alive()
    assert gw.rss() - rss_before < RSS_SLACK
    await assert_pyzmq_event_arrives(gw)


@wamp_test(timeout=60)
async def test_a_plausible_64_mib_frame_is_refused_unread(gw):
    rss_before = gw.rss()
    peer = raw_peer(gw)
    peer.sendall(GREETING + READY + frame(sign(b"{}").encode(), more=True))
    declared = 64 * 1024 * 1024
    send_until_closed(peer, b"\x02" + struct.pack(">Q", declared) + b"x" * declared)
    peer.close()
    gw.wait_for_log(f"a frame declares {declared} bytes, more than the limit of {MAX_MESSAGE_BYTES}")
    gw.assert_alive()
    grown = gw.rss() - rss_before
    assert grown < RSS_SLACK, f"RSS grew by {grown} bytes"
    await assert_pyzmq_event_arrives(gw)


@wamp_test(timeout=60)
async def test_endless_more_frames_cost_no_memory_and_the_connection_goes_on(gw):
    async with Clients(gw.url, "json") as clients:
        session = await clients.connect()
        topic = f"com.example.more.{uid()}"
        inbox = await subscribed(session, topic)
        rss_before = gw.rss()
        peer = raw_peer(gw)
        peer.sendall(GREETING + READY + frame(b"sig", more=True))
        chunk = frame(b"m" * 1_000_000, more=True)
        for _ in range(256):  # 256 MB of MORE frames, each under max_message_bytes
            peer.sendall(chunk)
        peer.sendall(frame(b"end", more=False))
        gw.wait_for_log("expected 2 frames [signature, event], got 258", timeout=20)
        grown = gw.rss() - rss_before
        assert grown < RSS_SLACK, f"RSS grew by {grown} bytes"
        body = json.dumps({"topic": topic, "args": ["after"]}).encode()
        peer.sendall(frame(sign(body).encode(), more=True) + frame(body, more=False))
        assert await inbox.count(1, "the event sent on the same connection") == [(["after"], {})]
        peer.close()
    gw.assert_alive()


def test_sigterm_is_prompt_with_a_peer_stuck_in_the_middle_of_a_frame(gw):
    peer = raw_peer(gw)
    peer.sendall(GREETING + READY)
    handshake = b""
    while len(handshake) < 64 + 28:  # the gateway's greeting and READY(Socket-Type PULL)
        chunk = peer.recv(64 + 28 - len(handshake))
        assert chunk, "the gateway closed the connection during the handshake"
        handshake += chunk
    assert handshake[64:].endswith(b"Socket-Type\x00\x00\x00\x04PULL"), handshake
    peer.sendall(b"\x02" + struct.pack(">Q", 1000) + b"only part of the frame")
    took = gw.terminate(timeout=5.0)
    peer.close()
    assert took is not None, "the gateway did not exit within 5 s of SIGTERM"
    assert gw.proc.returncode == 0, gw.log_tail()


@wamp_test(timeout=40)
async def test_silent_peers_holding_every_slot_do_not_lock_emitters_out(gw):
    """A ZMTP handshake needs no secret: 256 peers that greet and stay silent hold every connection slot.
    A newcomer displaces the oldest of those that never sent a signed message (once they are a couple
    of seconds old), so a real emitter still gets its event through."""
    silent = []
    try:
        for _ in range(256):
            peer = raw_peer(gw)
            peer.sendall(GREETING + READY)
            silent.append(peer)
        await asyncio.sleep(2.5)  # past EVICTABLE_AFTER (2 s): the silent peers become displaceable
        await assert_pyzmq_event_arrives(gw)
        gw.assert_alive()
    finally:
        for peer in silent:
            peer.close()
