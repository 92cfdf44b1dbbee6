'use strict';
// Advanced RPC: shared registrations, call canceling and call timeouts, once per serializer.
//
// Autobahn|JS (22.x, and also 26.x) has no INTERRUPT handling as a callee and does not announce
// callee.features.call_canceling; per the WAMP spec the dealer then cancels in 'skip' fashion for
// that callee. Autobahn|JS as a caller only waits for the router's ERROR in 'kill' mode (for 'skip'
// and 'killnowait' it rejects locally and then treats the router's ERROR as a protocol violation).
// So cancel scenarios that need a canceling-capable callee or a skip/killnowait caller use the
// small raw WAMP peer from helpers.js, speaking the same serializer.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const {
  Inbox, MSG, RawPeer, autobahn, describe, expectWampError, forEachSerializer, pool, uniqueUri, useGateway, within,
} = require('./helpers');

const gw = useGateway();
const T = { timeout: 10000 };

// ------------------------------------------------------------------------------------------------
// shared registration

async function sharedCallees(p, uri, invoke, names) {
  const callees = [];
  for (const name of names) {
    const c = await p.open();
    c.name = name;
    c.registration = await c.session.register(uri, () => name, invoke ? { invoke } : undefined);
    callees.push(c);
  }
  return callees;
}

async function callTimes(caller, uri, n) {
  const results = [];
  for (let i = 0; i < n; i += 1) results.push(await within(caller.session.call(uri), 3000, `call ${i + 1} to ${uri}`));
  return results;
}

forEachSerializer(test, "shared registration 'roundrobin' cycles through callees in registration order", T, async (t, ser) => {
  const p = pool(t, gw, ser);
  const uri = uniqueUri('com.example.shared.rr');
  await sharedCallees(p, uri, 'roundrobin', ['A', 'B', 'C']);
  const caller = await p.open();
  const got = await callTimes(caller, uri, 6);
  assert.equal(new Set(got.slice(0, 3)).size, 3, `three consecutive calls reach three callees: ${got}`);
  assert.deepEqual(got.slice(3), got.slice(0, 3), `the cycle repeats: ${got}`);
  const start = got.indexOf('A');
  assert.deepEqual([0, 1, 2].map((i) => got[(start + i) % 3]), ['A', 'B', 'C'], `registration order: ${got}`);
  p.assertHealthy();
});

forEachSerializer(test, "shared registration 'first' and 'last' pick by registration order, with failover", T, async (t, ser) => {
  const p = pool(t, gw, ser);
  const caller = await p.open();

  const firstUri = uniqueUri('com.example.shared.first');
  const [a] = await sharedCallees(p, firstUri, 'first', ['A', 'B']);
  assert.deepEqual(await callTimes(caller, firstUri, 3), ['A', 'A', 'A'], "'first' always calls the first callee");
  a.expectClose = true;
  await a.close();
  assert.deepEqual(await callTimes(caller, firstUri, 2), ['B', 'B'], "'first' fails over to the next callee");

  const lastUri = uniqueUri('com.example.shared.last');
  const [, d] = await sharedCallees(p, lastUri, 'last', ['C', 'D']);
  assert.deepEqual(await callTimes(caller, lastUri, 3), ['D', 'D', 'D'], "'last' always calls the last callee");
  await d.session.unregister(d.registration);
  assert.deepEqual(await callTimes(caller, lastUri, 2), ['C', 'C'], "'last' falls back after unregister");
  p.assertHealthy();
});

forEachSerializer(test, "shared registration 'random' only picks registered callees", T, async (t, ser) => {
  const p = pool(t, gw, ser);
  const uri = uniqueUri('com.example.shared.random');
  await sharedCallees(p, uri, 'random', ['A', 'B', 'C']);
  const caller = await p.open();
  const got = await callTimes(caller, uri, 30);
  for (const r of got) assert.ok(['A', 'B', 'C'].includes(r), `unexpected callee ${r}`);
  assert.ok(new Set(got).size >= 2, `30 random picks among 3 callees hit more than one: ${got}`);
  p.assertHealthy();
});

forEachSerializer(test, 'shared registration refuses a mismatching invocation policy', T, async (t, ser) => {
  const p = pool(t, gw, ser);
  const [a, b, caller] = await Promise.all([p.open(), p.open(), p.open()]);

  // the spec names no URI for a policy mismatch (Crossbar: wamp.error.procedure_exists_with_different_invocation_policy)
  const refused = /^wamp\.error\./;
  const shared = uniqueUri('com.example.shared.mismatch');
  await a.session.register(shared, () => 'A', { invoke: 'roundrobin' });
  await expectWampError(b.session.register(shared, () => 'B', { invoke: 'first' }), refused, "'first' onto 'roundrobin'");
  await expectWampError(b.session.register(shared, () => 'B'), refused, "'single' onto 'roundrobin'");

  // with 'single' every further registration fails
  const single = uniqueUri('com.example.shared.single');
  await a.session.register(single, () => 'A');
  await expectWampError(b.session.register(single, () => 'B', { invoke: 'roundrobin' }), refused, "'roundrobin' onto 'single'");
  assert.deepEqual(await callTimes(caller, shared, 2), ['A', 'A'], 'only the accepted registration is called');
  p.assertHealthy();
});

// ------------------------------------------------------------------------------------------------
// call canceling

forEachSerializer(test, "cancel 'kill' with an Autobahn|JS callee: caller gets wamp.error.canceled, late result dropped", T, async (t, ser) => {
  const p = pool(t, gw, ser);
  const [callee, caller] = await Promise.all([p.open(), p.open()]);
  const uri = uniqueUri('com.example.cancel.autobahn');
  const invoked = new Inbox('invocations');
  let finish;
  await callee.session.register(uri, (args) => {
    invoked.push(args);
    return new Promise((resolve) => {
      finish = resolve;
    });
  });
  await callee.session.register(`${uri}.ping`, () => 'pong');

  const call = caller.session.call(uri, ['slow']);
  assert.deepEqual(await invoked.next(3000, 'INVOCATION at callee'), ['slow']);
  call.cancel({ mode: 'kill' });
  await expectWampError(call, 'wamp.error.canceled', "call canceled in 'kill' mode", 3000);

  // The callee now answers late; the dealer must drop that YIELD. A RESULT for the finished request
  // would make Autobahn|JS fail the caller's transport (protocol violation), and an INTERRUPT to this
  // callee (which did not announce call_canceling) would do the same to the callee: the ping round
  // trips below come after both in order on each socket, and assertHealthy() checks for that.
  finish('too late');
  assert.equal(await within(caller.session.call(`${uri}.ping`), 3000, 'ping after cancel'), 'pong');
  assert.equal(await within(caller.session.call(`${uri}.ping`), 3000, 'second ping after cancel'), 'pong');
  p.assertHealthy();
});

forEachSerializer(test, 'CANCEL for a finished call is ignored, and a repeated CANCEL yields one ERROR', T, async (t, ser) => {
  const p = pool(t, gw, ser);
  const [callee, caller] = await Promise.all([p.open(), p.open()]);
  const uri = uniqueUri('com.example.cancel.late');
  let finish;
  const invoked = new Inbox('invocations');
  await callee.session.register(uri, () => 'quick');
  await callee.session.register(`${uri}.slow`, () => {
    invoked.push(true);
    return new Promise((resolve) => {
      finish = resolve;
    });
  });

  // cancel after RESULT: the router must not answer (an ERROR for a finished request is a protocol
  // violation for Autobahn|JS, which would drop the caller's connection)
  const done = caller.session.call(uri);
  assert.equal(await within(done, 3000, 'RESULT'), 'quick');
  done.cancel({ mode: 'kill' });

  // two CANCELs for one pending call: exactly one ERROR
  const slow = caller.session.call(`${uri}.slow`);
  await invoked.next(3000, 'INVOCATION');
  slow.cancel({ mode: 'kill' });
  slow.cancel({ mode: 'kill' });
  await expectWampError(slow, 'wamp.error.canceled', 'doubly canceled call', 3000);
  finish('late');

  assert.equal(await within(caller.session.call(uri), 3000, 'call after the cancels'), 'quick');
  p.assertHealthy();
});

forEachSerializer(test, 'cancel during progressive results: later progress and the final YIELD are dropped', T, async (t, ser) => {
  const p = pool(t, gw, ser);
  const [callee, caller] = await Promise.all([p.open(), p.open()]);
  const uri = uniqueUri('com.example.cancel.progress');
  let resume;
  const gate = new Promise((resolve) => {
    resume = resolve;
  });
  await callee.session.register(uri, async (args, kwargs, details) => {
    details.progress([1]);
    await gate; // the caller cancels in between
    details.progress([2]);
    details.progress([3]);
    return 'final';
  });
  await callee.session.register(`${uri}.ping`, () => 'pong');

  const progress = new Inbox('progress');
  const call = caller.session.call(uri, [], {}, { receive_progress: true });
  const outcome = call.then((res) => ({ res }), (err) => ({ err }), (update) => progress.push(update));
  assert.equal(await progress.next(3000, 'first progressive RESULT'), 1);
  call.cancel({ mode: 'kill' });
  const { res, err } = await within(outcome, 3000, 'outcome of the canceled call');
  assert.equal(res, undefined, `canceled call must not resolve (got ${JSON.stringify(res)})`);
  assert.equal(err && err.error, 'wamp.error.canceled');
  resume();
  // progress 2, 3 and the final result travel before the ping result on each socket
  assert.equal(await within(caller.session.call(`${uri}.ping`), 3000, 'ping after cancel'), 'pong');
  assert.deepEqual(progress.all, [1], 'no progress after the cancel');
  p.assertHealthy();
});

/** Raw callee that announces call_canceling, registered at `uri`. */
async function rawCallee(ser, uri) {
  const callee = await RawPeer.connect(gw, ser, {
    callee: { features: { call_canceling: true, progressive_call_results: true } },
  });
  const req = callee.request();
  callee.send([MSG.REGISTER, req, {}, uri]);
  const registered = await callee.next(3000, 'REGISTERED');
  assert.deepEqual(registered.slice(0, 2), [MSG.REGISTERED, req], `REGISTERED, got ${describe(registered)}`);
  return callee;
}

async function rawCaller(ser) {
  return RawPeer.connect(gw, ser, { caller: { features: { call_canceling: true, progressive_call_results: true } } });
}

async function expectInvocation(callee, args) {
  const inv = await callee.next(3000, 'INVOCATION');
  assert.equal(inv[0], MSG.INVOCATION, `expected INVOCATION, got ${describe(inv)}`);
  if (args) assert.deepEqual(inv[4], args, 'INVOCATION.Arguments');
  return inv;
}

async function expectInterrupt(callee, invocationRequest, mode) {
  const intr = await callee.next(3000, 'INTERRUPT');
  assert.equal(intr[0], MSG.INTERRUPT, `expected INTERRUPT, got ${describe(intr)}`);
  assert.equal(intr[1], invocationRequest, 'INTERRUPT names the INVOCATION request id');
  assert.equal(typeof intr[2], 'object', 'INTERRUPT.Options is a dict');
  if (intr[2].mode !== undefined) assert.equal(intr[2].mode, mode, 'INTERRUPT.Options.mode');
  return intr;
}

forEachSerializer(test, "cancel 'kill': a canceling-capable callee sees INTERRUPT; caller gets wamp.error.canceled after it answers", T, async (t, ser) => {
  const p = pool(t, gw, ser);
  const uri = uniqueUri('com.example.cancel.kill');
  const callee = await rawCallee(ser, uri);
  t.after(() => callee.close());
  const [caller, helper] = await Promise.all([p.open(), p.open()]);
  await helper.session.register(`${uri}.ping`, () => 'pong');

  const call = caller.session.call(uri, ['work']);
  let settled = false;
  call.then(() => { settled = true; }, () => { settled = true; });
  const inv = await expectInvocation(callee, ['work']);
  call.cancel({ mode: 'kill' });
  await expectInterrupt(callee, inv[1], 'kill');

  // in 'kill' mode the caller hears nothing until the callee answered: a round trip on the same
  // caller socket, issued after the CANCEL, completes while the canceled call is still pending
  assert.equal(await within(caller.session.call(`${uri}.ping`), 3000, 'ping while kill pending'), 'pong');
  assert.equal(settled, false, "in 'kill' mode the caller must not get the ERROR before the callee answers");

  callee.send([MSG.ERROR, MSG.INVOCATION, inv[1], {}, 'wamp.error.canceled', ['interrupted'], {}]);
  await expectWampError(call, 'wamp.error.canceled', "call canceled in 'kill' mode", 3000);
  p.assertHealthy();
});

forEachSerializer(test, "cancel 'skip' (raw caller): immediate wamp.error.canceled, no INTERRUPT, late YIELD dropped", T, async (t, ser) => {
  const uri = uniqueUri('com.example.cancel.skip');
  const callee = await rawCallee(ser, uri);
  const caller = await rawCaller(ser);
  t.after(() => Promise.all([callee.close(), caller.close()]));

  const callReq = caller.request();
  caller.send([MSG.CALL, callReq, {}, uri, ['first']]);
  const inv = await expectInvocation(callee, ['first']);
  caller.send([MSG.CANCEL, callReq, { mode: 'skip' }]);
  const err = await caller.next(3000, 'ERROR for canceled CALL');
  assert.deepEqual(err.slice(0, 3), [MSG.ERROR, MSG.CALL, callReq], `ERROR for the CALL, got ${describe(err)}`);
  assert.equal(err[4], 'wamp.error.canceled');

  // next thing the callee sees is the next INVOCATION, not an INTERRUPT
  const secondReq = caller.request();
  caller.send([MSG.CALL, secondReq, {}, uri, ['second']]);
  const inv2 = await expectInvocation(callee, ['second']);
  // the late answer to the canceled invocation is dropped; the caller's next message is RESULT #2
  callee.send([MSG.YIELD, inv[1], {}, ['late']]);
  callee.send([MSG.YIELD, inv2[1], {}, ['second result']]);
  const res = await caller.next(3000, 'RESULT for the second call');
  assert.deepEqual([res[0], res[1], res[3]], [MSG.RESULT, secondReq, ['second result']], `RESULT #2, got ${describe(res)}`);
});

forEachSerializer(test, "cancel 'killnowait' (raw caller): immediate wamp.error.canceled and INTERRUPT, callee answer dropped", T, async (t, ser) => {
  const uri = uniqueUri('com.example.cancel.killnowait');
  const callee = await rawCallee(ser, uri);
  const caller = await rawCaller(ser);
  t.after(() => Promise.all([callee.close(), caller.close()]));

  const callReq = caller.request();
  caller.send([MSG.CALL, callReq, {}, uri, ['first']]);
  const inv = await expectInvocation(callee, ['first']);
  caller.send([MSG.CANCEL, callReq, { mode: 'killnowait' }]);
  const err = await caller.next(3000, 'ERROR for canceled CALL');
  assert.deepEqual(err.slice(0, 3), [MSG.ERROR, MSG.CALL, callReq], `ERROR for the CALL, got ${describe(err)}`);
  assert.equal(err[4], 'wamp.error.canceled');
  await expectInterrupt(callee, inv[1], 'killnowait');

  callee.send([MSG.ERROR, MSG.INVOCATION, inv[1], {}, 'wamp.error.canceled', [], {}]);
  const secondReq = caller.request();
  caller.send([MSG.CALL, secondReq, {}, uri, ['second']]);
  const inv2 = await expectInvocation(callee, ['second']);
  callee.send([MSG.YIELD, inv2[1], {}, ['second result']]);
  const res = await caller.next(3000, 'RESULT for the second call');
  assert.deepEqual([res[0], res[1], res[3]], [MSG.RESULT, secondReq, ['second result']], `RESULT #2, got ${describe(res)}`);
});

// ------------------------------------------------------------------------------------------------
// call timeout

forEachSerializer(test, 'call timeout: a callee that never answers makes the call fail after CALL.Options.timeout', T, async (t, ser) => {
  const p = pool(t, gw, ser);
  const [callee, caller] = await Promise.all([p.open(), p.open()]);
  const uri = uniqueUri('com.example.timeout');
  const invoked = new Inbox('invocations');
  let finish;
  await callee.session.register(uri, () => {
    invoked.push(true);
    return new Promise((resolve) => {
      finish = resolve;
    });
  });
  await callee.session.register(`${uri}.ping`, () => 'pong');

  const started = Date.now();
  const err = await expectWampError(caller.session.call(uri, [], {}, { timeout: 300 }),
    ['wamp.error.canceled', 'wamp.error.timeout'], 'call with timeout 300 ms', 4000);
  const elapsed = Date.now() - started;
  assert.ok(elapsed >= 250, `timeout fired after ${elapsed} ms, expected about 300 ms`);
  assert.ok(err);
  await invoked.next(100, 'the callee was invoked before the timeout');

  // the late YIELD is dropped: both sessions keep working
  finish('too late');
  assert.equal(await within(caller.session.call(`${uri}.ping`), 3000, 'ping after timeout'), 'pong');

  // a call that finishes within its timeout is unaffected
  await callee.session.register(`${uri}.fast`, () => new autobahn.Result(['fast'], { ok: true }));
  const res = await within(caller.session.call(`${uri}.fast`, [], {}, { timeout: 2000 }), 3000, 'fast call with timeout');
  assert.deepEqual([res.args, res.kwargs], [['fast'], { ok: true }]);
  p.assertHealthy();
});
