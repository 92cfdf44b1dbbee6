"""What the ingestion tests (test_ingest_*.py) share: the secret, its `[security]` section, the
signature a foreign publisher computes with a few lines of HMAC, and an Autobahn subscriber's inbox."""

import hashlib
import hmac
import time
import uuid

from support import Inbox

SECRET = "python-ingest-secret"
SECURITY_CONFIG = f'\n[security]\nsecret = "{SECRET}"\n'


def sign(body: bytes, secret: str = SECRET, t: int | None = None, nonce: str | None = None) -> str:
    """X-Switchboard-Signature: t=<unix>,n=<nonce>,s=<hex HMAC-SHA256(secret, "<t>.<n>.<body>")>."""
    t = int(time.time()) if t is None else t
    n = nonce or uuid.uuid4().hex
    mac = hmac.new(secret.encode(), f"{t}.{n}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},n={n},s={mac}"


def collector(inbox: Inbox):
    def on_event(*args, **kwargs):
        kwargs.pop("details", None)
        inbox.put((list(args), kwargs))

    return on_event


async def subscribed(session, topic: str) -> Inbox:
    """Subscribe `session` to `topic`; each event lands in the returned inbox as `(args, kwargs)`."""
    from autobahn.wamp.types import SubscribeOptions

    inbox = Inbox()
    await session.subscribe(collector(inbox), topic, options=SubscribeOptions(details_arg="details"))
    return inbox
