'use strict';
// Bad input and size limits as an Autobahn|JS user meets them, once per serializer.
// The gateway under test runs with max_message_bytes = 1048576 (see helpers.js).
const { test } = require('node:test');
const assert = require('node:assert/strict');
const {
  Inbox, MSG, RawPeer, describe, expectWampError, forEachSerializer, pool, uniqueUri, useGateway, within,
} = require('./helpers');

const gw = useGateway();
const T = { timeout: 10000 };

forEachSerializer(test, 'malformed URIs are refused with wamp.error.invalid_uri and the session stays usable', T, async (t, ser) => {
  const p = pool(t, gw, ser);
  const c = await p.open();
  const base = uniqueUri('com.example.baduri');
  await expectWampError(c.session.subscribe(`${base}..empty`, () => {}), 'wamp.error.invalid_uri', 'subscribe with empty component');
  await expectWampError(c.session.register(`${base}.has space`, () => 1), 'wamp.error.invalid_uri', 'register with a space');
  await expectWampError(c.session.call(`${base}.#hash`), 'wamp.error.invalid_uri', 'call with #');
  await expectWampError(c.session.publish(`${base}..x`, [], {}, { acknowledge: true }), 'wamp.error.invalid_uri', 'publish with empty component');

  // still fine afterwards
  const inbox = new Inbox('events');
  await c.session.subscribe(`${base}.ok`, inbox.eventHandler());
  c.session.publish(`${base}.ok`, ['fine'], {}, { exclude_me: false });
  assert.deepEqual((await inbox.next(3000, 'event after refusals')).args, ['fine']);
  p.assertHealthy();
});

forEachSerializer(test, 'a payload close to max_message_bytes is delivered intact', T, async (t, ser) => {
  const p = pool(t, gw, ser);
  const [pub, sub] = await Promise.all([p.open(), p.open()]);
  const topic = uniqueUri('com.example.big');
  const inbox = new Inbox('events');
  await sub.session.subscribe(topic, inbox.eventHandler());
  const big = 'x'.repeat(800 * 1024);
  const publication = await within(pub.session.publish(topic, [big], { n: 1 }, { acknowledge: true }), 5000, 'PUBLISHED for 800 KiB');
  assert.ok(publication.id);
  const ev = await inbox.next(5000, '800 KiB event');
  assert.equal(ev.args[0].length, big.length, 'length of the delivered string');
  assert.equal(ev.args[0], big, 'delivered string unchanged');
  p.assertHealthy();
});

forEachSerializer(test, 'an oversized message ends only that session (ABORT wamp.error.payload_size_exceeded)', T, async (t, ser) => {
  const p = pool(t, gw, ser);
  const [bystander, autobahnSender] = await Promise.all([p.open(), p.open()]);
  const huge = 'y'.repeat(1200 * 1024);

  // raw peer: the exact answer
  const raw = await RawPeer.connect(gw, ser, { publisher: {} });
  t.after(() => raw.close());
  raw.send([MSG.PUBLISH, raw.request(), { acknowledge: true }, uniqueUri('com.example.huge'), [huge]]);
  const reply = await raw.next(5000, 'answer to an oversized PUBLISH');
  assert.equal(reply[0], MSG.ABORT, `expected ABORT, got ${describe(reply).slice(0, 300)}`);
  assert.equal(reply[2], 'wamp.error.payload_size_exceeded', 'ABORT reason');
  await within(raw.closed, 3000, 'socket closed after ABORT');

  // Autobahn|JS (no ABORT handling after join) sees its connection end
  autobahnSender.expectClose = true;
  autobahnSender.session.publish(uniqueUri('com.example.huge'), [huge]);
  await within(autobahnSender.closed, 5000, 'Autobahn connection closed after oversized publish');
  autobahnSender.internalErrors.length = 0; // Autobahn|JS reports the post-join ABORT as an unexpected message

  // everyone else carries on, and new sessions still join
  const topic = uniqueUri('com.example.after');
  const inbox = new Inbox('events');
  await bystander.session.subscribe(topic, inbox.eventHandler());
  const fresh = await p.open();
  fresh.session.publish(topic, ['still here']);
  assert.deepEqual((await inbox.next(3000, 'event after the oversized message')).args, ['still here']);
  p.assertHealthy();
});
