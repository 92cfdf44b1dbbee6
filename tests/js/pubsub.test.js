'use strict';
// Publish/subscribe through the gateway with unmodified Autobahn|JS, once per serializer.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const {
  SERIALIZERS, Inbox, assertWampId, connect, forEachSerializer, pool, uniqueUri, useGateway,
} = require('./helpers');

const gw = useGateway();
const T = { timeout: 10000 };

// payloads that must survive both codecs unchanged (no integral floats: JSON cannot tell 3.0 from 3)
const ARGS = [1, 'two', 3.5, true, null, -42, 2 ** 40, 'héllo ✓ 日本', { nested: { deep: [1, 2, { x: 'y' }], empty: {} } }, []];
const KWARGS = { a: 1, b: { c: [1, 2, 3], d: { e: 'f', g: null } }, flag: false, ratio: -0.25, text: '', list: [{ k: [] }] };

forEachSerializer(test, 'subscribe/publish delivers args and kwargs exactly', T, async (t, ser) => {
  const p = pool(t, gw, ser);
  const [pub, sub] = await Promise.all([p.open(), p.open()]);
  const topic = uniqueUri('com.example.pubsub.payload');
  const inbox = new Inbox('events');
  const subscription = await sub.session.subscribe(topic, inbox.eventHandler());
  assertWampId(subscription.id, 'subscription id');

  pub.session.publish(topic, ARGS, KWARGS);
  const ev = await inbox.next(3000, 'EVENT with args and kwargs');
  assert.deepEqual(ev.args, ARGS, 'EVENT.Arguments');
  assert.deepEqual(ev.kwargs, KWARGS, 'EVENT.ArgumentsKw');
  assert.equal(ev.details.topic, topic);
  assertWampId(ev.details.publication, 'EVENT publication id');
  assert.equal(ev.details.publisher, undefined, 'publisher must not be disclosed unless disclose_me');
  p.assertHealthy();
});

forEachSerializer(test, 'payload shapes: args only, kwargs only, none', T, async (t, ser) => {
  const p = pool(t, gw, ser);
  const [pub, sub] = await Promise.all([p.open(), p.open()]);
  const topic = uniqueUri('com.example.pubsub.shapes');
  const inbox = new Inbox('events');
  await sub.session.subscribe(topic, inbox.eventHandler());

  pub.session.publish(topic, ['only', 'args']);
  pub.session.publish(topic, [], { only: 'kwargs' });
  pub.session.publish(topic);
  const e1 = await inbox.next(3000, 'args-only EVENT');
  const e2 = await inbox.next(3000, 'kwargs-only EVENT');
  const e3 = await inbox.next(3000, 'empty EVENT');
  assert.deepEqual([e1.args, e1.kwargs], [['only', 'args'], {}]);
  assert.deepEqual([e2.args, e2.kwargs], [[], { only: 'kwargs' }]);
  assert.deepEqual([e3.args, e3.kwargs], [[], {}]);
  p.assertHealthy();
});

forEachSerializer(test, 'publish with acknowledge resolves with the publication id the subscriber sees', T, async (t, ser) => {
  const p = pool(t, gw, ser);
  const [pub, sub] = await Promise.all([p.open(), p.open()]);
  const topic = uniqueUri('com.example.pubsub.ack');
  const inbox = new Inbox('events');
  await sub.session.subscribe(topic, inbox.eventHandler());

  const publication = await pub.session.publish(topic, [1], { k: 'v' }, { acknowledge: true });
  assert.ok(publication, 'acknowledged publish resolves with a Publication');
  assertWampId(publication.id, 'PUBLISHED publication id');
  const ev = await inbox.next(3000, 'EVENT');
  assert.equal(ev.details.publication, publication.id, 'EVENT publication id equals PUBLISHED id');

  // acknowledged publish to a topic nobody subscribes to still succeeds
  const lonely = await pub.session.publish(uniqueUri('com.example.pubsub.nobody'), [], {}, { acknowledge: true });
  assertWampId(lonely.id, 'publication id without subscribers');
  assert.notEqual(lonely.id, publication.id, 'publication ids differ');
  p.assertHealthy();
});

forEachSerializer(test, 'exclude_me defaults to true: the publisher does not get its own event', T, async (t, ser) => {
  const p = pool(t, gw, ser);
  const [pub, other] = await Promise.all([p.open(), p.open()]);
  const topic = uniqueUri('com.example.pubsub.exclude');
  const own = new Inbox('publisher events');
  const others = new Inbox('other events');
  await pub.session.subscribe(topic, own.eventHandler());
  await other.session.subscribe(topic, others.eventHandler());

  pub.session.publish(topic, ['default']);
  // a later event from the same publisher to the same subscriber arrives after the first one
  // (WAMP ordering guarantee), so the first thing the publisher sees must be this marker
  pub.session.publish(topic, ['marker'], {}, { exclude_me: false });
  const first = await own.next(3000, 'marker event at the publisher');
  assert.deepEqual(first.args, ['marker'], 'publisher received its own exclude_me-default event');
  assert.deepEqual((await others.next(3000, 'first event at other')).args, ['default']);
  assert.deepEqual((await others.next(3000, 'second event at other')).args, ['marker']);
  p.assertHealthy();
});

forEachSerializer(test, 'exclude_me: false delivers the event to the publisher too', T, async (t, ser) => {
  const p = pool(t, gw, ser);
  const pub = await p.open();
  const topic = uniqueUri('com.example.pubsub.includeme');
  const own = new Inbox('publisher events');
  await pub.session.subscribe(topic, own.eventHandler());
  pub.session.publish(topic, ['mine'], { n: 1 }, { exclude_me: false });
  const ev = await own.next(3000, 'own event with exclude_me:false');
  assert.deepEqual([ev.args, ev.kwargs], [['mine'], { n: 1 }]);
  p.assertHealthy();
});

forEachSerializer(test, 'prefix subscription gets details.topic = concrete topic', T, async (t, ser) => {
  const p = pool(t, gw, ser);
  const [pub, sub] = await Promise.all([p.open(), p.open()]);
  const base = uniqueUri('com.example.prefix');
  const inbox = new Inbox('prefix events');
  const subscription = await sub.session.subscribe(base, inbox.eventHandler(), { match: 'prefix' });
  assertWampId(subscription.id, 'prefix subscription id');

  const topics = [`${base}.a.b`, `${base}.c`, base];
  pub.session.publish(uniqueUri('com.example.elsewhere'), ['nope']);
  for (const topic of topics) pub.session.publish(topic, [topic]);
  for (const topic of topics) {
    const ev = await inbox.next(3000, `prefix event for ${topic}`);
    assert.deepEqual(ev.args, [topic], 'events arrive in publish order, non-matching topic not delivered');
    assert.equal(ev.details.topic, topic, 'EVENT.Details.topic is the concrete topic');
  }
  p.assertHealthy();
});

forEachSerializer(test, 'wildcard subscription matches one component per empty slot', T, async (t, ser) => {
  const p = pool(t, gw, ser);
  const [pub, sub] = await Promise.all([p.open(), p.open()]);
  const base = uniqueUri('com.example.wild');
  const inbox = new Inbox('wildcard events');
  await sub.session.subscribe(`${base}..update`, inbox.eventHandler(), { match: 'wildcard' });

  const published = [`${base}.item1.update`, `${base}.item1.create`, `${base}.a.b.update`, `${base}.update`, `${base}.item2.update`];
  for (const topic of published) pub.session.publish(topic, [topic]);
  for (const topic of [`${base}.item1.update`, `${base}.item2.update`]) {
    const ev = await inbox.next(3000, `wildcard event for ${topic}`);
    assert.deepEqual(ev.args, [topic], 'only topics matching the pattern are delivered, in order');
    assert.equal(ev.details.topic, topic, 'EVENT.Details.topic is the concrete topic');
  }
  p.assertHealthy();
});

forEachSerializer(test, 'exact, prefix and wildcard subscriptions on one session each get the event', T, async (t, ser) => {
  const p = pool(t, gw, ser);
  const [pub, sub] = await Promise.all([p.open(), p.open()]);
  const base = uniqueUri('com.example.multi');
  const topic = `${base}.x.y`;
  const exact = new Inbox('exact');
  const prefix = new Inbox('prefix');
  const wildcard = new Inbox('wildcard');
  const subs = [
    await sub.session.subscribe(topic, exact.eventHandler()),
    await sub.session.subscribe(base, prefix.eventHandler(), { match: 'prefix' }),
    await sub.session.subscribe(`${base}..y`, wildcard.eventHandler(), { match: 'wildcard' }),
  ];
  assert.equal(new Set(subs.map((s) => s.id)).size, 3, 'three distinct subscription ids');
  pub.session.publish(topic, ['once']);
  for (const inbox of [exact, prefix, wildcard]) {
    const ev = await inbox.next(3000, `${inbox.name} event`);
    assert.deepEqual(ev.args, ['once']);
    assert.equal(ev.details.topic, topic);
  }
  p.assertHealthy();
});

forEachSerializer(test, 'unsubscribe stops delivery', T, async (t, ser) => {
  const p = pool(t, gw, ser);
  const [pub, sub] = await Promise.all([p.open(), p.open()]);
  const topic = uniqueUri('com.example.pubsub.unsub');
  const sentinelTopic = uniqueUri('com.example.pubsub.sentinel');
  const inbox = new Inbox('events');
  const sentinel = new Inbox('sentinel');
  const subscription = await sub.session.subscribe(topic, inbox.eventHandler());
  await sub.session.subscribe(sentinelTopic, sentinel.eventHandler());

  pub.session.publish(topic, ['before']);
  assert.deepEqual((await inbox.next(3000, 'event before unsubscribe')).args, ['before']);

  const ok = await sub.session.unsubscribe(subscription);
  assert.equal(ok, true, 'unsubscribe resolves true');
  assert.equal(subscription.active, false, 'subscription inactive');

  pub.session.publish(topic, ['after']);
  pub.session.publish(sentinelTopic, ['sentinel']);
  await sentinel.next(3000, 'sentinel event');
  assert.deepEqual(inbox.all.map((e) => e.args), [['before']], 'no event after unsubscribe');
  p.assertHealthy();
});

forEachSerializer(test, 'disclose_me shows details.publisher = publisher session id', T, async (t, ser) => {
  const p = pool(t, gw, ser);
  const [pub, sub] = await Promise.all([p.open(), p.open()]);
  const topic = uniqueUri('com.example.pubsub.disclose');
  const inbox = new Inbox('events');
  await sub.session.subscribe(topic, inbox.eventHandler());

  pub.session.publish(topic, ['hidden']);
  pub.session.publish(topic, ['shown'], {}, { disclose_me: true });
  const hidden = await inbox.next(3000, 'undisclosed event');
  const shown = await inbox.next(3000, 'disclosed event');
  assert.deepEqual(hidden.args, ['hidden']);
  assert.equal(hidden.details.publisher, undefined, 'publisher hidden without disclose_me');
  assert.deepEqual(shown.args, ['shown']);
  assert.equal(shown.details.publisher, pub.id, 'EVENT.Details.publisher');
  p.assertHealthy();
});

forEachSerializer(test, 'subscriber black- and whitelisting by session id (exclude / eligible)', T, async (t, ser) => {
  const p = pool(t, gw, ser);
  const [pub, a, b, c] = await Promise.all([p.open(), p.open(), p.open(), p.open()]);
  const topic = uniqueUri('com.example.pubsub.lists');
  const inboxes = new Map();
  for (const [name, client] of [['a', a], ['b', b], ['c', c]]) {
    const inbox = new Inbox(name);
    inboxes.set(name, inbox);
    await client.session.subscribe(topic, inbox.eventHandler());
  }

  pub.session.publish(topic, ['not b'], {}, { exclude: [b.id] });
  pub.session.publish(topic, ['only b'], {}, { eligible: [b.id] });
  pub.session.publish(topic, ['a and c'], {}, { eligible: [a.id, b.id, c.id], exclude: [b.id] });
  pub.session.publish(topic, ['all']);
  const expected = {
    a: [['not b'], ['a and c'], ['all']],
    b: [['only b'], ['all']],
    c: [['not b'], ['a and c'], ['all']],
  };
  for (const [name, want] of Object.entries(expected)) {
    const inbox = inboxes.get(name);
    const got = [];
    for (let i = 0; i < want.length; i += 1) got.push((await inbox.next(3000, `event ${i + 1} at ${name}`)).args);
    assert.deepEqual(got, want, `events delivered to ${name}`);
  }
  p.assertHealthy();
});

forEachSerializer(test, 'subscriber black- and whitelisting by authid and authrole', T, async (t, ser) => {
  const p = pool(t, gw, ser);
  const [pub, a, b] = await Promise.all([p.open(), p.open(), p.open()]);
  assert.equal(typeof a.details.authid, 'string', 'WELCOME.Details.authid');
  assert.notEqual(a.details.authid, b.details.authid, 'anonymous sessions get distinct authids');
  const topic = uniqueUri('com.example.pubsub.authlists');
  const atA = new Inbox('a');
  const atB = new Inbox('b');
  await a.session.subscribe(topic, atA.eventHandler());
  await b.session.subscribe(topic, atB.eventHandler());

  pub.session.publish(topic, ['not b'], {}, { exclude_authid: [b.details.authid] });
  pub.session.publish(topic, ['only b'], {}, { eligible_authid: [b.details.authid] });
  pub.session.publish(topic, ['nobody'], {}, { eligible_authrole: ['no-such-role'] });
  pub.session.publish(topic, ['nobody either'], {}, { exclude_authrole: ['anonymous'] });
  pub.session.publish(topic, ['anonymous role'], {}, { eligible_authrole: ['anonymous'] });
  const want = { a: [['not b'], ['anonymous role']], b: [['only b'], ['anonymous role']] };
  for (const [name, inbox] of [['a', atA], ['b', atB]]) {
    const got = [];
    for (let i = 0; i < want[name].length; i += 1) got.push((await inbox.next(3000, `event ${i + 1} at ${name}`)).args);
    assert.deepEqual(got, want[name], `events delivered to ${name}`);
  }
  p.assertHealthy();
});

test('cross-serializer: JSON and MessagePack sessions exchange events unchanged', T, async (t) => {
  const [json, mp] = SERIALIZERS;
  const pj = pool(t, gw, json);
  const pm = pool(t, gw, mp);
  const [jsonClient, mpClient] = await Promise.all([pj.open(), pm.open()]);
  const topic = uniqueUri('com.example.pubsub.cross');
  const atJson = new Inbox('json subscriber');
  const atMp = new Inbox('msgpack subscriber');
  await jsonClient.session.subscribe(topic, atJson.eventHandler());
  await mpClient.session.subscribe(topic, atMp.eventHandler());

  jsonClient.session.publish(topic, ARGS, KWARGS);
  let ev = await atMp.next(3000, 'msgpack subscriber gets json publication');
  assert.deepEqual([ev.args, ev.kwargs], [ARGS, KWARGS], 'json -> msgpack');
  mpClient.session.publish(topic, ARGS, KWARGS);
  ev = await atJson.next(3000, 'json subscriber gets msgpack publication');
  assert.deepEqual([ev.args, ev.kwargs], [ARGS, KWARGS], 'msgpack -> json');
  pj.assertHealthy();
  pm.assertHealthy();
});

test('a session can connect again after closing (fresh session id)', T, async () => {
  const ser = SERIALIZERS[0];
  const first = await connect(gw, ser);
  const firstId = first.id;
  await first.close();
  const second = await connect(gw, ser);
  try {
    assert.notEqual(second.id, firstId, 'new session id');
  } finally {
    await second.close();
  }
});

test('binary: MessagePack bin survives msgpack -> msgpack and maps to "\\0"+base64 for JSON sessions', T, async (t) => {
  const [json, mp] = SERIALIZERS;
  const pj = pool(t, gw, json);
  const pm = pool(t, gw, mp);
  const [mpPub, mpSub, jsonClient] = await Promise.all([pm.open(), pm.open(), pj.open()]);
  const topic = uniqueUri('com.example.pubsub.binary');
  const atMp = new Inbox('msgpack subscriber');
  const atJson = new Inbox('json subscriber');
  await mpSub.session.subscribe(topic, atMp.eventHandler());
  await jsonClient.session.subscribe(topic, atJson.eventHandler());

  const bytes = Buffer.from([0, 1, 2, 255]);
  mpPub.session.publish(topic, [bytes], { bin: Buffer.from('hi') });
  let ev = await atMp.next(3000, 'binary event at msgpack subscriber');
  assert.ok(Buffer.isBuffer(ev.args[0]), `msgpack subscriber gets a Buffer, got ${JSON.stringify(ev.args[0])}`);
  assert.deepEqual([...ev.args[0]], [...bytes]);
  assert.deepEqual([...ev.kwargs.bin], [...Buffer.from('hi')]);
  ev = await atJson.next(3000, 'binary event at json subscriber');
  assert.deepEqual(ev.args, [`\u0000${bytes.toString('base64')}`], 'WAMP JSON binary convention');
  assert.deepEqual(ev.kwargs, { bin: `\u0000${Buffer.from('hi').toString('base64')}` });

  // and the other way: a JSON "\0"+base64 string reaches msgpack sessions as bin
  jsonClient.session.publish(topic, [`\u0000${bytes.toString('base64')}`]);
  ev = await atMp.next(3000, 'converted event at msgpack subscriber');
  assert.ok(Buffer.isBuffer(ev.args[0]), `msgpack subscriber gets a Buffer, got ${JSON.stringify(ev.args[0])}`);
  assert.deepEqual([...ev.args[0]], [...bytes]);
  pj.assertHealthy();
  pm.assertHealthy();
});

forEachSerializer(test, 'fan-out: one publication reaches 20 subscriber sessions exactly once', T, async (t, ser) => {
  const p = pool(t, gw, ser);
  const pub = await p.open();
  const subs = await Promise.all(Array.from({ length: 20 }, () => p.open()));
  const topic = uniqueUri('com.example.pubsub.fanout');
  const inboxes = [];
  for (const s of subs) {
    const inbox = new Inbox(`subscriber ${s.id}`);
    inboxes.push(inbox);
    await s.session.subscribe(topic, inbox.eventHandler());
  }
  pub.session.publish(topic, ['first']);
  pub.session.publish(topic, ['second']);
  for (const inbox of inboxes) {
    assert.deepEqual((await inbox.next(3000, `first event at ${inbox.name}`)).args, ['first']);
    assert.deepEqual((await inbox.next(3000, `second event at ${inbox.name}`)).args, ['second']);
  }
  for (const inbox of inboxes) assert.equal(inbox.all.length, 2, `${inbox.name} got each event once`);
  p.assertHealthy();
});

forEachSerializer(test, 'a burst of 300 events from one publisher arrives complete and in order', T, async (t, ser) => {
  const p = pool(t, gw, ser);
  const [pub, sub] = await Promise.all([p.open(), p.open()]);
  const topic = uniqueUri('com.example.pubsub.burst');
  const inbox = new Inbox('events');
  await sub.session.subscribe(topic, inbox.eventHandler());
  const n = 300;
  for (let i = 0; i < n; i += 1) pub.session.publish(topic, [i], { pad: 'x'.repeat(200) });
  for (let i = 0; i < n; i += 1) {
    const ev = await inbox.next(5000, `event ${i} of ${n}`);
    assert.equal(ev.args[0], i, 'events arrive in publish order without gaps');
  }
  p.assertHealthy();
});
