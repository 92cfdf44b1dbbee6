"""Django integration: model changes published after the transaction commits, tickets for
``request.user``, and pages that render rows plus the position their live list recovers from.

    # settings.py
    INSTALLED_APPS = [..., "switchboard_emitter.django"]
    SWITCHBOARD = {"CONFIG": BASE_DIR / "switchboard.toml", "REALM": "realm1"}

    # shop/apps.py, in ShopConfig.ready()
    from switchboard_emitter import django as switchboard
    switchboard.register(Order, fields=["status", "total"])
    switchboard.register(Note, private=lambda note: [note.owner.username])

    {% load switchboard %}{% switchboard_connect %}
    {% switchboard_live orders as live %}{{ live|json_script:"orders" }}
"""

from __future__ import annotations

import logging
from typing import Any, Dict, Optional

from ..errors import EmitError
from . import conf
from .conf import get_emitter
from .registry import (Registration, jsonable, register, registered, registration, rows, stats, sync,
                       unregister)

log = logging.getLogger("switchboard_emitter.django")

__all__ = ["Registration", "connect_config", "get_emitter", "jsonable", "live", "register", "registered",
           "registration", "rows", "stats", "sync", "ticket_for", "unregister"]


def ticket_for(user: Any) -> Optional[Dict[str, str]]:
    """``{"authid", "ticket"}`` for a logged-in `user` (authid: ``SWITCHBOARD['AUTHID'](user)``, default the
    username; roles ``ROLES``; valid ``TICKET_TTL`` seconds), None for an anonymous one."""
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    opts = conf.options()
    authid = opts.authid(user)
    return {"authid": authid, "ticket": get_emitter().ticket(authid, opts.roles, opts.ticket_ttl)}


def connect_config(request: Any) -> Dict[str, Any]:
    """What the page passes to switchboard.js's ``connect()``: ``url``, ``realm``, ``script`` (the
    gateway's ``/switchboard.js``) and, for a logged-in ``request.user``, ``authid`` and a fresh ``ticket``
    (none for an anonymous visitor, who joins with the realm's anonymous role)."""
    opts = conf.options()
    config: Dict[str, Any] = {"url": opts.gateway_url, "realm": opts.realm, "script": opts.script_url}
    config.update(ticket_for(getattr(request, "user", None)) or {})
    return config


def live(queryset: Any) -> Dict[str, Any]:
    """The first rows of a live list and the publication they are consistent with:
    ``{"model", "prefix", "rows", "after"}`` for ``client.live(model, {rows, after, prefix})``.

    Reads the gateway's ``last_publication`` of the model's topic *first*, then evaluates `queryset` (a
    registered model's queryset or the model class): an event published in between is both in the rows
    and replayed by the page, which is harmless, whereas the other order could lose it. When the gateway
    cannot answer (or keeps no history for the topic) ``after`` is None and the page recovers nothing
    between render and subscribe."""
    reg = registration(queryset)
    after = None
    try:
        after = get_emitter().last_publication(reg.topic, realm=conf.options().realm)
    except EmitError:
        log.warning("switchboard: last_publication(%s) failed; the page will not recover events published "
                    "before it subscribes", reg.topic, exc_info=True)
    prefix = reg.topic[: -len(reg.name)] if reg.topic.endswith("." + reg.name) or reg.topic == reg.name else None
    return {"model": reg.name, "prefix": prefix, "rows": rows(queryset), "after": after}
