"""Switchboard's Python emitter: publish signed events and model changes into a Switchboard WAMP gateway,
mint connection tickets, and ask the gateway about its sessions, reading the same ``switchboard.toml`` as
the gateway. Standard library only; the ``zmq`` and ``amqp`` extras add those transports.

    from switchboard_emitter import Emitter

    emitter = Emitter.from_config("switchboard.toml")
    emitter.model("shop.order").updated(42, {"status": "paid", "total": 30}, ["status"])
    ticket = emitter.ticket("alice", ["member"], ttl=3600)
"""

from .config import Settings, load as load_config
from .emitter import DEFAULT_TIMEOUT, Emitter, ModelEmitter
from .errors import ConfigError, EmitError, Invalid, Rejected, SignatureError, TicketError, Unreachable
from .event import MAX_ID_BYTES, Event
from .model import DEFAULT_MODEL_PREFIX
from .signing import AMQP_SIGNATURE_HEADER, SIGNATURE_HEADER, Signer, Verifier
from .ticket import TicketClaims, TicketKey, mint_ticket, verify_ticket
from .transports import Receipt

__version__ = "0.1.0"

__all__ = [
    "AMQP_SIGNATURE_HEADER", "DEFAULT_MODEL_PREFIX", "DEFAULT_TIMEOUT", "MAX_ID_BYTES", "SIGNATURE_HEADER",
    "ConfigError", "EmitError", "Emitter", "Event", "Invalid", "ModelEmitter", "Receipt", "Rejected",
    "Settings", "SignatureError", "Signer", "TicketClaims", "TicketError", "TicketKey", "Unreachable",
    "Verifier", "load_config", "mint_ticket", "verify_ticket",
]
