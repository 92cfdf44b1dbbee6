"""ZeroMQ and AMQP transports when nothing listens: Unreachable for every event, quickly, never a hang."""

import socket
import time

import pytest

from switchboard_emitter import EmitError, Emitter, Unreachable


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_zmq_without_a_gateway_is_unreachable_within_the_timeout():
    pytest.importorskip("zmq")
    with Emitter("k", "zmq", zmq_endpoint=f"tcp://127.0.0.1:{closed_port()}", timeout=0.3) as emitter:
        started = time.monotonic()
        with pytest.raises(Unreachable):
            emitter.publish("a.b")
        assert time.monotonic() - started < 3
        outcomes = emitter.publish_batch([{"topic": "a.b"}, {"topic": "a.c"}])
        assert [type(outcome) for outcome in outcomes] == [Unreachable, Unreachable]


def test_zmq_needs_a_tcp_endpoint():
    pytest.importorskip("zmq")
    with pytest.raises(EmitError):
        Emitter("k", "zmq", zmq_endpoint="ipc:///tmp/x")


def test_amqp_without_a_broker_is_unreachable():
    pytest.importorskip("pika")
    emitter = Emitter("k", "amqp", amqp_url=f"amqp://guest:guest@127.0.0.1:{closed_port()}/%2f", timeout=1)
    with pytest.raises(Unreachable) as error:
        emitter.model("shop.order").deleted(1)
    assert "AMQPConnectionError" in str(error.value)
    emitter.close()
