// Live data against a real gateway: live collections recover what they missed while their WebSocket was cut
// (history, wamp.subscription.get_events), a history gap resets them (reloading from the model view when
// there is one), filters go to the gateway as `_filter`, and getRetained delivers the retained event.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { Inbox, cuttable, delay, emitModel, eventually, open, rpc, startGateway, syncModel, uniqueUri } from './support.js';

const REALM_KEYS = `
[[realms.history]]
uri = "models."
match = "prefix"

[[realms.history]]
uri = "models.shop.gap"
match = "prefix"
limit = 3

[[realms.models]]
name = "shop.viewed"

[[realms.models]]
name = "shop.gap.viewed"

[[realms.models]]
name = "shop.restarted"
`;

let gw;
before(async () => {
  gw = await startGateway({ realmKeys: REALM_KEYS });
  // a view answers once the web app has seeded it since the gateway started
  for (const model of ['shop.viewed', 'shop.gap.viewed', 'shop.restarted']) await syncModel(gw, model);
}, { timeout: 40000 });
after(() => gw && gw.stop());

/** Cuts the client's WebSocket, runs `whileCut`, heals it and waits until the client is open again. */
async function cutWhile(client, ctl, whileCut) {
  const session = client.session.id;
  ctl.cut();
  await eventually(() => client.state === 'connecting', 5000, 'the client notices the cut');
  await whileCut();
  ctl.heal();
  await eventually(() => client.state === 'open' && client.session.id !== session, 10000, 'the client re-joins');
}

const getEventsCalls = (ctl) => ctl.sent.filter((m) => m[0] === 48 && m[3] === 'wamp.subscription.get_events');

test('a live collection opened with rows and after recovers the events since, and those published while cut, once each and in order', { timeout: 30000 }, async (t) => {
  const ctl = cuttable();
  const c = await open(t, gw, ctl.options);
  const model = 'shop.cut';
  await emitModel(gw, model, 'created', 1, { status: 'new' });
  const { publication: rendered } = await emitModel(gw, model, 'created', 2, { status: 'new' });
  // the web app rendered rows 1 and 2 at `rendered`; row 3 comes before the page subscribes
  await emitModel(gw, model, 'created', 3, { status: 'new' });
  const live = await c.live(model, { rows: [{ pk: 1, status: 'new' }, { pk: 2, status: 'new' }], after: rendered, pageSize: 2 });
  assert.deepEqual([...live].map((r) => r.pk), [1, 2, 3], 'recovered from after at open');
  assert.deepEqual(getEventsCalls(ctl)[0][4], [live._subId]);
  assert.equal(getEventsCalls(ctl)[0][5].after_publication, rendered);

  const changes = [];
  const resets = [];
  live.on('change', (ch) => changes.push(`${ch.action} ${ch.pk}${ch.row && ch.row.status ? ` ${ch.row.status}` : ''}`));
  live.on('reset', (r) => resets.push(r));
  const calls = getEventsCalls(ctl).length;
  await cutWhile(c, ctl, async () => {
    await emitModel(gw, model, 'updated', 1, { status: 'paid' }, ['status']);
    await emitModel(gw, model, 'created', 4, { status: 'new' });
    await emitModel(gw, model, 'deleted', 2);
    await emitModel(gw, model, 'updated', 4, { status: 'paid' }, ['status']);
    await emitModel(gw, model, 'created', 5, { status: 'new' });
  });
  // events published while it re-subscribes and recovers: live, recovered, or both (then applied once)
  for (let pk = 6; pk <= 25; pk++) await emitModel(gw, model, 'created', pk, { status: 'new' });
  await eventually(() => live.get(25), 10000, 'row 25');
  await delay(300);
  const expected = ['updated 1 paid', 'created 4 new', 'deleted 2', 'updated 4 paid', 'created 5 new'];
  for (let pk = 6; pk <= 25; pk++) expected.push(`created ${pk} new`);
  assert.deepEqual(changes, expected, 'every change once, in order');
  assert.deepEqual([...live].map((r) => r.pk), [1, 3, 4, 5, ...expected.slice(5).map((_, i) => i + 6)]);
  assert.deepEqual(live.get(1), { pk: 1, status: 'paid' });
  assert.deepEqual(resets, []);
  assert.ok(getEventsCalls(ctl).length - calls >= 3, 'five missed events in pages of two: at least three calls');
});

test('a history gap (limit 3, ten events while cut) emits reset; without a view the rows are not reloaded', { timeout: 30000 }, async (t) => {
  const ctl = cuttable();
  const c = await open(t, gw, ctl.options);
  const model = 'shop.gap.plain';
  const { publication } = await emitModel(gw, model, 'created', 1, { n: 0 });
  const live = await c.live(model, { rows: [{ pk: 1, n: 0 }], after: publication });
  const resets = [];
  live.on('reset', (r) => resets.push(r));
  await cutWhile(c, ctl, async () => {
    for (let n = 1; n <= 10; n++) await emitModel(gw, model, 'updated', 1, { n });
  });
  await eventually(() => resets.length === 1, 5000, 'one reset');
  assert.equal(resets[0].reason, 'switchboard.error.history_gap');
  assert.equal(resets[0].reloaded, false, 'no view: the app reloads');
  assert.equal(resets[0].error.uri, 'switchboard.error.history_gap');
  // it keeps following
  await emitModel(gw, model, 'created', 2, { n: 11 });
  await eventually(() => live.get(2), 5000, 'row 2 after the reset');
});

test('a history gap reloads the collection from the model view and emits reset', { timeout: 30000 }, async (t) => {
  const ctl = cuttable();
  const c = await open(t, gw, ctl.options);
  const model = 'shop.gap.viewed';
  await emitModel(gw, model, 'created', 1, { n: 0 });
  await emitModel(gw, model, 'created', 2, { n: 0 });
  const live = await c.live(model, { order_by: 'pk' });
  assert.deepEqual([...live].map((r) => r.pk), [1, 2], 'first rows from the view');
  const resets = [];
  live.on('reset', (r) => resets.push(r));
  await cutWhile(c, ctl, async () => {
    for (let n = 1; n <= 10; n++) await emitModel(gw, model, n % 2 ? 'updated' : 'created', n % 2 ? 1 : 2 + n, { n });
  });
  await eventually(() => resets.length === 1, 5000, 'one reset');
  assert.equal(resets[0].reason, 'switchboard.error.history_gap');
  assert.equal(resets[0].reloaded, true);
  assert.deepEqual(live.get(1), { pk: 1, n: 9 });
  assert.deepEqual([...live].map((r) => r.pk), [1, 2, 4, 6, 8, 10, 12]);
  await emitModel(gw, model, 'deleted', 2);
  await eventually(() => !live.get(2), 5000, 'row 2 deleted after the reload');
});

test('first rows from the model view (order_by, desc, limit), then live events from its publication', { timeout: 30000 }, async (t) => {
  const ctl = cuttable();
  const c = await open(t, gw, ctl.options);
  const model = 'shop.viewed';
  for (const [pk, total] of [[1, 30], [2, 10], [3, 20]]) await emitModel(gw, model, 'created', pk, { total });
  const live = await c.live(model, { order_by: 'total', desc: true, limit: 2 });
  assert.deepEqual([...live].map((r) => [r.pk, r.total]), [[1, 30], [3, 20]]);
  const view = ctl.sent.find((m) => m[0] === 48 && m[3] === 'switchboard.model.rows');
  assert.deepEqual(view[5], { model, order_by: 'total', desc: true, limit: 2 });
  assert.equal(typeof live.position, 'number');
  const changes = [];
  live.on('change', (ch) => changes.push(ch.action));
  await cutWhile(c, ctl, () => emitModel(gw, model, 'updated', 3, { total: 25 }));
  await eventually(() => live.get(3).total === 25, 5000, 'recovered update');
  await delay(200);
  assert.deepEqual(changes, ['updated']);
});

test('subscribe sends filter as _filter and getRetained as get_retained; no filtering in the client', { timeout: 20000 }, async (t) => {
  const ctl = cuttable();
  const c = await open(t, gw, ctl.options);
  const topic = uniqueUri('app.filtered');
  const filter = { 'data.total': { $lt: 100 }, status: { $in: ['new', 'paid'] } };
  await c.subscribe(topic, () => {}, { filter, getRetained: true });
  const sub = ctl.sent.find((m) => m[0] === 32 && m[3] === topic);
  assert.deepEqual(sub[2], { _filter: filter, get_retained: true });
  await c.live('shop.filtered', { filter: { status: 'new' } });
  const liveSub = ctl.sent.find((m) => m[0] === 32 && m[3] === 'models.shop.filtered');
  assert.deepEqual(liveSub[2], { _filter: { status: 'new' } });
});

test('the gateway applies the filter: a handler sees only matching events; a bad filter is refused', { timeout: 20000 }, async (t) => {
  const a = await open(t, gw);
  const b = await open(t, gw);
  const topic = uniqueUri('app.filtered');
  const cheap = new Inbox();
  await b.subscribe(topic, cheap.handler(), { filter: { 'data.total': { $lt: 100 }, status: { $in: ['new', 'paid'] } } });
  await a.publish(topic, [], { status: 'new', data: { total: 500 } }, { acknowledge: true });
  await a.publish(topic, [], { status: 'gone', data: { total: 5 } }, { acknowledge: true });
  await a.publish(topic, [], { status: 'new', data: { total: 50 } }, { acknowledge: true });
  assert.equal((await cheap.next()).kwargs.data.total, 50);
  await assert.rejects(cheap.next(300), /nothing arrived/);
  const bad = await b.subscribe(topic, () => {}, { filter: { total: { $nonsense: 1 } } }).catch((e) => e);
  assert.equal(bad.uri, 'wamp.error.invalid_argument');
});

test('one client, two filters on one topic: each handler sees only its own events', { timeout: 20000 }, async (t) => {
  const a = await open(t, gw);
  const b = await open(t, gw);
  const topic = uniqueUri('app.cities');
  const paris = new Inbox();
  const oslo = new Inbox();
  await b.subscribe(topic, paris.handler(), { filter: { 'data.city': 'Paris' } });
  await b.subscribe(topic, oslo.handler(), { filter: { 'data.city': { $eq: 'Oslo' } } });
  for (const city of ['Oslo', 'Paris', 'Rome', 'Oslo']) await a.publish(topic, [], { data: { city } }, { acknowledge: true });
  assert.equal((await paris.next()).kwargs.data.city, 'Paris');
  assert.equal((await oslo.next()).kwargs.data.city, 'Oslo');
  assert.equal((await oslo.next()).kwargs.data.city, 'Oslo');
  await assert.rejects(paris.next(200), /nothing arrived/);
  await assert.rejects(oslo.next(10), /nothing arrived/);
});

test('a filtered live collection: view rows and events (live and recovered) match the filter', { timeout: 30000 }, async (t) => {
  const ctl = cuttable();
  const c = await open(t, gw, ctl.options);
  const model = 'shop.viewed';
  await emitModel(gw, model, 'created', 11, { city: 'Paris' });
  await emitModel(gw, model, 'created', 12, { city: 'Oslo' });
  const live = await c.live(model, { filter: { 'data.city': 'Paris' } });
  assert.ok(live.get(11) && !live.get(12), 'the view answers matching rows only');
  await cutWhile(c, ctl, async () => {
    await emitModel(gw, model, 'created', 13, { city: 'Oslo' });
    await emitModel(gw, model, 'created', 14, { city: 'Paris' });
  });
  await emitModel(gw, model, 'created', 15, { city: 'Oslo' });
  await emitModel(gw, model, 'created', 16, { city: 'Paris' });
  await eventually(() => live.get(16), 5000, 'row 16');
  assert.ok(live.get(14), 'recovered: matching');
  assert.ok(!live.get(13) && !live.get(15), 'no row that does not match');
});

test('getRetained delivers the retained event right after subscribing, with details.retained', { timeout: 20000 }, async (t) => {
  const a = await open(t, gw);
  const b = await open(t, gw);
  const topic = uniqueUri('app.retained');
  await a.publish(topic, ['old'], {}, { acknowledge: true, retain: true });
  await a.publish(topic, ['last'], { n: 2 }, { acknowledge: true, retain: true });
  const inbox = new Inbox();
  await b.subscribe(topic, inbox.handler(), { getRetained: true });
  const ev = await inbox.next();
  assert.deepEqual(ev.args, ['last']);
  assert.deepEqual(ev.kwargs, { n: 2 });
  assert.equal(ev.details.retained, true);
  await assert.rejects(inbox.next(200), /nothing arrived/);
  const plain = new Inbox();
  await a.subscribe(topic, plain.handler());
  await assert.rejects(plain.next(200), /nothing arrived/, 'no retained event without getRetained');
  await a.publish(topic, ['live'], {}, { acknowledge: true });
  assert.deepEqual((await inbox.next()).args, ['live']);
});

// Last: it restarts the gateway.
test('after a gateway restart history is gone: reset; the view is not seeded yet, so the rows are stale until a sync', { timeout: 60000 }, async (t) => {
  const c = await open(t, gw);
  const model = 'shop.restarted';
  await emitModel(gw, model, 'created', 1, { status: 'new' });
  const live = await c.live(model);
  assert.deepEqual(live.get(1), { pk: 1, status: 'new' });
  assert.equal(live.stale, false);
  const resets = [];
  live.on('reset', (r) => resets.push(r));
  const session = c.session.id;
  await gw.restart();
  await eventually(() => c.state === 'open' && c.session.id !== session, 20000, 'the client re-joins');
  await eventually(() => resets.length === 1, 5000, 'reset after the restart');
  assert.equal(resets[0].reason, 'switchboard.error.history_gap');
  assert.equal(resets[0].reloaded, false, 'the restarted view is not seeded: nothing to reload from');
  assert.equal(live.stale, true);
  assert.deepEqual(live.get(1), { pk: 1, status: 'new' }, 'the rows it had are kept');
  const changes = [];
  live.on('change', (ch) => changes.push(ch.action));
  await syncModel(gw, model, [{ pk: 1, status: 'paid' }, { pk: 2, status: 'new' }]);
  await eventually(() => live.size === 2, 5000, 'rows from the resync');
  assert.deepEqual(live.get(1), { pk: 1, status: 'paid' });
  assert.deepEqual(changes, ['synced']);
  assert.equal(live.stale, false);
  // a page opened now loads from the seeded view
  const later = await c.live(model, { order_by: 'pk' });
  assert.deepEqual([...later].map((r) => r.pk), [1, 2]);
});

test('a conflated live collection flooded with 10,000 updates of 100 rows ends with every row\'s last state', { timeout: 60000 }, async (t) => {
  const c = await open(t, gw);
  const model = uniqueUri('shop.flood');
  const seen = [];
  const live = await c.live(model, { rows: [], rateMs: 100 });
  live.on('change', (change) => seen.push(change));
  const final = new Map();
  for (let start = 0; start < 10000; start += 1000) {
    const events = [];
    for (let n = start; n < start + 1000; n += 1) {
      const pk = n % 100;
      final.set(pk, n);
      events.push({ topic: `models.${model}`, kwargs: { action: 'updated', model, pk, data: { n }, changed: ['n'] } });
    }
    await rpc(gw, 'publish_batch', { events });
  }
  await eventually(() => live.size === 100 && [...live].every((row) => row.n === final.get(row.pk)), 20000,
    'every row at its last state');
  assert.ok(seen.length < 5000, `conflation applied ${seen.length} of 10000 updates`);
});
