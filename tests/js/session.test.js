'use strict';
// Session establishment and teardown with unmodified Autobahn|JS, once per serializer.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { assertWampId, connect, delay, forEachSerializer, pool, useGateway } = require('./helpers');

const gw = useGateway();
const T = { timeout: 10000 };

const BROKER_FEATURES = ['pattern_based_subscription', 'publisher_exclusion', 'publisher_identification',
  'subscriber_blackwhite_listing', 'event_history', 'event_retention'];
const DEALER_FEATURES = ['progressive_call_results', 'call_canceling', 'call_timeout', 'shared_registration'];

forEachSerializer(test, 'WELCOME: negotiated serializer, anonymous role, announced features', T, async (t, ser) => {
  const p = pool(t, gw, ser);
  const c = await p.open();
  assertWampId(c.id, 'session id');
  assert.equal(c.details.transport.protocol, ser.protocol, 'negotiated WebSocket subprotocol');
  assert.equal(c.details.authrole, 'anonymous', 'WELCOME.Details.authrole');
  const roles = c.details.roles || {};
  for (const feature of BROKER_FEATURES) {
    assert.equal(roles.broker?.features?.[feature], true, `roles.broker.features.${feature} === true`);
  }
  for (const feature of DEALER_FEATURES) {
    assert.equal(roles.dealer?.features?.[feature], true, `roles.dealer.features.${feature} === true`);
  }
  // what Autobahn|JS computed from the WELCOME: both sides support these
  assert.equal(c.session.features.subscriber.pattern_based_subscription, true);
  assert.equal(c.session.features.caller.progressive_call_results, true);
  assert.equal(c.session.features.caller.call_canceling, true);
  p.assertHealthy();
});

forEachSerializer(test, 'concurrent sessions get distinct ids', T, async (t, ser) => {
  const p = pool(t, gw, ser);
  const clients = await Promise.all(Array.from({ length: 5 }, () => p.open()));
  const ids = clients.map((c) => c.id);
  ids.forEach((id) => assertWampId(id, 'session id'));
  assert.equal(new Set(ids).size, ids.length, `distinct session ids: ${ids.join(', ')}`);
  p.assertHealthy();
});

forEachSerializer(test, 'GOODBYE from the client is answered with wamp.close.goodbye_and_out', T, async (t, ser) => {
  const c = await connect(gw, ser);
  const info = await c.close();
  assert.equal(info.details.reason, 'wamp.close.goodbye_and_out', 'reason of the router\'s GOODBYE reply');
  assert.deepEqual(c.internalErrors, []);
});

forEachSerializer(test, 'joining an unknown realm is refused with wamp.error.no_such_realm', T, async (t, ser) => {
  let err;
  try {
    const c = await connect(gw, ser, { realm: 'no.such.realm' });
    await c.close();
  } catch (e) {
    err = e;
  }
  assert.ok(err, 'joining an unknown realm must fail');
  assert.ok(err.closeInfo, `expected an ABORT, got: ${err.message}`);
  assert.equal(err.closeInfo.details.reason, 'wamp.error.no_such_realm', 'ABORT reason');
});

test('default Autobahn|JS options (JSON and MessagePack offered) join and work', T, async (t) => {
  const c = await connect(gw, { name: 'default', make: () => undefined }, { serializers: undefined });
  t.after(() => c.close());
  assert.ok(['wamp.2.json', 'wamp.2.msgpack'].includes(c.details.transport.protocol),
    `negotiated ${c.details.transport.protocol}`);
  const uri = `com.example.session.default.p${process.pid}`;
  await c.session.register(uri, (args) => args[0] * 2);
  assert.equal(await c.session.call(uri, [21]), 42);
  assert.deepEqual(c.internalErrors, []);
});

forEachSerializer(test, 'WebSocket keepalive: Autobahn|JS auto-pings are answered while idle', T, async (t, ser) => {
  const p = pool(t, gw, ser);
  // autoping every 500 ms; Autobahn|JS drops the connection if a ping goes unanswered for one interval
  const c = await p.open({ transports: [{ type: 'websocket', autoping_interval: 0.5, autoping_timeout: 0.5 }] });
  assert.equal(c.connection._transport_factories[0]._options.autoping_interval, 500, 'autoping configured');
  // idling is the behaviour under test here (not a readiness wait): 4 ping intervals without traffic
  await delay(2100);
  assert.equal(c.closeInfo, null, `connection dropped while idle: ${JSON.stringify(c.closeInfo)}`);
  const uri = `com.example.session.keepalive.${ser.name}.p${process.pid}`;
  await c.session.register(uri, () => 'alive');
  assert.equal(await c.session.call(uri), 'alive');
  p.assertHealthy();
});
