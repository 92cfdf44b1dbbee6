// Live collection recovery against a scripted router (the `ws` package's server), for the orders a real
// gateway produces only by chance: live events that are also in the recovered history (applied once), and
// live events received before the model view's answer (already in the view: not applied again).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket, { WebSocketServer } from 'ws';

import { connect } from '../switchboard.js';
import { eventually } from './support.js';

const ev = (sub, publication, kwargs) => [36, sub, publication, {}, [], kwargs];
const created = (pk, data = {}) => ({ action: 'created', model: 'shop.x', pk, data, changed: [] });
const updated = (pk, data) => ({ action: 'updated', model: 'shop.x', pk, data, changed: Object.keys(data) });

/**
 * A router that answers HELLO and SUBSCRIBE (subscription id = connection number) and hands every CALL and
 * SUBSCRIBE to `script(conn, message, send)`; `conns` are the open sockets, `calls` the CALLs received.
 */
async function fakeRouter(t, script) {
  const server = new WebSocketServer({ port: 0, host: '127.0.0.1', handleProtocols: () => 'wamp.2.json' });
  await new Promise((r) => server.once('listening', r));
  const router = { conns: [], calls: [], url: `ws://127.0.0.1:${server.address().port}/ws` };
  server.on('connection', (ws) => {
    const conn = router.conns.push(ws);
    const send = (m) => ws.send(JSON.stringify(m));
    ws.on('message', (data) => {
      const m = JSON.parse(data.toString());
      if (m[0] === 1) send([2, 1000 + conn, { authid: 'x', authrole: 'anonymous', roles: { broker: {}, dealer: {} } }]);
      else if (m[0] === 32) {
        send([33, m[1], conn]);
        script(conn, m, send);
      } else if (m[0] === 6) send([6, {}, 'wamp.close.goodbye_and_out']);
      else if (m[0] === 48) {
        router.calls.push({ conn, procedure: m[3], args: m[4], kwargs: m[5] });
        script(conn, m, send);
      }
    });
  });
  t.after(() => new Promise((r) => {
    for (const ws of server.clients) ws.terminate();
    server.close(r);
  }));
  return router;
}

async function client(t, router) {
  const c = await connect({ url: router.url, realm: 'realm1', WebSocket, retry: { base: 50, cap: 100 } });
  t.after(() => c.close());
  return c;
}

test('after a re-join, live events also in the recovered history are applied once, in publication order', { timeout: 10000 }, async (t) => {
  const router = await fakeRouter(t, (conn, m, send) => {
    if (m[0] === 48 && m[3] === 'switchboard.model.rows') return send([8, 48, m[1], {}, 'switchboard.error.no_such_model']);
    if (conn === 1) {
      if (m[0] === 48) send([50, m[1], {}, [[]]]); // newest stored event: none
      return;
    }
    if (m[0] === 32) return send(ev(conn, 103, created(3))); // live, and in history too
    if (m[0] === 48) {
      send(ev(conn, 104, created(4))); // live before the answer, and in it
      send([50, m[1], {}, [[102, 103, 104].map((publication) => ({ publication, subscription: conn, topic: 'models.shop.x', args: [], kwargs: created(publication - 100) }))]]);
      send(ev(conn, 105, created(5))); // after the answer: only live
    }
  });
  const c = await client(t, router);
  const live = await c.live('shop.x');
  const changes = [];
  live.on('change', (ch) => changes.push(`${ch.action} ${ch.pk}`));
  router.conns[0].send(JSON.stringify(ev(1, 101, created(1))));
  await eventually(() => live.get(1), 2000, 'row 1');
  assert.equal(live.position, 101);
  router.conns[0].terminate();
  await eventually(() => live.get(5), 5000, 'row 5 after the re-join');
  await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(changes, ['created 1', 'created 2', 'created 3', 'created 4', 'created 5']);
  const recovery = router.calls.find((call) => call.conn === 2);
  assert.equal(recovery.procedure, 'wamp.subscription.get_events');
  assert.deepEqual(recovery.args, [2]);
  assert.equal(recovery.kwargs.after_publication, 101);
  assert.equal(live.position, 105);
});

test('rows from the view: live events received before its answer are not applied again; later ones are, once', { timeout: 10000 }, async (t) => {
  const router = await fakeRouter(t, (conn, m, send) => {
    if (m[0] === 32) return send(ev(conn, 201, updated(1, { n: 1 }))); // before the view is read: in it
    if (m[3] === 'switchboard.model.rows') {
      send([50, m[1], {}, [], { rows: [{ pk: 1, n: 2 }, { pk: 2, n: 0 }], total: 2, publication: 202 }]);
      return send(ev(conn, 203, updated(2, { n: 3 }))); // after the view: live, and recovered
    }
    if (m[3] === 'wamp.subscription.get_events') {
      assert.equal(m[5].after_publication, 202);
      send([50, m[1], {}, [[{ publication: 203, subscription: conn, topic: 'models.shop.x', args: [], kwargs: updated(2, { n: 3 }) }]]]);
    }
  });
  const c = await client(t, router);
  const live = await c.live('shop.x', { order_by: 'pk' });
  const view = router.calls.find((call) => call.procedure === 'switchboard.model.rows');
  assert.deepEqual(view.kwargs, { model: 'shop.x', order_by: 'pk' });
  await eventually(() => live.get(2).n === 3, 2000, 'row 2 recovered');
  assert.deepEqual(live.get(1), { pk: 1, n: 2 }, 'the live event the view already holds is not applied over it');
  assert.equal(live.position, 203);
  const changes = [];
  live.on('change', (ch) => changes.push(`${ch.pk}:${ch.row.n}`));
  router.conns[0].send(JSON.stringify(ev(1, 203, updated(2, { n: 3 }))));
  router.conns[0].send(JSON.stringify(ev(1, 204, updated(1, { n: 4 }))));
  await eventually(() => live.get(1).n === 4, 2000, 'n = 4');
  await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(changes, ['1:4'], 'a publication already applied is not applied again');
  assert.deepEqual([...live].map((r) => r.pk), [1, 2]);
});

test('a synced model event replaces every row', { timeout: 10000 }, async (t) => {
  const router = await fakeRouter(t, (conn, m, send) => {
    if (m[3] === 'switchboard.model.rows') return send([50, m[1], {}, [], { rows: [{ pk: 1 }, { pk: 2 }], total: 2, publication: null }]);
    if (m[0] === 32) return undefined;
    send([8, 48, m[1], {}, 'switchboard.error.no_history']);
  });
  const c = await client(t, router);
  const live = await c.live('shop.x');
  assert.deepEqual([...live].map((r) => r.pk), [1, 2]);
  const changes = [];
  live.on('change', (ch) => changes.push(ch.action));
  router.conns[0].send(JSON.stringify(ev(1, 301, { action: 'synced', model: 'shop.x', rows: [{ pk: 7, a: 1 }, { pk: 8 }] })));
  await eventually(() => live.size === 2 && live.get(7), 2000, 'synced rows');
  assert.deepEqual(live.get(7), { pk: 7, a: 1 });
  assert.deepEqual(changes, ['synced']);
});

test('a view not seeded yet (view_incomplete): the collection opens empty and stale, and a synced event completes it', { timeout: 10000 }, async (t) => {
  const router = await fakeRouter(t, (conn, m, send) => {
    if (m[3] === 'switchboard.model.rows') return send([8, 48, m[1], {}, 'switchboard.error.view_incomplete', ['not seeded']]);
    if (m[3] === 'wamp.subscription.get_events') return send([50, m[1], {}, [[]]]);
  });
  const c = await client(t, router);
  const live = await c.live('shop.x');
  assert.equal(live.size, 0);
  assert.equal(live.stale, true);
  router.conns[0].send(JSON.stringify(ev(1, 401, created(5))));
  await eventually(() => live.get(5), 2000, 'a live event while stale');
  assert.equal(live.stale, true);
  router.conns[0].send(JSON.stringify(ev(1, 402, { action: 'synced', model: 'shop.x', rows: [{ pk: 5 }, { pk: 6 }] })));
  await eventually(() => !live.stale, 2000, 'complete after the sync');
  assert.deepEqual([...live].map((r) => r.pk), [5, 6]);
});
