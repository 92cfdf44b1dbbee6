"""End to end: the Django project here (app `shop`, SQLite in a temp dir) publishes through
switchboard_emitter.django into a real gateway, and headless Chromium shows its pages.

* rows created through the ORM before the page loads are rendered at load, then ORM creates, updates and
  deletes show up live in the page (switchboard.js imported from the gateway, `client.live` with the rows
  and position `{% switchboard_live %}` rendered);
* a rolled-back transaction emits nothing: the gateway's last publication on the topic does not move and
  the page is unchanged once a later committed change has arrived;
* a private model (`Note`, `private=lambda note: [owner]`) reaches the page logged in as its owner (a
  ticket minted by `{% switchboard_connect %}`) and not another user's page;
* `manage.py switchboard_sync` seeds the gateway's model view; `switchboard_ticket` mints a valid ticket.

Django runs in this process (the pytest process of tests/django, apart from tests/python and
emitter/python/tests) with a threaded WSGI server; the browser is tests/django/browser.mjs (Node and
js-client's playwright-core). Without /usr/bin/chromium, node or playwright-core the browser tests are
skipped, except in CI (CI=true), where they fail."""

import io
import json
import os
import queue
import shutil
import subprocess
import sys
import threading
from decimal import Decimal
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path[:0] = [str(HERE), str(REPO / "tests" / "python"), str(REPO / "emitter" / "python")]

import support  # noqa: E402
from support import Gateway  # noqa: E402

SECRET = "django-e2e-secret-0123456789abcdef"
REALM = "shop"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
PLAYWRIGHT = REPO / "js-client" / "node_modules" / "playwright-core"
IN_CI = os.environ.get("CI") == "true"

EXTRA_CONFIG = f"""
[security]
secret = "{SECRET}"

[ingest.jsonrpc]
listen = "127.0.0.1:0"

[[realms]]
name = "{REALM}"
anonymous_role = "visitor"

[[realms.roles]]
name = "visitor"
permissions = [{{ uri = "models.shop.order", match = "exact", allow = {{ subscribe = true }} }}]

[[realms.roles]]
name = "member"
permissions = [{{ uri = "models.shop.", match = "prefix", allow = {{ subscribe = true }} }}]

[[realms.history]]
uri = "models."
match = "prefix"

[[realms.models]]
name = "shop.order"
"""


@pytest.fixture(scope="module")
def gw():
    yield from support.running(Gateway(extra_config=EXTRA_CONFIG))


@pytest.fixture(scope="module")
def site(gw, tmp_path_factory):
    """Django set up against the gateway (its config file, the JSON-RPC port through a SWITCHBOARD__
    override as a deployment would set it), migrated, and served on a free port."""
    env = {
        "DJANGO_SETTINGS_MODULE": "shopsite.settings",
        "SWITCHBOARD_DJANGO_DB": str(tmp_path_factory.mktemp("django") / "db.sqlite3"),
        "SWITCHBOARD_DJANGO_CONFIG": str(gw.config),
        "SWITCHBOARD_DJANGO_GATEWAY_URL": gw.url,
        "SWITCHBOARD__INGEST__JSONRPC__LISTEN": gw.ready["jsonrpc"],
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    import django
    from django.conf import settings

    if settings.configured and settings.SETTINGS_MODULE != "shopsite.settings":
        pytest.skip("Django is configured by another test module in this process; run tests/django alone")
    django.setup()
    from django.core.management import call_command
    from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler
    from django.core.wsgi import get_wsgi_application

    call_command("migrate", verbosity=0)

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, *args):
            pass

    server = ThreadedWSGIServer(("127.0.0.1", 0), QuietHandler, allow_reuse_address=False)
    server.set_app(get_wsgi_application())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class Browser:
    """tests/django/browser.mjs: one JSON command per line, one answer per line."""

    def __init__(self):
        self.proc = subprocess.Popen(["node", str(HERE / "browser.mjs")], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, cwd=HERE)
        self.answers = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        assert self._answer(60) == "ready"

    def _read(self):
        for line in self.proc.stdout:
            self.answers.put(json.loads(line))
        self.answers.put({"ok": False, "error": f"browser.mjs exited ({self.proc.wait()})"})

    def _answer(self, timeout):
        try:
            answer = self.answers.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"browser.mjs gave no answer within {timeout}s") from None
        if not answer["ok"]:
            raise AssertionError(answer["error"])
        return answer["value"]

    def send(self, deadline=30, **command):
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()
        return self._answer(deadline)

    def open(self, page, url):
        self.send(cmd="open", page=page, url=url)
        self.wait(page, "document.getElementById('state').textContent.startsWith('live:')", 20000)

    def eval(self, page, js):
        return self.send(cmd="eval", page=page, js=js)

    def wait(self, page, js, timeout=10000):
        self.send(cmd="wait", page=page, js=js, timeout=timeout, deadline=timeout / 1000 + 10)

    def items(self, page, list_id):
        return self.eval(page, f"[...document.querySelectorAll('#{list_id} li')].map((li) => li.textContent)")

    def until_items(self, page, list_id, expected):
        js = (f"JSON.stringify([...document.querySelectorAll('#{list_id} li')].map((li) => li.textContent)) === "
              f"{json.dumps(json.dumps(expected, separators=(',', ':')))}")
        try:
            self.wait(page, js)
        except AssertionError as error:
            raise AssertionError(f"#{list_id} of page {page}: {self.items(page, list_id)} != {expected}\n"
                                 f"{error}") from None

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _why_no_browser():
    if not os.path.exists(CHROMIUM):
        return f"{CHROMIUM} not found (apt-get install -y chromium)"
    if shutil.which("node") is None:
        return "node not found"
    if not PLAYWRIGHT.exists():
        return "js-client/node_modules/playwright-core missing (cd js-client && npm ci)"
    return None


@pytest.fixture(scope="module")
def browser():
    why = _why_no_browser()
    if why:
        if IN_CI:
            pytest.fail(f"{why}: required in CI")
        pytest.skip(f"{why}; skipped outside CI")
    b = Browser()
    try:
        yield b
    finally:
        b.close()


def orders_text(orders):
    return [f"{o.pk}:{o.status}:{o.total}" for o in orders]


def test_rows_at_load_then_orm_changes_live(site, browser):
    from django.test import Client

    from shop.models import Order

    first = Order.objects.create(status="new", total=Decimal("30"))
    second = Order.objects.create(status="new", total=Decimal("12.5"))
    expected = orders_text(Order.objects.order_by("pk"))
    assert expected == [f"{first.pk}:new:30.00", f"{second.pk}:new:12.50"]

    html = Client().get("/").content.decode()
    for text in expected:
        assert text in html, "the rows are in the HTML Django rendered"

    browser.open("anon", site + "/")
    assert browser.items("anon", "orders") == expected
    assert browser.eval("anon", "document.getElementById('state').textContent") == "live:visitor"
    assert browser.eval("anon", "window.orders.position") is not None, "rendered with a position"

    third = Order.objects.create(status="new", total=Decimal("7.25"))
    browser.until_items("anon", "orders", expected + [f"{third.pk}:new:7.25"])
    first.status = "paid"
    first.save(update_fields=["status"])
    second.delete()
    browser.until_items("anon", "orders", [f"{first.pk}:paid:30.00", f"{third.pk}:new:7.25"])
    assert browser.send(cmd="errors", page="anon") == []


def test_a_rolled_back_transaction_emits_nothing(site, browser):
    from django.db import transaction

    from shop.models import Order
    from switchboard_emitter import django as switchboard

    emitter = switchboard.get_emitter()
    before = emitter.last_publication("models.shop.order", realm=REALM)
    shown = browser.items("anon", "orders")
    sent = switchboard.stats.sent
    order = Order.objects.order_by("pk").first()
    # a plain subscriber on the topic too, next to the live list
    browser.eval("anon", "window.client.subscribe('models.shop.order', (args, kw) => "
                         "window.raw.push(`${kw.action}:${kw.data.status}`)).then(() => { window.raw = []; })")

    class Rollback(Exception):
        pass

    with pytest.raises(Rollback):
        with transaction.atomic():
            Order.objects.create(status="ghost", total=1)
            order.status = "cancelled"
            order.save()
            raise Rollback()
    assert emitter.last_publication("models.shop.order", realm=REALM) == before, "nothing was published"
    assert switchboard.stats.sent == sent

    # A committed change afterwards arrives alone: had the rolled-back ones been sent, they would be first.
    marker = Order.objects.create(status="marker", total=2)
    browser.until_items("anon", "orders", shown + [f"{marker.pk}:marker:2.00"])
    assert emitter.last_publication("models.shop.order", realm=REALM) not in (None, before)  # ids are random
    assert not any("ghost" in t or "cancelled" in t for t in browser.items("anon", "orders"))
    assert browser.eval("anon", "window.raw") == ["created:marker"]


def test_a_private_event_reaches_only_its_owner(site, browser):
    from django.contrib.auth.models import User

    from shop.models import Note, Order

    alice = User.objects.get_or_create(username="alice")[0]
    bob = User.objects.create(username="bob")
    first = Note.objects.create(owner=alice, text="for alice at load")

    browser.open("alice", site + "/login/alice/")
    browser.open("bob", site + "/login/bob/")
    assert browser.eval("alice", "document.getElementById('state').textContent") == "live:member"
    assert browser.eval("alice", "window.client.session.details.authid") == "alice"
    assert browser.eval("bob", "window.client.session.details.authid") == "bob"
    assert browser.items("alice", "notes") == [f"{first.pk}:for alice at load"]
    assert browser.items("bob", "notes") == []
    assert browser.items("alice", "orders") == orders_text(Order.objects.order_by("pk"))

    for_alice = Note.objects.create(owner=alice, text="psst alice")
    for_bob = Note.objects.create(owner=bob, text="psst bob")
    browser.until_items("alice", "notes", [f"{first.pk}:for alice at load", f"{for_alice.pk}:psst alice"])
    browser.until_items("bob", "notes", [f"{for_bob.pk}:psst bob"])  # published after alice's note
    for_alice.text = "edited"
    for_alice.save()
    order = Order.objects.create(status="after notes", total=3)
    browser.until_items("bob", "orders", orders_text(Order.objects.order_by("pk")))
    browser.until_items("alice", "notes", [f"{first.pk}:for alice at load", f"{for_alice.pk}:edited"])
    assert browser.items("bob", "notes") == [f"{for_bob.pk}:psst bob"], "bob got none of alice's notes"
    assert browser.items("anon", "notes") == []
    assert f"{order.pk}:after notes:3.00" in browser.items("anon", "orders")
    # the private events were not stored: the notes' topic has nothing in history, so its position is the
    # realm's newest stored event, the order published after them
    newest_order = emitter().last_publication("models.shop.order", realm=REALM)
    assert newest_order is not None
    assert emitter().last_publication("models.shop.note", realm=REALM) == newest_order
    for page in ("alice", "bob", "anon"):
        assert browser.send(cmd="errors", page=page) == []


def emitter():
    from switchboard_emitter import django as switchboard

    return switchboard.get_emitter()


def test_switchboard_sync_seeds_the_model_view(site, browser):
    from django.core.management import call_command

    from shop.models import Order

    rows = ("window.client.call('switchboard.model.rows', ['shop.order'], {order_by: 'pk', limit: 1000})"
            ".then((r) => r.kwargs.rows.map((row) => `${row.pk}:${row.status}:${row.total}`), (e) => e.uri)")
    assert browser.eval("anon", rows) == "switchboard.error.view_incomplete", "not seeded yet"
    out = io.StringIO()
    call_command("switchboard_sync", stdout=out)
    assert f"shop.order: synced {Order.objects.count()} row(s) on models.shop.order" in out.getvalue()
    assert browser.eval("anon", rows) == orders_text(Order.objects.order_by("pk"))
    # the open page's live list took the synced event as it is
    browser.until_items("anon", "orders", orders_text(Order.objects.order_by("pk")))


def test_tickets_from_the_command_and_the_view(site):
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.test import Client

    from switchboard_emitter import verify_ticket

    out = io.StringIO()
    call_command("switchboard_ticket", "--authid", "carol", "--ttl", "60", stdout=out)
    claims = verify_ticket(SECRET, out.getvalue().strip().splitlines()[-1], "carol")
    assert claims.roles == ["member"]

    client = Client()
    assert client.get("/switchboard/ticket").status_code == 403
    client.force_login(User.objects.get_or_create(username="alice")[0])
    answer = client.get("/switchboard/ticket").json()
    assert answer["authid"] == "alice"
    verify_ticket(SECRET, answer["ticket"], "alice")
