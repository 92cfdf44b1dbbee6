'use strict';
// History, recovery and retention with unmodified Autobahn|JS, once per serializer:
// wamp.subscription.get_events answers exactly the missed events in order, for an exact and a prefix
// subscription; an evicted or unknown position is switchboard.error.history_gap (never a partial list);
// another session cannot read a subscription it does not hold; private events are not stored; a retained
// event reaches a new subscriber that asks for it with retained: true.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const {
  Inbox, expectWampError, forEachSerializer, pool, uniqueUri, useGateway,
} = require('./helpers');

const LIMIT = 5;
const gw = useGateway({
  extraConfig: `
[[realms.history]]
uri = "app."
match = "prefix"
limit = ${LIMIT}
ttl_s = 600
`,
});
const T = { timeout: 10000 };
const GET_EVENTS = 'wamp.subscription.get_events';

/** Publishes [n] with acknowledgement; resolves to the publication id. */
async function publish(session, topic, n, options = {}) {
  const published = await session.publish(topic, [n], {}, { acknowledge: true, ...options });
  return published.id;
}

const argsOf = (events) => events.map((e) => e.args[0]);

forEachSerializer(test, 'get_events answers exactly the missed events in order, exact and prefix', T, async (t, ser) => {
  const p = pool(t, gw, ser);
  const [reader, publisher] = await Promise.all([p.open(), p.open()]);
  const base = uniqueUri('app.h');
  const exact = await reader.session.subscribe(`${base}.x`, () => {});
  const prefix = await reader.session.subscribe(`${base}.`, () => {}, { match: 'prefix' });
  const ids = [];
  for (const [n, leaf] of ['x', 'y', 'x', 'y', 'x'].entries()) ids.push(await publish(publisher.session, `${base}.${leaf}`, n));

  const missedExact = await reader.session.call(GET_EVENTS, [exact.id], { after_publication: ids[0] });
  assert.deepEqual(missedExact.map((e) => e.publication), [ids[2], ids[4]]);
  assert.deepEqual(argsOf(missedExact), [2, 4]);
  assert.ok(missedExact.every((e) => e.topic === `${base}.x` && e.subscription === exact.id));

  const missedPrefix = await reader.session.call(GET_EVENTS, [prefix.id], { after_publication: ids[1] });
  assert.deepEqual(missedPrefix.map((e) => e.publication), ids.slice(2));
  assert.deepEqual(missedPrefix.map((e) => e.topic), [`${base}.x`, `${base}.y`, `${base}.x`]);
  assert.deepEqual(argsOf(await reader.session.call(GET_EVENTS, [prefix.id, 2])), [3, 4], 'positional (subscription, limit)');
  p.assertHealthy();
});

forEachSerializer(test, 'an evicted or unknown position is a history gap', T, async (t, ser) => {
  const p = pool(t, gw, ser);
  const [reader, publisher] = await Promise.all([p.open(), p.open()]);
  const topic = uniqueUri('app.gap');
  const sub = await reader.session.subscribe(topic, () => {});
  const ids = [];
  for (let n = 0; n < LIMIT + 3; n += 1) ids.push(await publish(publisher.session, topic, n));
  await expectWampError(reader.session.call(GET_EVENTS, [sub.id], { after_publication: ids[0] }),
    'switchboard.error.history_gap', 'recovery from an evicted event');
  await expectWampError(reader.session.call(GET_EVENTS, [sub.id], { after_publication: 4242 }),
    'switchboard.error.history_gap', 'recovery from an unknown publication');
  assert.deepEqual(argsOf(await reader.session.call(GET_EVENTS, [sub.id], { after_publication: ids[3] })), [4, 5, 6, 7]);
  p.assertHealthy();
});

forEachSerializer(test, 'only the subscription\'s own session reads it; private events are not stored', T, async (t, ser) => {
  const p = pool(t, gw, ser);
  const [owner, other] = await Promise.all([p.open(), p.open()]);
  const topic = uniqueUri('app.own');
  const inbox = new Inbox('events');
  const sub = await owner.session.subscribe(topic, inbox.eventHandler());
  await publish(other.session, topic, 1, { eligible: [owner.id] });
  await publish(other.session, topic, 2);
  await inbox.next(3000, 'the private event');
  await inbox.next(3000, 'the public event');
  await expectWampError(other.session.call(GET_EVENTS, [sub.id]), 'wamp.error.no_such_subscription', 'reading another session\'s subscription');
  assert.deepEqual(argsOf(await owner.session.call(GET_EVENTS, [sub.id])), [2], 'the private event is not in history');
  p.assertHealthy();
});

forEachSerializer(test, 'a retained event reaches a new subscriber that asks for it, and no other', T, async (t, ser) => {
  const p = pool(t, gw, ser);
  const publisher = await p.open();
  const topic = uniqueUri('status');
  await publish(publisher.session, topic, 1, { retain: true });
  await publish(publisher.session, topic, 2, { retain: true });
  await publish(publisher.session, topic, 3);
  const late = await p.open();
  const asked = new Inbox('retained');
  await late.session.subscribe(topic, asked.eventHandler(), { get_retained: true });
  const retained = await asked.next(3000, 'the retained event');
  assert.deepEqual(retained.args, [2]);
  assert.equal(retained.details.retained, true, 'EVENT.Details.retained');
  const plain = new Inbox('plain');
  const other = await p.open();
  await other.session.subscribe(topic, plain.eventHandler());
  await new Promise((resolve) => setTimeout(resolve, 200));
  assert.equal(plain.items.length, 0, 'no retained event without get_retained');
  p.assertHealthy();
});
