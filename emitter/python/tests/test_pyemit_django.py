"""switchboard_emitter.django without a gateway: registration and field choice, serialization, events sent
only after the transaction commits (never for a rollback or a rolled-back savepoint), update_fields,
private events, failures logged and counted instead of breaking a save, last_publication read before the
queryset, the template tags, the ticket view, the management commands and the settings.

Django is configured here (in-memory SQLite, the test app `djapp`) unless the process configured it
already, in which case the module is skipped (run tests/django in its own pytest process)."""

import io
import json
import logging
import sys
import uuid
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest

django = pytest.importorskip("django")

sys.path.insert(0, str(Path(__file__).resolve().parent))

from django.conf import settings  # noqa: E402

SECRET = "django-unit-test-secret"

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="unit-tests",
        USE_TZ=True,
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "django.contrib.sessions",
                        "switchboard_emitter.django", "djapp"],
        TEMPLATES=[{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}],
        DEFAULT_AUTO_FIELD="django.db.models.AutoField",
        SWITCHBOARD={},  # set per test by the `fake` fixture
    )
    django.setup()
elif "djapp" not in [a.split(".")[0] for a in settings.INSTALLED_APPS]:
    pytest.skip("Django is configured by another test module in this process; run emitter/python/tests "
                "apart from tests/django", allow_module_level=True)

from django.contrib.auth.models import AnonymousUser, User  # noqa: E402
from django.core.exceptions import ImproperlyConfigured  # noqa: E402
from django.core.management import CommandError, call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.template import Context, Template  # noqa: E402
from django.test import RequestFactory, override_settings  # noqa: E402

from djapp.models import CheapItem, Item, Plain, Secret  # noqa: E402
from switchboard_emitter import Emitter, Receipt, Unreachable, verify_ticket  # noqa: E402
from switchboard_emitter import django as switchboard  # noqa: E402
from switchboard_emitter.django import conf, views  # noqa: E402


class Recorder:
    """Stands in for the JSON-RPC transport: records sent events and calls in one ordered log."""

    name = "fake"

    def __init__(self, log):
        self.log = log
        self.events = []
        self.fail = None
        self.last = 7

    def send(self, events):
        if self.fail:
            return [self.fail for _ in events]
        self.events.extend(events)
        self.log.append(("send", len(events)))
        return [Receipt(100 + len(self.events)) for _ in events]

    def call(self, method, params):
        self.log.append((method, params))
        return {"publication": self.last}

    def close(self):
        pass

    def kwargs(self):
        return [e.kwargs for e in self.events]


@pytest.fixture(scope="module", autouse=True)
def database():
    call_command("migrate", run_syncdb=True, verbosity=0)
    switchboard.register(Item, exclude=["internal", "uid"])
    switchboard.register(Secret, fields=["text"], private=lambda s: [s.owner.username])
    yield
    switchboard.unregister(Item)
    switchboard.unregister(Secret)


@pytest.fixture
def fake():
    log = []
    emitter = Emitter(SECRET, "jsonrpc", jsonrpc_url="http://127.0.0.1:9")
    recorder = Recorder(log)
    emitter.transport = emitter._calls = recorder
    with override_settings(SWITCHBOARD={"EMITTER": emitter, "REALM": "shop",
                                        "GATEWAY_URL": "ws://gw.example:8080/ws"}):
        yield recorder
    Item.objects.all().delete()
    Secret.objects.all().delete()
    User.objects.all().delete()


def test_created_is_sent_after_commit_with_json_data(fake):
    owner = User.objects.create(username="alice")
    when = datetime(2026, 5, 1, 12, 30, tzinfo=timezone.utc)
    with transaction.atomic():
        item = Item.objects.create(name="pen", price=Decimal("3.50"), when=when, day=date(2026, 5, 2),
                                   owner=owner, internal="x")
        assert fake.events == [], "nothing is sent before the commit"
    (event,) = fake.events
    assert event.topic == "models.djapp.item"
    assert event.realm == "shop"
    assert event.eligible_authid is None
    assert event.kwargs == {
        "action": "created", "model": "djapp.item", "pk": item.pk,
        "data": {"name": "pen", "price": "3.50", "when": "2026-05-01T12:30:00+00:00", "day": "2026-05-02",
                 "owner": owner.pk},
        "changed": ["name", "price", "when", "day", "owner"],
    }
    json.dumps(event.kwargs)


def test_autocommit_sends_at_once(fake):
    Item.objects.create(name="a")
    assert [k["action"] for k in fake.kwargs()] == ["created"]


def test_a_rolled_back_transaction_sends_nothing(fake):
    item = Item.objects.create(name="kept")
    fake.events.clear()
    with pytest.raises(RuntimeError):
        with transaction.atomic():
            Item.objects.create(name="gone")
            item.name = "renamed"
            item.save()
            item.delete()
            raise RuntimeError("roll back")
    assert fake.events == []
    assert list(Item.objects.values_list("name", flat=True)) == ["kept"]


def test_a_rolled_back_savepoint_sends_only_what_committed(fake):
    with transaction.atomic():
        Item.objects.create(name="outer")
        try:
            with transaction.atomic():
                Item.objects.create(name="inner")
                raise RuntimeError("roll back the savepoint")
        except RuntimeError:
            pass
    assert [k["data"]["name"] for k in fake.kwargs()] == ["outer"]


def test_updated_changed_follows_update_fields(fake):
    item = Item.objects.create(name="pen", price=1)
    fake.events.clear()
    item.price = Decimal("2")
    item.save(update_fields=["price"])
    item.save()
    item.internal = "not published"
    item.save(update_fields=["internal"])  # nothing published changed: no event
    updated = fake.kwargs()
    assert [k["action"] for k in updated] == ["updated", "updated"]
    assert updated[0]["changed"] == ["price"]
    assert updated[0]["data"]["price"] == "2.00"  # as the database reads it back
    assert updated[1]["changed"] == ["name", "price", "when", "day", "owner"]


def test_deleted(fake):
    item = Item.objects.create(name="pen")
    pk = item.pk
    item.delete()
    assert fake.kwargs()[-1] == {"action": "deleted", "model": "djapp.item", "pk": pk, "data": {}, "changed": []}


def test_cascaded_deletes_are_sent(fake):
    owner = User.objects.create(username="carol")
    Item.objects.create(name="x", owner=owner)
    Secret.objects.create(owner=owner, text="s")
    fake.events.clear()
    owner.delete()
    assert sorted(k["model"] for k in fake.kwargs() if k["action"] == "deleted") == ["djapp.item", "djapp.secret"]


def test_private_events_carry_eligible_authid(fake):
    bob = User.objects.create(username="bob")
    Secret.objects.create(owner=bob, text="psst")
    (event,) = fake.events
    assert event.eligible_authid == ["bob"]
    assert event.topic == "models.djapp.secret"
    assert event.kwargs["data"] == {"text": "psst"}


def test_custom_topic_and_decorator(fake):
    switchboard.register(Plain, topic="app.plain.changes")
    try:
        Plain.objects.create(label="p")
        assert fake.events[-1].topic == "app.plain.changes"
        assert fake.events[-1].kwargs["model"] == "djapp.plain"
        assert switchboard.live(Plain)["prefix"] is None  # not a models.<model> topic
    finally:
        switchboard.unregister(Plain)


def test_a_proxy_publishes_as_its_concrete_model(fake):
    item = CheapItem.objects.create(name="proxy")
    CheapItem.objects.get(pk=item.pk).delete()
    assert [(e.topic, e.kwargs["action"], e.kwargs["pk"]) for e in fake.events] == [
        ("models.djapp.item", "created", item.pk), ("models.djapp.item", "deleted", item.pk)]
    assert switchboard.registration(CheapItem).name == "djapp.item"


def test_unregistered_models_send_nothing(fake):
    Plain.objects.create(label="quiet")
    assert fake.events == []


def test_registration_errors():
    with pytest.raises(ImproperlyConfigured, match="concrete model"):
        switchboard.register(CheapItem)
    with pytest.raises(ImproperlyConfigured, match="topic"):
        switchboard.register(Plain, topic="bad..topic")
    with pytest.raises(ImproperlyConfigured, match="not both"):
        switchboard.register(Plain, fields=["label"], exclude=["id"])
    with pytest.raises(ImproperlyConfigured, match="'nope'.*fields: id, label"):
        switchboard.register(Plain, fields=["nope"])
    with pytest.raises(ImproperlyConfigured, match="list of field names"):
        switchboard.register(Plain, exclude="label")
    with pytest.raises(ImproperlyConfigured, match="already registered"):
        switchboard.register(Item)
    with pytest.raises(LookupError):
        switchboard.registration(Plain)


def test_a_failing_gateway_never_breaks_a_save(fake, caplog):
    fake.fail = Unreachable("http://127.0.0.1:9", "connection refused")
    before = switchboard.stats.failed
    with caplog.at_level(logging.ERROR, logger="switchboard_emitter.django"):
        item = Item.objects.create(name="saved anyway")
    assert Item.objects.filter(pk=item.pk).exists()
    assert switchboard.stats.failed == before + 1
    assert "model event on models.djapp.item not sent" in caplog.text


def test_a_failing_private_callable_never_breaks_a_save(fake, caplog):
    switchboard.unregister(Secret)
    switchboard.register(Secret, fields=["text"], private=lambda s: 1 / 0)
    try:
        before = switchboard.stats.failed
        with caplog.at_level(logging.ERROR, logger="switchboard_emitter.django"):
            Secret.objects.create(owner=User.objects.create(username="dan"), text="t")
        assert switchboard.stats.failed == before + 1
        assert fake.events == []
        assert "ZeroDivisionError" in caplog.text
    finally:
        switchboard.unregister(Secret)
        switchboard.register(Secret, fields=["text"], private=lambda s: [s.owner.username])


def test_live_reads_the_position_before_the_rows(fake):
    Item.objects.create(name="one", price=Decimal("1.25"))
    fake.log.clear()
    with connection.execute_wrapper(lambda execute, sql, *a: fake.log.append(("query", sql)) or execute(sql, *a)):
        live = switchboard.live(Item.objects.order_by("pk"))
    assert fake.log[0] == ("last_publication", {"topic": "models.djapp.item", "realm": "shop"})
    assert fake.log[1][0] == "query"
    assert live["after"] == 7 and live["model"] == "djapp.item" and live["prefix"] == "models."
    assert [(r["name"], r["price"]) for r in live["rows"]] == [("one", "1.25")]
    assert list(live["rows"][0])[0] == "pk"


def test_live_renders_even_when_the_gateway_is_down(fake):
    def down(method, params):
        raise Unreachable("x", "refused")
    fake.call = down
    live = switchboard.live(Item)
    assert live["after"] is None and live["rows"] == []


def test_template_tags(fake):
    Item.objects.create(name="<script>")
    alice = User.objects.create(username="alice")
    request = RequestFactory().get("/")
    template = Template('{% load switchboard %}{% switchboard_connect %}'
                        '{% switchboard_live items as live %}{{ live|json_script:"items" }}')

    request.user = AnonymousUser()
    html = template.render(Context({"request": request, "items": Item.objects.all()}))
    config = json.loads(html.split('id="switchboard-config" type="application/json">')[1].split("</script>")[0])
    assert config == {"url": "ws://gw.example:8080/ws", "realm": "shop",
                      "script": "http://gw.example:8080/switchboard.js"}
    assert "<script>" not in html.split("</script>", 1)[1].replace('<script id="items"', "")
    items = json.loads(html.split('id="items" type="application/json">')[1].split("</script>")[0])
    assert items["rows"][0]["name"] == "<script>" and items["after"] == 7

    request.user = alice
    html = template.render(Context({"request": request, "items": Item.objects.all()}))
    config = json.loads(html.split('type="application/json">')[1].split("</script>")[0])
    assert config["authid"] == "alice"
    claims = verify_ticket(SECRET, config["ticket"], "alice")
    assert claims.roles == ["member"]


def test_ticket_view(fake):
    request = RequestFactory().get("/switchboard/ticket")
    request.user = AnonymousUser()
    assert views.ticket(request).status_code == 403
    request.user = User.objects.create(username="erin")
    answer = json.loads(views.ticket(request).content)
    assert answer["authid"] == "erin"
    verify_ticket(SECRET, answer["ticket"], "erin")


def test_switchboard_ticket_command(fake):
    out = io.StringIO()
    call_command("switchboard_ticket", "--authid", "frank", "--role", "admin", "--role", "member", "--ttl", "60",
                 stdout=out)
    claims = verify_ticket(SECRET, out.getvalue().strip().splitlines()[-1], "frank")
    assert claims.roles == ["admin", "member"]


def test_sync_and_switchboard_sync_command(fake):
    a = Item.objects.create(name="a")
    b = Item.objects.create(name="b")
    fake.events.clear()
    out = io.StringIO()
    call_command("switchboard_sync", stdout=out)  # every registered model that is not private
    (event,) = fake.events
    assert event.kwargs["action"] == "synced" and event.realm == "shop"
    assert [(r["pk"], r["name"]) for r in event.kwargs["rows"]] == [(a.pk, "a"), (b.pk, "b")]
    assert "djapp.item: synced 2 row(s)" in out.getvalue()
    with pytest.raises(CommandError, match="not registered"):
        call_command("switchboard_sync", "djapp.nope", stdout=io.StringIO())
    with pytest.raises(CommandError, match="djapp.secret"):
        call_command("switchboard_sync", "djapp.secret", stdout=io.StringIO(), stderr=io.StringIO())
    with pytest.raises(ImproperlyConfigured, match="private"):
        switchboard.sync(Secret)


def test_settings(tmp_path):
    config = tmp_path / "switchboard.toml"
    config.write_text(f'[gateway]\nlisten = "0.0.0.0:9000"\n[security]\nsecret = "{SECRET}"\n'
                      '[ingest.jsonrpc]\nlisten = "127.0.0.1:9001"\n')
    with override_settings(SWITCHBOARD={"CONFIG": str(config)}):
        opts = conf.options()
        assert (opts.gateway_url, opts.script_url, opts.realm) == (
            "ws://127.0.0.1:9000/ws", "http://127.0.0.1:9000/switchboard.js", "realm1")
        emitter = conf.get_emitter()
        assert emitter is conf.get_emitter(), "one emitter per process"
    with override_settings(SWITCHBOARD={"CONFIG": str(config), "GATEWAY_URL": "wss://live.example/ws"}):
        assert conf.options().script_url == "https://live.example/switchboard.js"
        assert conf.get_emitter() is not emitter, "a changed setting makes a new emitter"
    with override_settings(SWITCHBOARD={"CONFIG": str(config), "TICKETTTL": 5}):
        with pytest.raises(ImproperlyConfigured, match="TICKETTTL"):
            conf.options()
    with override_settings(SWITCHBOARD={"REALM": "x"}):
        with pytest.raises(ImproperlyConfigured, match="CONFIG"):
            conf.options()
    with override_settings(SWITCHBOARD={"CONFIG": str(config), "GATEWAY_URL": "http://x/ws"}):
        with pytest.raises(ImproperlyConfigured, match="ws://"):
            conf.options()


def test_jsonable():
    value = {"u": uuid.UUID(int=1), "b": b"\x00\x01", "l": (Decimal("1.0"), date(2020, 1, 2))}
    assert switchboard.jsonable(value) == {"u": "00000000-0000-0000-0000-000000000001", "b": "AAE=",
                                           "l": ["1.0", "2020-01-02"]}
