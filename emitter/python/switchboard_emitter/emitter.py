"""The emitter: what web-app code holds to publish events, model changes and tickets. Blocking and
thread-safe: create one per process (e.g. at import time or in ``AppConfig.ready``) and call it from any
request handler or signal handler."""

from __future__ import annotations

import os
import secrets
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from . import config as _config
from . import model as _model
from . import uri
from .errors import ConfigError, EmitError, Invalid, Rejected
from .event import Event
from .signing import Signer
from .ticket import TicketKey, Ttl
from .transports import AmqpTransport, JsonRpcTransport, Outcome, Receipt, ZmqTransport

DEFAULT_TIMEOUT = 10.0


class Emitter:
    """Publishes to the gateway over `transport` (``"jsonrpc"``, ``"zmq"`` or ``"amqp"``), signing with
    the shared `secret`.

    Addresses: `jsonrpc_url` (``http://127.0.0.1:8081``; also used by :meth:`last_publication` and the
    management calls whatever the transport), `zmq_endpoint` (``tcp://127.0.0.1:5560``), `amqp_url`,
    `amqp_exchange` and `amqp_queue`. Each call waits at most `timeout` seconds per attempt; JSON-RPC
    retries `retries` times while the gateway is unreachable. Events without an idempotency key get a
    random one (`auto_id`), so that the gateway drops the duplicate a retry can cause. Model events go
    under `model_prefix`.

    Usually built by :meth:`from_config`."""

    def __init__(
        self,
        secret: Union[str, bytes],
        transport: str = "jsonrpc",
        *,
        jsonrpc_url: Optional[str] = None,
        zmq_endpoint: Optional[str] = None,
        amqp_url: Optional[str] = None,
        amqp_exchange: str = _config.DEFAULT_AMQP_EXCHANGE,
        amqp_queue: str = _config.DEFAULT_AMQP_QUEUE,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = 2,
        auto_id: bool = True,
        model_prefix: str = _model.DEFAULT_MODEL_PREFIX,
    ):
        if not secret:
            raise ConfigError("the secret is empty", key="security.secret")
        signer = Signer(secret)
        self._tickets = TicketKey(secret)
        self.auto_id = auto_id
        self.model_prefix = model_prefix
        self.timeout = timeout
        self._calls = None if jsonrpc_url is None else JsonRpcTransport(jsonrpc_url, signer, timeout, retries)
        if transport == "jsonrpc":
            if self._calls is None:
                raise ConfigError("the jsonrpc transport needs jsonrpc_url", key="ingest.jsonrpc")
            self.transport = self._calls
        elif transport == "zmq":
            if not zmq_endpoint:
                raise ConfigError("the zmq transport needs zmq_endpoint", key="ingest.zmq")
            self.transport = ZmqTransport(zmq_endpoint, signer, timeout)
        elif transport == "amqp":
            if not amqp_url:
                raise ConfigError("the amqp transport needs amqp_url", key="ingest.amqp")
            self.transport = AmqpTransport(amqp_url, amqp_exchange, amqp_queue, signer, timeout)
        else:
            raise ConfigError(f"unknown transport {transport!r}; expected jsonrpc, zmq or amqp",
                              key="emitter.transport")

    @classmethod
    def from_config(cls, path: Union[str, "os.PathLike[str]"], env: Optional[Mapping[str, str]] = None,
                    **options: Any) -> "Emitter":
        """An emitter configured by the shared ``switchboard.toml`` at `path`, with the
        ``SWITCHBOARD__SECTION__KEY`` overrides of `env` (default: the process environment). `options`
        are the keyword options of the constructor (timeout, retries, auto_id, model_prefix)."""
        settings = _config.load(path, env)
        return cls(
            settings.secret,
            settings.transport,
            jsonrpc_url=settings.jsonrpc_url,
            zmq_endpoint=settings.zmq_endpoint,
            amqp_url=settings.amqp_url,
            amqp_exchange=settings.amqp_exchange or _config.DEFAULT_AMQP_EXCHANGE,
            amqp_queue=settings.amqp_queue or _config.DEFAULT_AMQP_QUEUE,
            **options,
        )

    def __repr__(self) -> str:
        return f"Emitter(transport={self.transport.name!r})"

    # ------------------------------------------------------------------ publishing

    def _prepared(self, event: Event) -> Event:
        if self.auto_id and event.id is None:
            return event.with_id(f"e-{secrets.token_hex(16)}")
        return event

    def publish(self, event: Union[Event, str], args: Optional[Sequence[Any]] = None,
                kwargs: Optional[Mapping[str, Any]] = None, **options: Any) -> Receipt:
        """Publishes one event and returns the gateway's :class:`Receipt` (its publication id over
        JSON-RPC). Either an :class:`Event`, or a topic with `args`, `kwargs` and the event options
        (``retain=True``, ``eligible_authid=["alice"]``, ``realm=...``, ``id=...``).

        Raises :class:`Invalid` (nothing sent), :class:`Rejected` (the gateway refused it) or
        :class:`Unreachable`."""
        if isinstance(event, Event):
            if args is not None or kwargs is not None or options:
                raise TypeError("publish(Event) takes no args, kwargs or options; set them on the Event")
        else:
            event = Event(event, args, kwargs, **options)
        (outcome,) = self.transport.send([self._prepared(event)])
        if isinstance(outcome, EmitError):
            raise outcome
        return outcome

    def publish_batch(self, events: Iterable[Union[Event, Mapping[str, Any]]]) -> List[Outcome]:
        """Publishes several events (Events, or dicts of the wire shape), in order, in as few requests
        as the transport allows. All are validated first: an invalid one raises :class:`Invalid` naming
        ``events[i]`` and nothing is sent. Returns one outcome per event: a :class:`Receipt`, or the
        :class:`Rejected` / :class:`Unreachable` error of that event (not raised)."""
        prepared: List[Event] = []
        for index, event in enumerate(events):
            try:
                if not isinstance(event, Event):
                    event = Event.from_dict(event)
                event.to_json()
            except Invalid as error:
                raise error.within(f"events[{index}]") from None
            prepared.append(self._prepared(event))
        if not prepared:
            return []
        return self.transport.send(prepared)

    def model(self, name: str) -> "ModelEmitter":
        """Model-change events for `name` (``<app>.<model>``, e.g. ``shop.order``)."""
        return ModelEmitter(self, _model.check_model_name(name))

    # ------------------------------------------------------------------ tickets

    def ticket(self, authid: str, roles: Iterable[str], ttl: Ttl) -> str:
        """A connection ticket for `authid` with `roles` (a list; the first is the session's authrole),
        valid for `ttl` seconds (or a timedelta): hand it to the browser, which joins with WAMP ticket
        authentication (authmethods ``["ticket"]``, this authid). It holds no secret."""
        return self._tickets.mint(authid, roles, ttl)

    # ------------------------------------------------------------------ JSON-RPC calls

    def _call(self, method: str, params: Dict[str, Any]) -> Any:
        if self._calls is None:
            raise ConfigError(f"{method} needs the gateway's JSON-RPC ingestion endpoint: use the jsonrpc "
                              "transport, add an [ingest.jsonrpc] section, or pass jsonrpc_url",
                              key="ingest.jsonrpc")
        return self._calls.call(method, {k: v for k, v in params.items() if v is not None})

    @staticmethod
    def _topic(topic: Any) -> str:
        if not isinstance(topic, str):
            raise Invalid("topic", "expected a string")
        reason = uri.check(topic)
        if reason:
            raise Invalid("topic", reason)
        return topic

    def last_publication(self, topic: str, realm: Optional[str] = None) -> Optional[int]:
        """The id of the newest publication the gateway stores for `topic` (its ``[[realms.history]]``),
        or None when it stores none. Read it *before* querying the database and render it with the rows:
        the browser's live collection recovers every event published after it."""
        answer = self._call("last_publication", {"topic": self._topic(topic), "realm": realm})
        publication = answer.get("publication", ...) if isinstance(answer, dict) else ...
        if publication is None or (isinstance(publication, int) and not isinstance(publication, bool)):
            return publication
        raise Rejected(-32700, f"unexpected answer to last_publication from the gateway: {answer!r}")

    def session_count(self, realm: Optional[str] = None) -> int:
        """Sessions joined in `realm`, or in every realm."""
        answer = self._call("session_count", {"realm": realm})
        if isinstance(answer, bool) or not isinstance(answer, int):
            raise Rejected(-32700, f"unexpected answer to session_count: {answer!r}")
        return answer

    def sessions(self, authid: str, realm: Optional[str] = None) -> List[Dict[str, Any]]:
        """The sessions of user `authid` (is this user online?): dicts with ``session``, ``authid``,
        ``authrole`` and ``realm``."""
        answer = self._call("sessions", {"authid": authid, "realm": realm})
        if not isinstance(answer, list):
            raise Rejected(-32700, f"unexpected answer to sessions: {answer!r}")
        return answer

    def kick(self, authid: str, reason: Optional[str] = None, message: Optional[str] = None,
             realm: Optional[str] = None) -> int:
        """Closes every session of `authid` (GOODBYE with `reason`, default ``wamp.close.killed``) after
        a logout or a ban; returns how many were closed."""
        answer = self._call("kick", {"authid": authid, "reason": reason, "message": message, "realm": realm})
        kicked = answer.get("kicked") if isinstance(answer, dict) else None
        if isinstance(kicked, bool) or not isinstance(kicked, int):
            raise Rejected(-32700, f"unexpected answer to kick: {answer!r}")
        return kicked

    def subscribers(self, topic: str, realm: Optional[str] = None) -> Dict[str, Any]:
        """Who would receive an event on `topic`: ``{"count": n, "sessions": [...]}``."""
        answer = self._call("subscribers", {"topic": self._topic(topic), "realm": realm})
        if not isinstance(answer, dict):
            raise Rejected(-32700, f"unexpected answer to subscribers: {answer!r}")
        return answer

    # ------------------------------------------------------------------ lifetime

    def close(self) -> None:
        """Closes the transport's connection (ZeroMQ lingers so that queued events reach the wire)."""
        self.transport.close()

    def __enter__(self) -> "Emitter":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class ModelEmitter:
    """Model-change events for one model: ``emitter.model("shop.order").updated(42, row, ["status"])``.
    Every method takes the :class:`Event` options as keywords (``eligible_authid=[...]``, ``realm=...``,
    ``id=...``)."""

    def __init__(self, emitter: Emitter, name: str, options: Optional[Dict[str, Any]] = None):
        self.emitter = emitter
        self.name = name
        self._options = dict(options or {})

    def eligible_authids(self, authids: Iterable[str]) -> "ModelEmitter":
        """The same model emitter delivering only to these authids (e.g. the row's owner)."""
        return ModelEmitter(self.emitter, self.name, {**self._options, "eligible_authid": list(authids)})

    def _emit(self, kwargs: Dict[str, Any], options: Dict[str, Any]) -> Receipt:
        event = _model.model_event(kwargs, self.emitter.model_prefix, **{**self._options, **options})
        event.to_json()  # a payload JSON cannot carry fails here, naming nothing sent
        return self.emitter.publish(event)

    def event(self, action: str, *args: Any, **options: Any) -> Event:
        """The event a call of `action` would publish, without publishing it (for publish_batch)."""
        builders = {"created": _model.created_kwargs, "updated": _model.updated_kwargs,
                    "deleted": _model.deleted_kwargs, "synced": _model.synced_kwargs}
        if action not in builders:
            raise Invalid("action", f"unknown action {action!r}; known: {', '.join(builders)}")
        kwargs = builders[action](self.name, *args)
        return _model.model_event(kwargs, self.emitter.model_prefix, **{**self._options, **options})

    def created(self, pk: Any, data: Mapping[str, Any], **options: Any) -> Receipt:
        """A row was created: `changed` lists every field of `data`."""
        return self._emit(_model.created_kwargs(self.name, pk, data), options)

    def updated(self, pk: Any, data: Mapping[str, Any], changed: Sequence[str], **options: Any) -> Receipt:
        """A row was updated: `data` is the row after the change, `changed` the fields that changed."""
        return self._emit(_model.updated_kwargs(self.name, pk, data, changed), options)

    def deleted(self, pk: Any, **options: Any) -> Receipt:
        """A row was deleted."""
        return self._emit(_model.deleted_kwargs(self.name, pk), options)

    def sync(self, rows: Iterable[Tuple[Any, Mapping[str, Any]]], **options: Any) -> Receipt:
        """Every row of the model as ``(pk, data)`` pairs (a ``synced`` event): the gateway replaces its
        view of the model and open pages resync. One event: it must fit the gateway's
        ``max_message_bytes`` (1 MiB by default)."""
        return self._emit(_model.synced_kwargs(self.name, rows), options)
