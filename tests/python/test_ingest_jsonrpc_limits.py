"""JSON-RPC body limits against the real gateway process: unauthenticated bodies are refused before they
are parsed, so they cost no memory (an unsigned 8 MiB body used to be parsed into ~200 MB just to log a
line), and a body over `[ingest.jsonrpc] max_body_bytes` is answered 413 unread."""

import json
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from ingest_support import SECURITY_CONFIG, sign
from support import Gateway, running

MAX_BODY_BYTES = 8 * 1024 * 1024  # the default of [ingest.jsonrpc] max_body_bytes
# Two forged bodies are read whole before their MAC fails (16 MiB, plus the allocator's keep); parsing
# all ten, as before, grew the RSS by 830 MiB.
RSS_SLACK = 48 * 1024 * 1024


class RpcGateway(Gateway):
    def __init__(self, max_body_bytes: int | None = None, body_timeout_ms: int | None = None):
        limit = "" if max_body_bytes is None else f"max_body_bytes = {max_body_bytes}\n"
        if body_timeout_ms is not None:
            limit += f"body_timeout_ms = {body_timeout_ms}\n"
        super().__init__(
            extra_config=SECURITY_CONFIG + f'\n[ingest.jsonrpc]\nlisten = "127.0.0.1:0"\n{limit}'
        )


@pytest.fixture(scope="module")
def gw():
    yield from running(RpcGateway())


def big_publish(size: int) -> bytes:
    """A JSON-RPC publish of about `size` bytes whose args are many small objects (costly to parse)."""
    head = b'{"jsonrpc": "2.0", "id": 1, "method": "publish", "params": {"topic": "com.example.big", "args": ['
    tail = b'{"a":1}]}}'
    count = (size - len(head) - len(tail)) // 8
    return head + b'{"a":1},' * count + tail


def post(gw, body: bytes, signature: str | None) -> requests.Response:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["X-Switchboard-Signature"] = signature
    return requests.post(gw.rpc_url, data=body, headers=headers, timeout=30)


def forged(body: bytes) -> str:
    """A fresh, well-formed header with a MAC made with the wrong secret."""
    return sign(body, secret="not-the-secret")


def test_concurrent_unauthenticated_8_mib_bodies_are_refused_without_memory_growth(gw):
    body = big_publish(MAX_BODY_BYTES - 1024)
    assert len(body) <= MAX_BODY_BYTES
    before = gw.rss()
    cases = [None] * 6 + [forged(body) for _ in range(2)] + ["t=1,n=x"] * 2
    with ThreadPoolExecutor(max_workers=len(cases)) as pool:
        answers = list(pool.map(lambda signature: post(gw, body, signature), cases))
    reasons = []
    for answer in answers:
        assert answer.status_code == 200, answer.text
        error = answer.json()["error"]
        assert error["code"] == -32001, error
        reasons.append(error["data"]["reason"])
    assert reasons == ["missing"] * 6 + ["invalid"] * 2 + ["malformed"] * 2
    grown = gw.rss() - before
    assert grown < RSS_SLACK, f"RSS grew by {grown} bytes after {len(cases)} refused 8 MiB bodies"
    # Signed, the same kind of body is parsed and published (the limit is the body, not the content).
    signed = big_publish(64 * 1024)
    assert "publication" in post(gw, signed, sign(signed)).json()["result"]


def raw_post(port: int, content_length: int, signature: str | None) -> tuple[int, dict]:
    """Sends only the headers of a POST declaring `content_length`; returns the status and JSON body."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        head = (
            f"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {content_length}\r\nConnection: close\r\n"
        )
        if signature:
            head += f"X-Switchboard-Signature: {signature}\r\n"
        conn.sendall((head + "\r\n").encode())
        response = b""
        while chunk := conn.recv(65536):
            response += chunk
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def test_a_body_over_max_body_bytes_gets_413_unread(gw):
    for signature in (None, sign(b"whatever")):
        status, answer = raw_post(gw.rpc_port, MAX_BODY_BYTES + 1, signature)
        assert status == 413, answer
        assert answer["error"]["message"] == f"request body exceeds {MAX_BODY_BYTES} bytes"


def test_max_body_bytes_is_configurable():
    gw = RpcGateway(max_body_bytes=4096).start()
    try:
        fits = big_publish(4000)
        answer = post(gw, fits, sign(fits))
        assert answer.status_code == 200 and "publication" in answer.json()["result"], answer.text
        too_big = big_publish(5000)
        answer = post(gw, too_big, sign(too_big))
        assert answer.status_code == 413, answer.text
        assert answer.json()["error"]["message"] == "request body exceeds 4096 bytes"
    finally:
        gw.close()


def open_upload(gw, sent: int) -> socket.socket:
    """A forged-but-fresh upload declaring a maximal body and sending only `sent` bytes of it."""
    conn = socket.create_connection(("127.0.0.1", gw.rpc_port), timeout=10)
    head = (
        "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {MAX_BODY_BYTES}\r\nX-Switchboard-Signature: {forged(b'x')}\r\n\r\n"
    ).encode()
    try:
        conn.sendall(head + b"[" * sent)
    except OSError:
        pass  # refused (503) and closed while we were still sending
    conn.setblocking(False)
    return conn


def answers(conns, status: bytes) -> int:
    seen = 0
    for conn in conns:
        try:
            seen += conn.recv(64).startswith(status)
        except (BlockingIOError, OSError):
            pass
    return seen


def test_a_declared_body_that_never_arrives_holds_no_budget(gw):
    """Twenty uploads declaring 8 MiB each and sending 1 KiB: the budget is counted in bytes that
    arrived, so a signed publish still goes through at once."""
    held = [open_upload(gw, 1024) for _ in range(20)]
    try:
        small = big_publish(2048)
        answer = post(gw, small, sign(small))
        assert answer.status_code == 200 and "publication" in answer.json()["result"], answer.text
    finally:
        for conn in held:
            conn.close()


def test_bodies_in_progress_are_bounded_to_eight_maximal_ones_then_503(gw):
    """Forged-but-fresh headers make the gateway read bodies it will refuse; eight almost complete 8 MiB
    uploads hold the whole budget, so the next request is answered 503 at once instead of being read."""
    held = []
    try:
        for _ in range(10):
            held.append(open_upload(gw, MAX_BODY_BYTES - 1))
        small = big_publish(2048)
        deadline = time.monotonic() + 10
        while (answer := post(gw, small, sign(small))).status_code != 503:
            assert time.monotonic() < deadline, f"not refused while ~64 MiB of bodies are held: {answer.text}"
            time.sleep(0.05)
        assert answer.headers["Retry-After"] == "1"
        assert "busy" in answer.json()["error"]["message"]
    finally:
        for conn in held:
            conn.close()
    # The abandoned uploads give their share back.
    deadline = time.monotonic() + 10
    while (answer := post(gw, small, sign(small))).status_code != 200:
        assert time.monotonic() < deadline, answer.text
        time.sleep(0.05)
    assert "publication" in answer.json()["result"]


def test_a_body_that_does_not_arrive_in_time_gets_408():
    for gateway in running(RpcGateway(body_timeout_ms=500)):
        held = open_upload(gateway, 1024)
        try:
            deadline = time.monotonic() + 10
            while not answers([held], b"HTTP/1.1 408"):
                assert time.monotonic() < deadline, "no 408 for a body that stopped arriving"
                time.sleep(0.05)
        finally:
            held.close()
