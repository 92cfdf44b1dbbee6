"""Publish & subscribe with an unmodified Autobahn|Python client (json and msgpack)."""

from autobahn.wamp import message
from autobahn.wamp.types import PublishOptions, SubscribeOptions

from support import SUBPROTOCOLS, Clients, Inbox, uid, wamp_test

DETAILS = SubscribeOptions(details_arg="details")


def collector(inbox: Inbox):
    """A subscription handler that records (args, kwargs, details)."""

    def on_event(*args, details=None, **kwargs):
        inbox.put((list(args), kwargs, details))

    return on_event


async def subscribe(session, topic, inbox, match=None):
    opts = SubscribeOptions(details_arg="details", match=match) if match else DETAILS
    return await session.subscribe(collector(inbox), topic, options=opts)


def topics_of(items):
    return [d.topic for (_a, _k, d) in items]


ACK = PublishOptions(acknowledge=True)

ARGS = [1, -2, "zwei ü ∑", 3.5, True, False, None, [1, [2, 3]], {"a": {"b": [1]}}, 2**53]
KWARGS = {"name": "Grüße", "n": -7, "f": 0.25, "list": [1, "x", None], "obj": {"k": "v"}, "empty": {}}


@wamp_test()
async def test_welcome_announces_roles_and_negotiates_serializer(url, serializer):
    async with Clients(url, serializer) as c:
        s = await c.connect()
        assert s.protocol.websocket_protocol_in_use == SUBPROTOCOLS[serializer]
        assert isinstance(s.session_id, int) and 1 <= s.session_id <= 2**53
        roles = s.router_roles
        assert set(roles) == {"broker", "dealer"}, roles
        broker, dealer = roles["broker"], roles["dealer"]
        for feature in (
            "pattern_based_subscription",
            "publisher_exclusion",
            "publisher_identification",
            "subscriber_blackwhite_listing",
            "event_history",
            "event_retention",
        ):
            assert getattr(broker, feature) is True, f"broker feature {feature} not announced"
        for feature in ("progressive_call_results", "call_canceling", "call_timeout", "shared_registration"):
            assert getattr(dealer, feature) is True, f"dealer feature {feature} not announced"


@wamp_test()
async def test_publish_args_kwargs_delivered_exactly(url, serializer):
    topic = f"com.test.pubsub.{uid()}"
    async with Clients(url, serializer) as c:
        sub, pub = await c.connect(), await c.connect()
        inbox = Inbox()
        await subscribe(sub, topic, inbox)
        pub.publish(topic, *ARGS, **KWARGS)
        pub.publish(topic)  # no payload at all
        pub.publish(topic, "only-args")
        pub.publish(topic, only="kwargs")
        items = await inbox.count(4, "4 events")
        assert [(a, k) for (a, k, _d) in items] == [
            (ARGS, KWARGS),
            ([], {}),
            (["only-args"], {}),
            ([], {"only": "kwargs"}),
        ]
        assert all(d.publisher is None for (_a, _k, d) in items), "publisher disclosed without disclose_me"


@wamp_test()
async def test_events_cross_serializers(url, serializer):
    """A json publisher reaches a msgpack subscriber and vice versa, values intact."""
    other = "msgpack" if serializer == "json" else "json"
    topic = f"com.test.cross.{uid()}"
    async with Clients(url, serializer) as c:
        sub = await c.connect(serializer)
        pub = await c.connect(other)
        inbox = Inbox()
        await subscribe(sub, topic, inbox)
        await pub.publish(topic, *ARGS, options=ACK, **KWARGS)
        items = await inbox.count(1)
        assert (items[0][0], items[0][1]) == (ARGS, KWARGS)


@wamp_test()
async def test_binary_payload_cross_serializers(url, serializer):
    """WAMP binary: bytes survive json<->msgpack (json carries them as "\\0" + base64)."""
    other = "msgpack" if serializer == "json" else "json"
    topic = f"com.test.binary.{uid()}"
    blob = bytes(range(256))
    async with Clients(url, serializer) as c:
        sub_same, sub_other = await c.connect(serializer), await c.connect(other)
        pub = await c.connect(serializer)
        inbox_same, inbox_other = Inbox(), Inbox()
        await subscribe(sub_same, topic, inbox_same)
        await subscribe(sub_other, topic, inbox_other)
        await pub.publish(topic, blob, options=ACK, data=b"\x00\x01")
        for inbox in (inbox_same, inbox_other):
            args, kwargs, _d = (await inbox.count(1))[0]
            assert args == [blob] and kwargs == {"data": b"\x00\x01"}


@wamp_test()
async def test_publish_acknowledge_returns_publication_id(url, serializer):
    topic = f"com.test.ack.{uid()}"
    async with Clients(url, serializer) as c:
        sub, pub = await c.connect(), await c.connect()
        inbox = Inbox()
        await subscribe(sub, topic, inbox)
        p1 = await pub.publish(topic, 1, options=ACK)
        p2 = await pub.publish(topic, 2, options=ACK)
        for p in (p1, p2):
            assert type(p.id) is int and 1 <= p.id <= 2**53, p
        assert p1.id != p2.id
        items = await inbox.count(2)
        assert [d.publication for (_a, _k, d) in items] == [p1.id, p2.id]
        # without acknowledge publish() returns nothing to wait for
        assert pub.publish(topic, 3) is None


@wamp_test()
async def test_publisher_excluded_by_default(url, serializer):
    topic = f"com.test.exclude_me.{uid()}"
    async with Clients(url, serializer) as c:
        pub, other = await c.connect(), await c.connect()
        mine, theirs = Inbox(), Inbox()
        await subscribe(pub, topic, mine)
        await subscribe(other, topic, theirs)
        await pub.publish(topic, "default", options=ACK)
        await pub.publish(topic, "exclude_me=True", options=PublishOptions(acknowledge=True, exclude_me=True))
        await pub.publish(topic, "exclude_me=False", options=PublishOptions(acknowledge=True, exclude_me=False))
        await theirs.count(3)
        # events from one publisher to one subscriber keep their order, so once the
        # third event arrived, the first two would have arrived before it.
        await mine.count(1, "the publisher's own event with exclude_me=False")
        assert [a for (a, _k, _d) in mine.items] == [["exclude_me=False"]]
        assert [a for (a, _k, _d) in theirs.items] == [["default"], ["exclude_me=True"], ["exclude_me=False"]]


@wamp_test()
async def test_prefix_subscription(url, serializer):
    base = f"com.test.prefix.{uid()}"
    async with Clients(url, serializer) as c:
        sub, pub = await c.connect(), await c.connect()
        inbox = Inbox()
        s = await subscribe(sub, base, inbox, match="prefix")
        pub.publish(f"{base}.a", 1)
        pub.publish(f"com.test.elsewhere.{uid()}", 2)  # does not match
        pub.publish(f"{base}.b.c", 3)
        pub.publish(base, 4)  # the prefix itself matches too
        items = await inbox.count(3)
        assert topics_of(items) == [f"{base}.a", f"{base}.b.c", base]
        assert [a for (a, _k, _d) in items] == [[1], [3], [4]]
        assert all(d.subscription.id == s.id for (_a, _k, d) in items)


@wamp_test()
async def test_wildcard_subscription(url, serializer):
    base = f"com.test.wildcard.{uid()}"
    async with Clients(url, serializer) as c:
        sub, pub = await c.connect(), await c.connect()
        inbox = Inbox()
        await subscribe(sub, f"{base}..status", inbox, match="wildcard")
        pub.publish(f"{base}.dev1.status", "dev1")
        pub.publish(f"{base}.dev2.temperature", "no: last component differs")
        pub.publish(f"{base}.dev2.x.status", "no: one component too many")
        pub.publish(f"{base}.status", "no: one component too few")
        pub.publish(f"{base}.dev3.status", "dev3")
        items = await inbox.count(2)
        assert topics_of(items) == [f"{base}.dev1.status", f"{base}.dev3.status"]
        assert [a for (a, _k, _d) in items] == [["dev1"], ["dev3"]]


@wamp_test()
async def test_exact_subscription_ignores_other_topics(url, serializer):
    base = f"com.test.exact.{uid()}"
    async with Clients(url, serializer) as c:
        sub, pub = await c.connect(), await c.connect()
        inbox = Inbox()
        await subscribe(sub, f"{base}.a", inbox)
        pub.publish(f"{base}.a.child", "no: longer")
        pub.publish(base, "no: shorter")
        pub.publish(f"{base}.ab", "no: other")
        pub.publish(f"{base}.a", "yes")
        items = await inbox.count(1)
        assert [a for (a, _k, _d) in items] == [["yes"]]


@wamp_test()
async def test_pattern_and_exact_subscriptions_each_get_one_event(url, serializer):
    base = f"com.test.overlap.{uid()}"
    async with Clients(url, serializer) as c:
        sub, pub = await c.connect(), await c.connect()
        exact, prefix, wildcard = Inbox(), Inbox(), Inbox()
        await subscribe(sub, f"{base}.x", exact)
        await subscribe(sub, base, prefix, match="prefix")
        await subscribe(sub, f"{base}.", wildcard, match="wildcard")
        await pub.publish(f"{base}.x", "one", options=ACK)
        await pub.publish(f"{base}.y", "two", options=ACK)
        await prefix.count(2)
        await wildcard.count(2)
        await exact.count(1)
        assert [a for (a, _k, _d) in exact.items] == [["one"]]
        assert topics_of(prefix.items) == [f"{base}.x", f"{base}.y"]
        assert topics_of(wildcard.items) == [f"{base}.x", f"{base}.y"]


@wamp_test()
async def test_unsubscribe_stops_delivery(url, serializer):
    topic = f"com.test.unsub.{uid()}"
    marker = f"{topic}.marker"
    async with Clients(url, serializer) as c:
        sub, pub = await c.connect(), await c.connect()
        inbox, markers = Inbox(), Inbox()
        subscription = await subscribe(sub, topic, inbox)
        await subscribe(sub, marker, markers)
        await pub.publish(topic, "before", options=ACK)
        await inbox.count(1)
        await subscription.unsubscribe()
        assert not subscription.active
        await pub.publish(topic, "after", options=ACK)
        await pub.publish(marker, "marker", options=ACK)
        # same publisher -> same subscriber keeps order: "after" would precede the marker
        await markers.count(1)
        assert [a for (a, _k, _d) in inbox.items] == [["before"]]


class PublishDisclosed(message.Publish):
    """PUBLISH with Options.disclose_me = true.

    Autobahn|Python 26 no longer has PublishOptions(disclose_me=...), but the option is
    still WAMP (publisher_identification), so the test adds it to Autobahn's own message.
    """

    def marshal_options(self):
        options = super().marshal_options()
        options["disclose_me"] = True
        return options


@wamp_test()
async def test_disclose_me_shows_publisher(url, serializer):
    topic = f"com.test.disclose.{uid()}"
    async with Clients(url, serializer) as c:
        sub, pub = await c.connect(), await c.connect()
        inbox = Inbox()
        await subscribe(sub, topic, inbox)
        pub.publish(topic, "anonymous")
        pub.send(PublishDisclosed(pub._request_id_gen.next(), topic, args=["disclosed"]))
        items = await inbox.count(2)
        assert [a for (a, _k, _d) in items] == [["anonymous"], ["disclosed"]]
        assert items[0][2].publisher is None, "publisher disclosed without disclose_me"
        assert items[1][2].publisher == pub.session_id


@wamp_test()
async def test_subscriber_black_and_white_listing(url, serializer):
    topic = f"com.test.bwlist.{uid()}"
    async with Clients(url, serializer) as c:
        pub = await c.connect()
        a, b, d = await c.connect(), await c.connect(), await c.connect()
        inboxes = {"a": Inbox(), "b": Inbox(), "d": Inbox()}
        for name, s in zip("abd", (a, b, d)):
            await subscribe(s, topic, inboxes[name])

        def opts(**kw):
            return PublishOptions(acknowledge=True, **kw)

        await pub.publish(topic, "exclude b", options=opts(exclude=[b.session_id]))
        await pub.publish(topic, "eligible a", options=opts(eligible=[a.session_id]))
        await pub.publish(
            topic, "eligible a,b exclude b", options=opts(eligible=[a.session_id, b.session_id], exclude=[b.session_id])
        )
        await pub.publish(topic, "eligible_authrole anonymous", options=opts(eligible_authrole=["anonymous"]))
        await pub.publish(topic, "eligible_authrole nobody", options=opts(eligible_authrole=["nobody"]))
        await pub.publish(topic, "end", options=ACK)
        for inbox in inboxes.values():
            await inbox.until(lambda xs: xs and xs[-1][0] == ["end"], "the final event")
        got = {name: [a[0] for (a, _k, _d) in inbox.items] for name, inbox in inboxes.items()}
        assert got == {
            "a": ["exclude b", "eligible a", "eligible a,b exclude b", "eligible_authrole anonymous", "end"],
            "b": ["eligible_authrole anonymous", "end"],
            "d": ["exclude b", "eligible_authrole anonymous", "end"],
        }


@wamp_test()
async def test_exclude_and_eligible_authid(url, serializer):
    topic = f"com.test.authid.{uid()}"
    async with Clients(url, serializer) as c:
        pub, a = await c.connect(), await c.connect()
        authid = a.authid
        assert authid, "anonymous session got no authid in WELCOME"
        inbox = Inbox()
        await subscribe(a, topic, inbox)
        pub.publish(topic, "excluded", options=PublishOptions(exclude_authid=[authid]))
        pub.publish(topic, "not eligible", options=PublishOptions(eligible_authid=[f"x{authid}"]))
        pub.publish(topic, "eligible", options=PublishOptions(eligible_authid=[authid]))
        items = await inbox.count(1)
        assert [x[0] for (x, _k, _d) in items] == ["eligible"]
