// The client against a running gateway: pub/sub, RPC, errors, ticket auth and live collections.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';

import { connect, Result, WampError } from '../switchboard.js';
import { Inbox, REALM, emitModel, eventually, mintTicket, open, startGateway, uniqueUri } from './support.js';

let gw;
before(async () => { gw = await startGateway(); }, { timeout: 40000 });
after(() => gw && gw.stop());

test('connect joins and reports state open; publish reaches another client; subscribe handle unsubscribes', async (t) => {
  const a = await open(t, gw);
  const b = await open(t, gw);
  assert.equal(a.state, 'open');
  assert.ok(Number.isInteger(a.session.id));
  const topic = uniqueUri('app.news');
  const inbox = new Inbox();
  const sub = await b.subscribe(topic, inbox.handler());
  await a.publish(topic, [1, 'two'], { three: 3 }, { acknowledge: true });
  const ev = await inbox.next();
  assert.deepEqual(ev.args, [1, 'two']);
  assert.deepEqual(ev.kwargs, { three: 3 });
  assert.equal(typeof ev.details, 'object');

  await a.publish(topic, [], { only: 'kwargs' });
  assert.deepEqual((await inbox.next()).kwargs, { only: 'kwargs' });

  await sub.unsubscribe();
  await a.publish(topic, ['after unsubscribe'], {}, { acknowledge: true });
  await a.publish(topic, ['after unsubscribe'], {}, { acknowledge: true });
  await assert.rejects(inbox.next(300), /nothing arrived/);
});

test('publisher exclusion by default, and exclude_me: false delivers to the publisher itself', async (t) => {
  const a = await open(t, gw);
  const topic = uniqueUri('app.self');
  const inbox = new Inbox();
  await a.subscribe(topic, inbox.handler());
  await a.publish(topic, ['excluded'], {}, { acknowledge: true });
  await a.publish(topic, ['included'], {}, { acknowledge: true, exclude_me: false });
  assert.deepEqual((await inbox.next()).args, ['included']);
});

test('pattern subscriptions (prefix) carry the topic', async (t) => {
  const a = await open(t, gw);
  const b = await open(t, gw);
  const prefix = uniqueUri('app.pattern');
  const all = new Inbox();
  await b.subscribe(prefix, all.handler(), { match: 'prefix' });
  await a.publish(`${prefix}.x`, [], { status: 'new', data: { total: 500 } }, { acknowledge: true });
  await a.publish(`${prefix}.y`, [], { status: 'new', data: { total: 50 } }, { acknowledge: true });
  assert.equal((await all.next()).details.topic, `${prefix}.x`);
  assert.equal((await all.next()).details.topic, `${prefix}.y`);
});

test('call and register: plain values, Result with kwargs, calls in flight together', async (t) => {
  const callee = await open(t, gw);
  const caller = await open(t, gw);
  const add = uniqueUri('app.rpc.add');
  const split = uniqueUri('app.rpc.split');
  await callee.register(add, (args, kwargs, details) => {
    assert.equal(typeof details, 'object');
    return args[0] + args[1];
  });
  await callee.register(split, async (args) => new Result(args[0].split(','), { count: args[0].split(',').length }));
  assert.deepEqual(await caller.call(add, [2, 3]), { args: [5], kwargs: {} });
  assert.deepEqual(await caller.call(split, ['a,b,c']), { args: ['a', 'b', 'c'], kwargs: { count: 3 } });
  // several calls in flight at once
  const many = await Promise.all([1, 2, 3, 4, 5].map((i) => caller.call(add, [i, i])));
  assert.deepEqual(many.map((r) => r.args[0]), [2, 4, 6, 8, 10]);
});

test('errors are Error objects carrying the WAMP URI, args and kwargs', async (t) => {
  const callee = await open(t, gw);
  const caller = await open(t, gw);
  const fails = uniqueUri('app.rpc.fails');
  const throws = uniqueUri('app.rpc.throws');
  await callee.register(fails, () => { throw new WampError('app.error.out_of_stock', ['sku-1'], { left: 0 }); });
  await callee.register(throws, () => { throw new Error('boom'); });

  const e1 = await caller.call(fails).catch((e) => e);
  assert.ok(e1 instanceof Error && e1 instanceof WampError);
  assert.equal(e1.uri, 'app.error.out_of_stock');
  assert.equal(e1.error, 'app.error.out_of_stock');
  assert.deepEqual(e1.args, ['sku-1']);
  assert.deepEqual(e1.kwargs, { left: 0 });

  const e2 = await caller.call(throws).catch((e) => e);
  assert.equal(e2.uri, 'wamp.error.runtime_error');
  assert.deepEqual(e2.args, ['boom']);

  const e3 = await caller.call(uniqueUri('app.rpc.nobody')).catch((e) => e);
  assert.ok(e3 instanceof Error);
  assert.equal(e3.uri, 'wamp.error.no_such_procedure');

  const e4 = await caller.subscribe('not a uri!!', () => {}).catch((e) => e);
  assert.equal(e4.uri, 'wamp.error.invalid_uri');

  const e5 = await caller.call(uniqueUri('app.rpc.nobody'), [], {}, { timeout: 100 }).catch((e) => e);
  assert.equal(e5.uri, 'wamp.error.no_such_procedure');
});

test('ticket connect: authid and ticket from switchboard ticket; WELCOME names alice as member', async (t) => {
  const ticket = mintTicket(gw, 'alice');
  const c = await open(t, gw, { authid: 'alice', ticket });
  assert.equal(c.session.details.authid, 'alice');
  assert.equal(c.session.details.authrole, 'member');
  assert.equal(c.session.details.authmethod, 'ticket');
  // the member role may not register: the refusal is a WampError and the session stays open
  const refused = await c.register(uniqueUri('app.rpc.nope'), () => 1).catch((e) => e);
  assert.equal(refused.uri, 'wamp.error.not_authorized');
  assert.equal(c.state, 'open');
  // a ticket function is asked for a fresh ticket on each join
  const c2 = await open(t, gw, { authid: 'alice', ticket: async () => mintTicket(gw, 'alice') });
  assert.equal(c2.session.details.authid, 'alice');
});

test('a wrong-authid ticket or an unknown realm rejects connect() with the ABORT reason as a WampError', async () => {
  const ticket = mintTicket(gw, 'alice');
  const err = await connect({ url: gw.url, realm: REALM, WebSocket, authid: 'bob', ticket }).catch((e) => e);
  assert.ok(err instanceof WampError, String(err));
  assert.equal(err.uri, 'wamp.error.authentication_failed');
  const err2 = await connect({ url: gw.url, realm: 'no.such.realm', WebSocket }).catch((e) => e);
  assert.equal(err2.uri, 'wamp.error.no_such_realm');
});

test('live collection: created, updated and deleted model events over signed JSON-RPC', async (t) => {
  const c = await open(t, gw);
  const model = `shop.order${process.pid}`;
  const live = await c.live(model, { key: 'pk' });
  const changes = [];
  live.on('change', (ch) => changes.push(ch));

  await emitModel(gw, model, 'created', 1, { status: 'new', total: 30 });
  await emitModel(gw, model, 'created', 2, { status: 'new', total: 12 });
  await emitModel(gw, model, 'created', 3, { status: 'new', total: 99 });
  await eventually(() => live.size === 3, 5000, 'three rows');
  assert.deepEqual([...live.items()].map((r) => r.pk), [1, 2, 3], 'arrival order');

  await emitModel(gw, model, 'updated', 1, { status: 'paid' }, ['status']);
  await emitModel(gw, model, 'deleted', 2);
  await eventually(() => changes.length === 5, 5000, 'five changes');
  assert.deepEqual(live.get(1), { pk: 1, status: 'paid', total: 30 });
  assert.equal(live.get(2), undefined);
  assert.deepEqual([...live].map((r) => r.pk), [1, 3], 'updated keeps its place');
  assert.deepEqual(changes.map((ch) => ch.action), ['created', 'created', 'created', 'updated', 'deleted']);
  assert.deepEqual(changes[3].changed, ['status']);
  assert.equal(changes[3].previous.status, 'new');
  assert.equal(changes[4].row, undefined);

  await live.close();
  await emitModel(gw, model, 'created', 4, {});
  await emitModel(gw, model, 'created', 5, {});
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(live.size, 2, 'closed collection no longer changes');
});

test('close() says GOODBYE: state closed, later calls fail at once with switchboard.error.closed', async () => {
  const c = await connect({ url: gw.url, realm: REALM, WebSocket });
  const states = [];
  c.on('state', (s) => states.push(s));
  await c.close();
  assert.deepEqual(states, ['closed']);
  const err = await c.call('app.x').catch((e) => e);
  assert.equal(err.uri, 'switchboard.error.closed');
});

/** A raw WAMP callee (the `ws` package, JSON): progressive results and INTERRUPT, which the library's callee side does not do. */
async function rawCallee(t, procedures) {
  const ws = new WebSocket(gw.url, ['wamp.2.json']);
  const inbox = new Inbox();
  ws.on('message', (d) => inbox.push(JSON.parse(d.toString())));
  await new Promise((r, j) => { ws.once('open', r); ws.once('error', j); });
  t.after(() => ws.close());
  const send = (m) => ws.send(JSON.stringify(m));
  send([1, REALM, { roles: { callee: { features: { progressive_call_results: true, call_canceling: true } } } }]);
  assert.equal((await inbox.next())[0], 2);
  const handlers = new Map();
  for (const [i, [name, handler]] of Object.entries(procedures).entries()) {
    send([64, i + 1, {}, name]);
    const registered = await inbox.next();
    assert.equal(registered[0], 65);
    handlers.set(registered[2], handler);
  }
  (async () => {
    for (;;) {
      const m = await inbox.next(60000).catch(() => null);
      if (!m) return;
      if (m[0] === 68) handlers.get(m[2])(m, send);
      if (m[0] === 69) send([8, 68, m[1], {}, 'wamp.error.canceled']);
    }
  })();
}

test('progressive results reach onProgress; aborting the signal cancels the call', async (t) => {
  const count = uniqueUri('app.rpc.count');
  const hang = uniqueUri('app.rpc.hang');
  await rawCallee(t, {
    [count]: ([, req, , details], send) => {
      assert.equal(details.receive_progress, true);
      send([70, req, { progress: true }, [1]]);
      send([70, req, { progress: true }, [2]]);
      send([70, req, {}, ['done']]);
    },
    [hang]: () => {},
  });
  const caller = await open(t, gw);
  const progress = [];
  const result = await caller.call(count, [], {}, { onProgress: (args) => progress.push(args[0]) });
  assert.deepEqual(progress, [1, 2]);
  assert.deepEqual(result.args, ['done']);

  const controller = new AbortController();
  const pending = caller.call(hang, [], {}, { signal: controller.signal }).catch((e) => e);
  setTimeout(() => controller.abort(), 50);
  const err = await pending;
  assert.ok(err instanceof WampError);
  assert.equal(err.uri, 'wamp.error.canceled');
});
