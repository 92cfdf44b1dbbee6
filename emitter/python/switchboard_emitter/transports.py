"""The ways an emitter reaches the gateway, all blocking and thread-safe:

* :class:`JsonRpcTransport`: JSON-RPC 2.0 over HTTP (urllib, standard library); ``publish`` for one
  event, ``publish_batch`` for several; every request signed afresh (a retry is never a replay).
* :class:`ZmqTransport`: a ZeroMQ PUSH socket (pyzmq, extra ``zmq``); each event is two frames,
  ``[signature, event-json]``. ZeroMQ has no acknowledgement: a receipt means the event was handed to a
  connected socket.
* :class:`AmqpTransport`: AMQP 0-9-1 (pika, extra ``amqp``) with publisher confirms; persistent,
  mandatory, to the topic exchange with routing key = topic and the signature in the
  ``x-switchboard-signature`` header. It declares the exchange and queues exactly as the gateway does.

A transport's `send` returns one outcome per event, in order: a :class:`Receipt` or the
:class:`~switchboard_emitter.errors.EmitError` of that event.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import socket
import threading
import time
import urllib.error
import urllib.request
from typing import Any, List, NamedTuple, Optional, Sequence, Union
from urllib.parse import urlparse

from .errors import EmitError, Rejected, Unreachable
from .event import Event, dumps
from .signing import AMQP_SIGNATURE_HEADER, SIGNATURE_HEADER, Signer

log = logging.getLogger("switchboard_emitter")

#: Most events in one ``publish_batch`` call (the gateway accepts up to 1000).
MAX_BATCH = 500
#: HTTP statuses worth retrying: the gateway is busy or the body arrived too slowly.
RETRY_STATUSES = (408, 429, 502, 503, 504)


class Receipt(NamedTuple):
    """What the gateway confirmed for one event: its publication id where the transport returns one
    (JSON-RPC does; ZeroMQ and AMQP do not)."""

    publication: Optional[int] = None


Outcome = Union[Receipt, EmitError]


class _Retry(Exception):
    """A failure a retry may cure (connection refused, timeout, busy gateway)."""


class JsonRpcTransport:
    """Signed JSON-RPC 2.0 calls to the gateway at `url` (``http://127.0.0.1:8081``). Each request waits
    at most `timeout` seconds; connection failures and busy answers are retried `retries` times with a
    short backoff, each attempt signed afresh. Stateless apart from the id counter: thread-safe."""

    name = "jsonrpc"

    def __init__(self, url: str, signer: Signer, timeout: float = 10.0, retries: int = 2):
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise EmitError(f"jsonrpc transport: {url!r} is not an http:// URL")
        self.url = url if parsed.path else url + "/"
        self.signer = signer
        self.timeout = timeout
        self.retries = max(0, retries)
        self._ids = itertools.count(1)
        self._id_lock = threading.Lock()

    def _next_id(self) -> int:
        with self._id_lock:
            return next(self._ids)

    def call(self, method: str, params: Any) -> Any:
        """The result of `method(params)`; :class:`Rejected` for an error answer, :class:`Unreachable`
        once the retries are spent."""
        body = dumps({"jsonrpc": "2.0", "id": self._next_id(), "method": method, "params": params})
        delay = 0.2
        for attempt in range(self.retries + 1):
            try:
                answer = self._post(body)
                break
            except _Retry as retry:
                if attempt == self.retries:
                    raise Unreachable(self.url, str(retry)) from None
                log.warning("switchboard %s: %s; retrying in %.1f s", method, retry, delay)
                time.sleep(delay)
                delay *= 2.5
        if not isinstance(answer, dict):
            raise Rejected(-32700, f"unexpected answer from the gateway: {answer!r}")
        if "error" in answer:
            raise _rejected(answer["error"])
        if "result" not in answer:
            raise Rejected(-32700, f"unexpected answer from the gateway: {answer!r}")
        return answer["result"]

    def _post(self, body: bytes) -> Any:
        request = urllib.request.Request(
            self.url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", SIGNATURE_HEADER: self.signer.sign(body)},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as error:
            raw = error.read() or b""
            if error.code in RETRY_STATUSES:
                raise _Retry(f"HTTP {error.code}: {_error_text(raw) or error.reason}") from None
            answer = _json(raw)
            if isinstance(answer, dict) and isinstance(answer.get("error"), dict):
                raise _rejected(answer["error"]) from None
            raise Rejected(error.code, f"HTTP {error.code}: {raw[:200].decode('utf-8', 'replace') or error.reason}") from None
        except (urllib.error.URLError, OSError, socket.timeout) as error:
            reason = getattr(error, "reason", None) or error
            raise _Retry(str(reason)) from None
        answer = _json(raw)
        if answer is None:
            raise Rejected(-32700, f"the gateway's answer is not JSON: {raw[:200]!r}")
        return answer

    def send(self, events: Sequence[Event]) -> List[Outcome]:
        """`publish` for one event, `publish_batch` (in chunks of :data:`MAX_BATCH`) for more. Once a
        chunk cannot be sent, it and the rest get :class:`Unreachable`."""
        if len(events) == 1:
            return [_receipt(self.call("publish", events[0].to_dict()))]
        outcomes: List[Outcome] = []
        for start in range(0, len(events), MAX_BATCH):
            chunk = events[start:start + MAX_BATCH]
            try:
                results = self.call("publish_batch", {"events": [event.to_dict() for event in chunk]})
            except Unreachable as error:
                return outcomes + [error] * (len(events) - start)
            if not isinstance(results, list) or len(results) != len(chunk):
                raise Rejected(-32603, f"publish_batch answered {results!r} for {len(chunk)} events")
            for result in results:
                if isinstance(result, dict) and isinstance(result.get("error"), dict):
                    outcomes.append(_rejected(result["error"]))
                else:
                    outcomes.append(_receipt(result))
        return outcomes

    def close(self) -> None:
        pass


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None


def _error_text(raw: bytes) -> str:
    answer = _json(raw)
    if isinstance(answer, dict) and isinstance(answer.get("error"), dict):
        return str(answer["error"].get("message", ""))
    return ""


def _rejected(error: Any) -> Rejected:
    if not isinstance(error, dict):
        return Rejected(-32603, f"unexpected error from the gateway: {error!r}")
    code = error.get("code")
    return Rejected(code if isinstance(code, int) else -32603, str(error.get("message", "no message")),
                    error.get("data"))


def _receipt(result: Any) -> Receipt:
    publication = result.get("publication") if isinstance(result, dict) else None
    return Receipt(publication if isinstance(publication, int) and not isinstance(publication, bool) else None)


class _PerProcess:
    """Lazily opened connection state that is rebuilt in a forked child (pre-forking web servers) and
    guarded by a lock (pyzmq sockets and pika connections are not thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pid: Optional[int] = None

    def _forked(self) -> bool:
        return self._pid is not None and self._pid != os.getpid()


class ZmqTransport(_PerProcess):
    """A PUSH socket connected to the gateway's PULL `endpoint` (``tcp://127.0.0.1:5560``). Sending
    waits at most `timeout` seconds for a connected gateway (the socket queues nothing for a gateway
    that is not there). :meth:`close` lingers up to `linger` seconds so queued messages reach the wire."""

    name = "zmq"

    def __init__(self, endpoint: str, signer: Signer, timeout: float = 10.0, linger: float = 2.0):
        super().__init__()
        if not endpoint.startswith("tcp://"):
            raise EmitError(f"zmq transport: {endpoint}: only tcp:// endpoints are supported")
        try:
            import zmq  # noqa: F401
        except ImportError:
            raise EmitError("the zmq transport needs pyzmq: pip install 'switchboard-emitter[zmq]'") from None
        self.endpoint = endpoint
        self.signer = signer
        self.timeout = timeout
        self.linger = linger
        self._context = None
        self._socket = None

    def _connected(self):
        import zmq

        if self._forked():
            self._context = self._socket = None  # the parent's; never closed from here
        if self._socket is None:
            self._context = zmq.Context()
            sock = self._context.socket(zmq.PUSH)
            sock.setsockopt(zmq.IMMEDIATE, 1)
            sock.setsockopt(zmq.SNDTIMEO, max(1, int(self.timeout * 1000)))
            sock.setsockopt(zmq.LINGER, int(self.linger * 1000))
            sock.connect(self.endpoint)
            self._socket = sock
            self._pid = os.getpid()
        return self._socket

    def send(self, events: Sequence[Event]) -> List[Outcome]:
        import zmq

        outcomes: List[Outcome] = []
        with self._lock:
            for index, event in enumerate(events):
                body = event.to_json()
                try:
                    self._connected().send_multipart([self.signer.sign(body).encode("ascii"), body])
                except zmq.Again:
                    error = Unreachable(self.endpoint, f"no gateway took the event within {self.timeout} s")
                    return outcomes + [error] * (len(events) - index)
                except zmq.ZMQError as error:
                    self._reset()
                    failure = Unreachable(self.endpoint, str(error))
                    return outcomes + [failure] * (len(events) - index)
                outcomes.append(Receipt())
        return outcomes

    def _reset(self) -> None:
        if self._socket is not None and not self._forked():
            self._socket.close(linger=0)
            self._context.term()
        self._socket = self._context = None

    def close(self) -> None:
        with self._lock:
            if self._socket is not None and not self._forked():
                self._socket.close()  # lingers, so that queued messages are written
                self._context.term()
            self._socket = self._context = None


class AmqpTransport(_PerProcess):
    """Publishes to the topic `exchange` at the broker `url` (whose gateway consumes `queue`) with
    publisher confirms. Connects lazily, declares the topology like the gateway (durable topic exchange,
    its ``.dead-letter`` fanout exchange and queue, the durable queue bound with ``#``), and reconnects
    once when a kept connection turns out closed."""

    name = "amqp"

    def __init__(self, url: str, exchange: str, queue: str, signer: Signer, timeout: float = 10.0):
        super().__init__()
        try:
            import pika  # noqa: F401
        except ImportError:
            raise EmitError("the amqp transport needs pika: pip install 'switchboard-emitter[amqp]'") from None
        if not url.startswith("amqp://"):
            raise EmitError(f"amqp transport: {url}: only amqp:// URLs are supported")
        self.url = url
        self.exchange = exchange
        self.queue = queue
        self.signer = signer
        self.timeout = timeout
        self._connection = None
        self._channel = None

    def _target(self) -> str:
        parsed = urlparse(self.url)
        host = parsed.hostname or "localhost"
        return f"amqp://{host}:{parsed.port or 5672} (exchange {self.exchange})"

    def declare(self, channel) -> None:
        """Declares what the gateway declares (wire/src/amqp.rs), so that whichever side comes first
        creates the same exchange and queues."""
        dlx, dlq = f"{self.exchange}.dead-letter", f"{self.queue}.dead-letter"
        channel.exchange_declare(self.exchange, exchange_type="topic", durable=True)
        channel.exchange_declare(dlx, exchange_type="fanout", durable=True)
        channel.queue_declare(dlq, durable=True)
        channel.queue_bind(dlq, dlx, routing_key="")
        channel.queue_declare(self.queue, durable=True, arguments={"x-dead-letter-exchange": dlx})
        channel.queue_bind(self.queue, self.exchange, routing_key="#")

    def _open(self):
        import pika

        if self._forked():
            self._connection = self._channel = None
        if self._channel is not None and self._channel.is_open and self._connection.is_open:
            return self._channel
        self._drop()
        params = pika.URLParameters(self.url)
        params.socket_timeout = self.timeout
        params.blocked_connection_timeout = self.timeout
        params.connection_attempts = 1
        connection = pika.BlockingConnection(params)
        try:
            channel = connection.channel()
            channel.confirm_delivery()
            self.declare(channel)
        except BaseException:
            connection.close()
            raise
        self._connection, self._channel, self._pid = connection, channel, os.getpid()
        return channel

    def _drop(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None and not self._forked():
            try:
                if connection.is_open:
                    connection.close()
            except Exception:  # noqa: BLE001 - closing a broken connection may fail in many ways
                pass

    def _publish_one(self, event: Event) -> None:
        import pika

        body = event.to_json()
        properties = pika.BasicProperties(
            content_type="application/json",
            delivery_mode=2,
            headers={AMQP_SIGNATURE_HEADER: self.signer.sign(body)},
        )
        for attempt in (1, 2):
            try:
                fresh = self._channel is None
                self._open().basic_publish(self.exchange, event.topic, body, properties, mandatory=True)
                return
            except pika.exceptions.UnroutableError:
                raise Unreachable(self._target(), "RabbitMQ could not route the event: no queue bound to "
                                  f"exchange {self.exchange} (is the gateway's queue declared?)") from None
            except pika.exceptions.NackError:
                raise Unreachable(self._target(), "RabbitMQ refused the event (nack)") from None
            except pika.exceptions.ChannelClosedByBroker as error:
                self._drop()
                raise Rejected(error.reply_code, f"RabbitMQ closed the channel: {error.reply_text}") from None
            except (pika.exceptions.AMQPError, OSError) as error:
                self._drop()
                if attempt == 2 or fresh:
                    detail = str(error) or repr(error.args[0] if error.args else error)
                    raise Unreachable(self._target(), f"{type(error).__name__}: {detail}") from None
                log.info("switchboard amqp: the kept connection failed (%s); reconnecting", error)

    def send(self, events: Sequence[Event]) -> List[Outcome]:
        outcomes: List[Outcome] = []
        with self._lock:
            for index, event in enumerate(events):
                try:
                    self._publish_one(event)
                except Unreachable as error:
                    return outcomes + [error] * (len(events) - index)
                except Rejected as error:
                    outcomes.append(error)
                    continue
                outcomes.append(Receipt())
        return outcomes

    def close(self) -> None:
        with self._lock:
            self._drop()
