// Reconnecting: after a gateway restart (same port) the client re-joins, re-subscribes and re-registers;
// calls made while disconnected wait in a bounded queue, then go out, or fail with a timeout.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { Inbox, eventually, open, startGateway, uniqueUri } from './support.js';

let gw;
before(async () => { gw = await startGateway(); }, { timeout: 40000 });
after(() => gw && gw.stop());

test('after a gateway restart the client re-joins, re-subscribes and re-registers', { timeout: 60000 }, async (t) => {
  const a = await open(t, gw);
  const b = await open(t, gw);
  const states = [];
  b.on('state', (s) => states.push(s));
  const topic = uniqueUri('app.restart');
  const proc = uniqueUri('app.rpc.echo');
  const inbox = new Inbox();
  await b.subscribe(topic, inbox.handler());
  await b.register(proc, (args) => args[0]);
  const live = await b.live('shop.restart');
  const firstSession = b.session.id;

  await gw.restart();
  await eventually(() => a.state === 'open' && b.state === 'open' && b.session.id !== firstSession, 20000, 'both clients open again');
  assert.deepEqual(states.slice(0, 2), ['connecting', 'open']);

  await a.publish(topic, ['after restart'], {}, { acknowledge: true });
  assert.deepEqual((await inbox.next()).args, ['after restart']);
  assert.deepEqual((await a.call(proc, ['still here'])).args, ['still here']);
  const { emitModel } = await import('./support.js');
  await emitModel(gw, 'shop.restart', 'created', 7, { status: 'new' });
  await eventually(() => live.get(7), 5000, 'live row after restart');
});

test('calls made while disconnected wait, then succeed once the gateway is back', { timeout: 60000 }, async (t) => {
  const c = await open(t, gw, { queueTimeout: 20000 });
  const proc = uniqueUri('app.rpc.later');
  await c.register(proc, (args) => args[0] * 2);
  await gw.stop({ remove: false });
  await eventually(() => c.state === 'connecting', 5000, 'client notices the gateway is gone');
  const pending = Promise.all([c.call(proc, [21]), c.call(proc, [1])]);
  let settled = false;
  pending.finally(() => { settled = true; }).catch(() => {});
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(settled, false, 'calls wait instead of failing at once');
  await gw.spawn();
  const [r1, r2] = await pending;
  assert.deepEqual(r1.args, [42]);
  assert.deepEqual(r2.args, [2]);
});

test('calls while disconnected fail with switchboard.error.timeout after queueTimeout, and past queueLimit at once', { timeout: 60000 }, async (t) => {
  const c = await open(t, gw, { queueTimeout: 400, queueLimit: 2 });
  await gw.stop({ remove: false });
  t.after(() => (gw.child.exitCode === null ? null : gw.spawn()));
  await eventually(() => c.state === 'connecting', 5000, 'client notices the gateway is gone');
  const started = Date.now();
  const waiting = [c.call('app.rpc.x').catch((e) => e), c.publish('app.x', [1]).catch((e) => e)];
  const full = await c.call('app.rpc.y').catch((e) => e);
  assert.equal(full.uri, 'switchboard.error.queue_full');
  assert.ok(Date.now() - started < 100, 'queue full fails at once');
  const [e1, e2] = await Promise.all(waiting);
  for (const e of [e1, e2]) {
    assert.ok(e instanceof Error);
    assert.equal(e.uri, 'switchboard.error.timeout');
  }
  assert.ok(Date.now() - started >= 390, 'waited for queueTimeout');
});
