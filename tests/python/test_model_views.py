"""Model views with the unmodified Autobahn|Python client: `switchboard.model.rows` answers the latest row
per pk kept from a model's events (created, updated, deleted, synced), a page at a time in the order asked,
with the publication it is consistent with, from which `get_events` recovers exactly what came after.
Reading a view needs subscribe permission on the model's topic; bad arguments get precise errors."""

import json

import pytest
import requests
from autobahn.wamp.exception import ApplicationError

from ingest_support import SECURITY_CONFIG, sign
from support import Clients, Gateway, running, uid, wamp_test

ROWS = "switchboard.model.rows"

CONFIG = """
[[realms.history]]
uri = "models."
match = "prefix"

[[realms.models]]
name = "shop.order"
max_rows = 50

[[realms.models]]
name = "shop.tiny"
max_rows = 2

[[realms.models]]
name = "shop.fresh"

[[realms]]
name = "locked"
anonymous_role = "outsider"

[[realms.roles]]
name = "outsider"
permissions = [{ uri = "", match = "prefix", allow = { call = true } }]

[[realms.models]]
name = "shop.order"
"""


@pytest.fixture(scope="module")
def gw():
    yield from running(Gateway(extra_config=CONFIG + SECURITY_CONFIG + '\n[ingest.jsonrpc]\nlisten = "127.0.0.1:0"\n'))


def change(gw, model: str, action: str, pk=None, data=None, rows=None, realm="realm1") -> int:
    """Publishes a model event as the web app does (signed JSON-RPC); returns its publication id."""
    kwargs = {"action": action, "model": model}
    if rows is not None:
        kwargs["rows"] = rows
    else:
        kwargs.update(pk=pk, data=data or {}, changed=list((data or {}).keys()))
    event = {"realm": realm, "topic": f"models.{model}", "args": [], "kwargs": kwargs}
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "publish", "params": event}).encode()
    headers = {"Content-Type": "application/json", "X-Switchboard-Signature": sign(body)}
    answer = requests.post(gw.rpc_url, data=body, headers=headers, timeout=10).json()
    return answer["result"]["publication"]


async def rows(session, model="shop.order", **kwargs) -> dict:
    result = await session.call(ROWS, model, **kwargs)
    return result.kwresults


async def refused(awaitable) -> ApplicationError:
    with pytest.raises(ApplicationError) as caught:
        await awaitable
    return caught.value


@wamp_test()
async def test_the_view_keeps_the_latest_row_per_pk_and_pages_in_order(gw, serializer):
    async with Clients(gw.url, serializer) as clients:
        page = await clients.connect()
        sync = change(gw, "shop.order", "synced", rows=[{"pk": 1, "total": 30, "status": "new"}, {"pk": 2, "total": 10, "status": "new"}])
        change(gw, "shop.order", "created", 3, {"total": 20, "status": "new"})
        change(gw, "shop.order", "updated", 1, {"status": "paid"})
        last = change(gw, "shop.order", "deleted", 2)
        view = await rows(page, order_by="total", desc=True)
        assert view["rows"] == [{"pk": 1, "total": 30, "status": "paid"}, {"pk": 3, "total": 20, "status": "new"}]
        assert view["total"] == 2 and view["publication"] == last
        assert sync != last
        first = await rows(page, order_by="total", limit=1)
        assert [r["pk"] for r in first["rows"]] == [3] and first["total"] == 2
        second = await rows(page, order_by="total", limit=1, after=3)
        assert [r["pk"] for r in second["rows"]] == [1]
        filtered = await rows(page, filter={"data.status": "paid"})
        assert [r["pk"] for r in filtered["rows"]] == [1] and filtered["total"] == 1


@wamp_test()
async def test_a_page_recovers_exactly_what_came_after_its_rows(gw, serializer):
    async with Clients(gw.url, serializer) as clients:
        page = await clients.connect()
        change(gw, "shop.order", "synced", rows=[])
        pk = f"r{uid()}"
        change(gw, "shop.order", "created", pk, {"total": 1})
        view = await rows(page, limit=1000)
        sub = await page.subscribe(lambda *a, **k: None, "models.shop.order")
        later = change(gw, "shop.order", "updated", pk, {"total": 2})
        missed = await page.call("wamp.subscription.get_events", sub.id, after_publication=view["publication"])
        assert [e["publication"] for e in missed] == [later]
        assert missed[0]["kwargs"]["data"] == {"total": 2}


@wamp_test()
async def test_reading_a_view_needs_subscribe_permission_on_its_topic(gw, serializer):
    async with Clients(gw.url, serializer) as clients:
        outsider = await clients.connect(realm="locked")
        error = await refused(rows(outsider))
        assert error.error == "wamp.error.not_authorized", error


@wamp_test()
async def test_unknown_incomplete_and_bad_requests_get_precise_errors(gw, serializer):
    async with Clients(gw.url, serializer) as clients:
        page = await clients.connect()
        assert (await refused(rows(page, "shop.unknown"))).error == "switchboard.error.no_such_model"
        change(gw, "shop.fresh", "created", 1, {"total": 1})
        unseeded = await refused(rows(page, "shop.fresh"))
        assert unseeded.error == "switchboard.error.view_incomplete" and "seeded" in unseeded.args[0], unseeded
        change(gw, "shop.tiny", "synced", rows=[])
        for pk in range(3):
            change(gw, "shop.tiny", "created", pk, {})
        incomplete = await refused(rows(page, "shop.tiny"))
        assert incomplete.error == "switchboard.error.view_incomplete", incomplete
        change(gw, "shop.tiny", "synced", rows=[{"pk": 7}])
        assert (await rows(page, "shop.tiny"))["rows"] == [{"pk": 7}]
        change(gw, "shop.order", "synced", rows=[{"pk": 1}])
        for kwargs in [
            {"limit": 10**9},
            {"limit": -1},
            {"desc": "yes"},
            {"order_by": "x" * 1000},
            {"after": {"nested": 1}},
            {"after": 424242},
            {"filter": {"data.total": {"$regex": "."}}},
            {"filter": nested(100)},
        ]:
            error = await refused(rows(page, **kwargs))
            assert error.error == "wamp.error.invalid_argument", (kwargs, error)
        assert (await refused(page.call(ROWS))).error == "wamp.error.invalid_argument"
        assert (await rows(page, "shop.tiny"))["total"] == 1, "still serving"


def nested(depth: int) -> dict:
    value: dict = {"pk": 1}
    for _ in range(depth):
        value = {"$not": value}
    return value
