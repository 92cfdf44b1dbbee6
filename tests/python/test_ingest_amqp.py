"""AMQP ingestion from a foreign publisher: pika with a few lines of HMAC, and the Rust emitter
(`switchboard emit` with [emitter] transport = "amqp"), to an unmodified Autobahn subscriber, through the
RabbitMQ at 127.0.0.1:5672."""

import asyncio
import json
import time
import uuid

import pika
import pytest

import support
from ingest_support import SECURITY_CONFIG, sign, subscribed
from support import Clients, Gateway, uid, wamp_test

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2f"


class AmqpGateway(Gateway):
    """The suite's gateway with a secret and `[ingest.amqp]` on this run's own exchange and queue."""

    def __init__(self):
        unique = uuid.uuid4().hex[:12]
        self.exchange = f"sbtest.py.{unique}.events"
        self.queue = f"sbtest.py.{unique}.ingest"
        super().__init__(
            extra_config=SECURITY_CONFIG
            + f'\n[ingest.amqp]\nurl = "{AMQP_URL}"\nexchange = "{self.exchange}"\nqueue = "{self.queue}"\n'
        )


def channel():
    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    return connection, connection.channel()


def wait_for_queue(ch, queue: str, timeout: float = 15.0):
    """The gateway declares its queue once connected to RabbitMQ; poll for it with a deadline."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            probe_connection, probe = channel()
            try:
                return probe.queue_declare(queue, passive=True).method.message_count
            finally:
                probe_connection.close()
        except pika.exceptions.ChannelClosedByBroker:
            if time.monotonic() > deadline:
                raise AssertionError(f"queue {queue} never declared")
            time.sleep(0.05)


@pytest.fixture(scope="module")
def gw():
    gateway = AmqpGateway().start()
    connection, ch = channel()
    try:
        wait_for_queue(ch, gateway.queue)
        yield gateway
    finally:
        gateway.close()
        for queue in (gateway.queue, f"{gateway.queue}.dead-letter"):
            ch.queue_delete(queue)
        for exchange in (gateway.exchange, f"{gateway.exchange}.dead-letter"):
            ch.exchange_delete(exchange)
        connection.close()


def dead_letters(gw) -> int:
    connection, ch = channel()
    try:
        return ch.queue_declare(f"{gw.queue}.dead-letter", passive=True).method.message_count
    finally:
        connection.close()


async def wait_dead_letters(gw, expected: int, timeout: float = 10.0) -> int:
    deadline = time.monotonic() + timeout
    while True:
        count = await asyncio.to_thread(dead_letters, gw)
        if count >= expected or time.monotonic() > deadline:
            return count
        await asyncio.sleep(0.05)


def publish(gw, topic: str, body: bytes, signature: str | None):
    connection, ch = channel()
    try:
        headers = {} if signature is None else {"x-switchboard-signature": signature}
        ch.basic_publish(
            exchange=gw.exchange,
            routing_key=topic,
            body=body,
            properties=pika.BasicProperties(headers=headers, delivery_mode=2, content_type="application/json"),
        )
    finally:
        connection.close()


@wamp_test(timeout=20)
async def test_pika_publish_reaches_autobahn_and_refusals_are_dead_lettered(gw, serializer):
    async with Clients(gw.url, serializer) as clients:
        session = await clients.connect()
        app = f"shop{uid()}"
        topic = f"models.{app}.order"
        inbox = await subscribed(session, topic)
        kwargs = {"action": "updated", "model": f"{app}.order", "pk": {"id": 7},
                  "data": {"status": "sent"}, "changed": ["status"]}
        body = json.dumps({"topic": topic, "kwargs": kwargs}).encode()
        refused = json.dumps({"topic": topic, "args": ["refused"]}).encode()
        before = await asyncio.to_thread(dead_letters, gw)
        await asyncio.to_thread(publish, gw, topic, refused, None)
        await asyncio.to_thread(publish, gw, topic, refused, sign(refused, secret="wrong"))
        await asyncio.to_thread(publish, gw, topic, body, sign(body))
        assert await inbox.count(1, "the pika event") == [([], kwargs)]
        # Both refusals went to the dead-letter queue (and only there: the inbox holds one event).
        assert await wait_dead_letters(gw, before + 2) == before + 2


@wamp_test(timeout=30)
async def test_rust_emitter_cli_over_amqp_reaches_autobahn(gw, serializer):
    config = gw.dir / "emitter-amqp.toml"
    config.write_text(
        SECURITY_CONFIG
        + f'[ingest.amqp]\nurl = "{AMQP_URL}"\nexchange = "{gw.exchange}"\nqueue = "{gw.queue}"\n'
        '[emitter]\ntransport = "amqp"\n'
    )
    async with Clients(gw.url, serializer) as clients:
        session = await clients.connect()
        app = f"shop{uid()}"
        inbox = await subscribed(session, f"models.{app}.order")
        proc = await asyncio.create_subprocess_exec(
            support.gateway_binary(), "emit", "--config", str(config), "--model", f"{app}.order",
            "--action", "created", "--pk", "42", "--data", '{"status": "new"}',
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 20)
        assert proc.returncode == 0, err.decode()
        items = await inbox.count(1, "the model change")
        assert items == [([], {"action": "created", "model": f"{app}.order", "pk": 42,
                               "data": {"status": "new"}, "changed": ["status"]})]
