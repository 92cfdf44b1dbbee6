'use strict';
// Unmodified Autobahn|JS over its HTTP long-poll transport (`/lp`), beside an Autobahn|JS client over
// WebSocket: pub/sub and RPC both ways. Node has no XMLHttpRequest, which Autobahn|JS's long-poll
// transport runs on in a browser: ./xhr.js provides a minimal one (Autobahn|JS itself is untouched).
const { test } = require('node:test');
const assert = require('node:assert/strict');
require('./xhr').install();
const {
  SERIALIZERS, Inbox, assertWampId, connect, uniqueUri, useGateway,
} = require('./helpers');

const gw = useGateway();
const T = { timeout: 20000 };
const JSON_SER = SERIALIZERS.find((s) => s.name === 'json');

function connectLongPoll() {
  return connect(gw, JSON_SER, { transports: [{ type: 'longpoll', url: `${gw.base}/lp` }] });
}

/** Opens one long-poll client and one WebSocket client; closes both (cleanly) when the test ends. */
async function pair(t) {
  const [lp, ws] = await Promise.all([connectLongPoll(), connect(gw, JSON_SER)]);
  t.after(async () => {
    await Promise.allSettled([lp.close(), ws.close()]);
  });
  return { lp, ws };
}

test('a long-poll client joins over /lp', T, async (t) => {
  const lp = await connectLongPoll();
  t.after(() => lp.close().catch(() => {}));
  assertWampId(lp.id, 'session id');
  assert.equal(lp.details.transport.type, 'longpoll');
  assert.equal(lp.details.transport.protocol, 'wamp.2.json');
  assert.match(lp.details.transport.url, /\/lp\/[0-9a-f]{32}$/, 'transport id: 128 bits in hex');
  assert.deepEqual(lp.internalErrors, []);
});

test('events flow both ways between long-poll and WebSocket clients', T, async (t) => {
  const { lp, ws } = await pair(t);
  const toLp = uniqueUri('com.example.lp.down');
  const toWs = uniqueUri('com.example.lp.up');
  const lpInbox = new Inbox('long-poll events');
  const wsInbox = new Inbox('websocket events');
  await lp.session.subscribe(toLp, lpInbox.eventHandler());
  await ws.session.subscribe(toWs, wsInbox.eventHandler());

  const publication = await ws.session.publish(toLp, [1, 'two'], { k: { v: [3] } }, { acknowledge: true });
  const down = await lpInbox.next(5000, 'EVENT at the long-poll client');
  assert.deepEqual([down.args, down.kwargs], [[1, 'two'], { k: { v: [3] } }]);
  assert.equal(down.details.publication, publication.id);

  await lp.session.publish(toWs, ['from long-poll'], {}, { acknowledge: true });
  const up = await wsInbox.next(5000, 'EVENT at the WebSocket client');
  assert.deepEqual(up.args, ['from long-poll']);

  // several events in a row arrive complete and in order (one message per receive for wamp.2.json)
  for (let i = 0; i < 20; i += 1) ws.session.publish(toLp, [i]);
  const seen = [];
  for (let i = 0; i < 20; i += 1) seen.push((await lpInbox.next(5000, `EVENT ${i}`)).args[0]);
  assert.deepEqual(seen, [...Array(20).keys()]);
  assert.deepEqual([lp.internalErrors, ws.internalErrors], [[], []]);
});

test('calls flow both ways between long-poll and WebSocket clients', T, async (t) => {
  const { lp, ws } = await pair(t);
  const onLp = uniqueUri('com.example.lp.add');
  const onWs = uniqueUri('com.example.lp.echo');
  await lp.session.register(onLp, (args) => args[0] + args[1]);
  await ws.session.register(onWs, (args, kwargs) => ({ args, kwargs }));

  assert.equal(await ws.session.call(onLp, [2, 40]), 42);
  const echoed = await lp.session.call(onWs, ['x'], { y: 1 });
  assert.deepEqual(echoed, { args: ['x'], kwargs: { y: 1 } });

  const missing = await lp.session.call(uniqueUri('com.example.lp.none')).then(() => null, (e) => e);
  assert.equal(missing && missing.error, 'wamp.error.no_such_procedure');
  // The session meta API names each session's transport.
  const lpDetails = await ws.session.call('wamp.session.get', [lp.session.id]);
  assert.deepEqual(lpDetails.transport, { type: 'longpoll', serializer: 'json' });
  const wsDetails = await lp.session.call('wamp.session.get', [ws.session.id]);
  assert.equal(wsDetails.transport.type, 'websocket');
  assert.deepEqual([lp.internalErrors, ws.internalErrors], [[], []]);
});

test('a long-poll client leaves cleanly, and its registrations go with it', T, async (t) => {
  const { lp, ws } = await pair(t);
  const procedure = uniqueUri('com.example.lp.gone');
  await lp.session.register(procedure, () => 'here');
  assert.equal(await ws.session.call(procedure), 'here');
  const info = await lp.close(5000);
  assert.equal(info.reason, 'closed');
  const after = await ws.session.call(procedure).then(() => null, (e) => e);
  assert.equal(after && after.error, 'wamp.error.no_such_procedure');
});
