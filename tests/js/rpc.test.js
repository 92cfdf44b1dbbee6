'use strict';
// Remote procedure calls through the gateway with unmodified Autobahn|JS, once per serializer.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const {
  SERIALIZERS, Inbox, autobahn, assertWampId, eventually, expectWampError, forEachSerializer, pool, uniqueUri,
  useGateway, within,
} = require('./helpers');

const gw = useGateway();
const T = { timeout: 10000 };

const ARGS = [1, 'two', 3.5, false, null, 2 ** 40, { nested: { list: [1, { deep: 'yes' }], empty: {} } }, []];
const KWARGS = { name: 'héllo ✓', n: -7, f: 0.125, obj: { a: [true, null], b: { c: 'd' } }, none: null };

forEachSerializer(test, 'register/call with args and kwargs returns Result(args, kwargs)', T, async (t, ser) => {
  const p = pool(t, gw, ser);
  const [callee, caller] = await Promise.all([p.open(), p.open()]);
  const uri = uniqueUri('com.example.rpc.echo');
  const invocations = new Inbox('invocations');
  const registration = await callee.session.register(uri, (args, kwargs, details) => {
    invocations.push({ args, kwargs, details });
    return new autobahn.Result([...args, 'extra'], { ...kwargs, echoed: true });
  });
  assertWampId(registration.id, 'registration id');

  const res = await within(caller.session.call(uri, ARGS, KWARGS), 3000, 'RESULT');
  assert.ok(res instanceof autobahn.Result, `result should be an autobahn.Result, got ${JSON.stringify(res)}`);
  assert.deepEqual(res.args, [...ARGS, 'extra'], 'RESULT.Arguments');
  assert.deepEqual(res.kwargs, { ...KWARGS, echoed: true }, 'RESULT.ArgumentsKw');

  const inv = await invocations.next(1000, 'INVOCATION');
  assert.deepEqual(inv.args, ARGS, 'INVOCATION.Arguments');
  assert.deepEqual(inv.kwargs, KWARGS, 'INVOCATION.ArgumentsKw');
  assert.equal(inv.details.caller, undefined, 'caller must not be disclosed unless disclose_me');
  assert.equal(inv.details.progress, null, 'no progress function unless the caller asked for progress');
  p.assertHealthy();
});

forEachSerializer(test, 'single, empty and structured return values', T, async (t, ser) => {
  const p = pool(t, gw, ser);
  const [callee, caller] = await Promise.all([p.open(), p.open()]);
  const base = uniqueUri('com.example.rpc.shapes');
  await callee.session.register(`${base}.add`, (args) => args[0] + args[1]);
  await callee.session.register(`${base}.nothing`, (args, kwargs) => {
    assert.deepEqual([args, kwargs], [[], {}]);
    return new autobahn.Result();
  });
  await callee.session.register(`${base}.object`, () => ({ a: { b: [1, 2, 3] }, s: 'x' }));
  await callee.session.register(`${base}.kwonly`, (args, kwargs) => new autobahn.Result([], { got: kwargs }));

  assert.equal(await within(caller.session.call(`${base}.add`, [2, 3]), 3000, 'add'), 5);
  assert.equal(await within(caller.session.call(`${base}.nothing`), 3000, 'nothing'), null);
  assert.deepEqual(await within(caller.session.call(`${base}.object`), 3000, 'object'), { a: { b: [1, 2, 3] }, s: 'x' });
  const kw = await within(caller.session.call(`${base}.kwonly`, [], { z: 26 }), 3000, 'kwonly');
  assert.deepEqual([kw.args, kw.kwargs], [[], { got: { z: 26 } }]);
  p.assertHealthy();
});

forEachSerializer(test, 'disclose_me on call shows the caller session id to the callee', T, async (t, ser) => {
  const p = pool(t, gw, ser);
  const [callee, caller] = await Promise.all([p.open(), p.open()]);
  const uri = uniqueUri('com.example.rpc.whoami');
  await callee.session.register(uri, (args, kwargs, details) => details.caller === undefined ? 'hidden' : details.caller);
  assert.equal(await within(caller.session.call(uri), 3000, 'undisclosed call'), 'hidden');
  assert.equal(await within(caller.session.call(uri, [], {}, { disclose_me: true }), 3000, 'disclosed call'), caller.id);
  p.assertHealthy();
});

forEachSerializer(test, 'application error from the callee reaches the caller with URI, args and kwargs', T, async (t, ser) => {
  const p = pool(t, gw, ser);
  const [callee, caller] = await Promise.all([p.open(), p.open()]);
  const uri = uniqueUri('com.example.rpc.fails');
  await callee.session.register(uri, () => {
    throw new autobahn.Error('com.example.error.bad', [1, 2], { reason: 'x' });
  });
  const err = await expectWampError(caller.session.call(uri, [42]), 'com.example.error.bad', 'call to failing procedure');
  assert.deepEqual(err.args, [1, 2], 'ERROR.Arguments');
  assert.deepEqual(err.kwargs, { reason: 'x' }, 'ERROR.ArgumentsKw');

  // the callee keeps serving after an error
  await callee.session.register(`${uri}.ok`, () => 'fine');
  assert.equal(await within(caller.session.call(`${uri}.ok`), 3000, 'call after error'), 'fine');
  p.assertHealthy();
});

forEachSerializer(test, 'call to an unknown procedure fails with wamp.error.no_such_procedure', T, async (t, ser) => {
  const p = pool(t, gw, ser);
  const caller = await p.open();
  await expectWampError(caller.session.call(uniqueUri('com.example.rpc.missing'), [1], { a: 1 }),
    'wamp.error.no_such_procedure', 'call to unregistered procedure');
  p.assertHealthy();
});

forEachSerializer(test, 'duplicate register fails with wamp.error.procedure_already_exists', T, async (t, ser) => {
  const p = pool(t, gw, ser);
  const [first, second, caller] = await Promise.all([p.open(), p.open(), p.open()]);
  const uri = uniqueUri('com.example.rpc.dup');
  const registration = await first.session.register(uri, () => 'first');
  await expectWampError(second.session.register(uri, () => 'second'),
    'wamp.error.procedure_already_exists', 'register by another session');
  await expectWampError(first.session.register(uri, () => 'again'),
    'wamp.error.procedure_already_exists', 'register twice by the same session');
  assert.equal(await within(caller.session.call(uri), 3000, 'call to first registration'), 'first');

  // once unregistered, the URI is free again
  await within(first.session.unregister(registration), 3000, 'UNREGISTERED');
  assert.equal(registration.active, false, 'registration inactive after unregister');
  await expectWampError(caller.session.call(uri), 'wamp.error.no_such_procedure', 'call after unregister');
  await second.session.register(uri, () => 'second');
  assert.equal(await within(caller.session.call(uri), 3000, 'call to new registration'), 'second');
  p.assertHealthy();
});

forEachSerializer(test, 'progressive call results arrive in order before the final result', T, async (t, ser) => {
  const p = pool(t, gw, ser);
  const [callee, caller] = await Promise.all([p.open(), p.open()]);
  const uri = uniqueUri('com.example.rpc.progress');
  await callee.session.register(uri, async (args, kwargs, details) => {
    assert.equal(typeof details.progress, 'function', 'callee got a progress function (INVOCATION.Details.receive_progress)');
    for (let i = 1; i <= args[0]; i += 1) {
      details.progress([i], { step: i });
      await new Promise((resolve) => setImmediate(resolve));
    }
    return new autobahn.Result(['done'], { total: args[0] });
  });

  const progress = [];
  // Autobahn|JS (when.js promises) reports progressive RESULTs through the third .then() callback
  const call = caller.session.call(uri, [3], {}, { receive_progress: true });
  const final = await within(call.then((res) => res, (err) => { throw err; }, (update) => progress.push(update)),
    3000, 'final RESULT after progress');
  assert.deepEqual(progress.map((r) => [r.args, r.kwargs]),
    [[[1], { step: 1 }], [[2], { step: 2 }], [[3], { step: 3 }]], 'progressive results');
  assert.deepEqual([final.args, final.kwargs], [['done'], { total: 3 }], 'final result');

  // a caller that did not ask for progress gets only the final result (callee sees no progress function)
  await callee.session.register(`${uri}.plain`, (args, kwargs, details) => (details.progress ? 'progress offered' : 'no progress'));
  assert.equal(await within(caller.session.call(`${uri}.plain`), 3000, 'plain call'), 'no progress');
  p.assertHealthy();
});

forEachSerializer(test, 'registration vanishes when the callee leaves (GOODBYE)', T, async (t, ser) => {
  const p = pool(t, gw, ser);
  const [callee, caller] = await Promise.all([p.open(), p.open()]);
  const uri = uniqueUri('com.example.rpc.gone');
  await callee.session.register(uri, () => 'here');
  assert.equal(await within(caller.session.call(uri), 3000, 'call while registered'), 'here');

  callee.expectClose = true;
  await callee.close();
  await expectWampError(caller.session.call(uri), 'wamp.error.no_such_procedure', 'call after callee left');

  // and the URI can be registered again by someone else
  const next = await p.open();
  await next.session.register(uri, () => 'new callee');
  assert.equal(await within(caller.session.call(uri), 3000, 'call to new callee'), 'new callee');
  p.assertHealthy();
});

forEachSerializer(test, 'registration vanishes when the callee transport drops (no GOODBYE)', T, async (t, ser) => {
  const p = pool(t, gw, ser);
  const [callee, caller] = await Promise.all([p.open(), p.open()]);
  const uri = uniqueUri('com.example.rpc.dropped');
  await callee.session.register(uri, () => 'here');
  assert.equal(await within(caller.session.call(uri), 3000, 'call while registered'), 'here');

  callee.expectClose = true;
  callee.connection._transport.close(); // plain WebSocket close, no WAMP GOODBYE
  await within(callee.closed, 3000, 'callee transport close');
  await eventually(async () => {
    try {
      await within(caller.session.call(uri), 1000, 'call after drop');
      return false;
    } catch (err) {
      if (err && err.error === 'wamp.error.no_such_procedure') return true;
      throw err;
    }
  }, 3000, 'call fails with wamp.error.no_such_procedure once the callee is gone');
  p.assertHealthy();
});

forEachSerializer(test, 'pending call fails when the callee disconnects mid-call', T, async (t, ser) => {
  const p = pool(t, gw, ser);
  const [callee, caller] = await Promise.all([p.open(), p.open()]);
  const uri = uniqueUri('com.example.rpc.midcall');
  const invoked = new Inbox('invocations');
  await callee.session.register(uri, () => {
    invoked.push(true);
    return new Promise(() => {}); // never answers
  });
  const call = caller.session.call(uri);
  await invoked.next(3000, 'INVOCATION');
  callee.expectClose = true;
  callee.connection._transport.close();
  const err = await within(call.then(
    (res) => assert.fail(`call should fail, got ${JSON.stringify(res)}`),
    (e) => e,
  ), 3000, 'ERROR for the orphaned call');
  assert.equal(typeof err.error, 'string', 'caller gets a WAMP error');
  assert.match(err.error, /^wamp\.error\./, `caller gets a wamp.error.* URI (got ${err.error})`);
  p.assertHealthy();
});

test('cross-serializer: JSON caller and MessagePack callee (and back) see identical values', T, async (t) => {
  const [json, mp] = SERIALIZERS;
  const pj = pool(t, gw, json);
  const pm = pool(t, gw, mp);
  const [jsonClient, mpClient] = await Promise.all([pj.open(), pm.open()]);
  const base = uniqueUri('com.example.rpc.cross');
  const echo = (args, kwargs) => new autobahn.Result(args, kwargs);
  await mpClient.session.register(`${base}.mp`, echo);
  await jsonClient.session.register(`${base}.json`, echo);

  let res = await within(jsonClient.session.call(`${base}.mp`, ARGS, KWARGS), 3000, 'json -> msgpack callee');
  assert.deepEqual([res.args, res.kwargs], [ARGS, KWARGS], 'json caller, msgpack callee');
  res = await within(mpClient.session.call(`${base}.json`, ARGS, KWARGS), 3000, 'msgpack -> json callee');
  assert.deepEqual([res.args, res.kwargs], [ARGS, KWARGS], 'msgpack caller, json callee');
  pj.assertHealthy();
  pm.assertHealthy();
});

forEachSerializer(test, '200 concurrent calls answered out of order each get their own result', T, async (t, ser) => {
  const p = pool(t, gw, ser);
  const [callee, caller] = await Promise.all([p.open(), p.open()]);
  const uri = uniqueUri('com.example.rpc.concurrent');
  await callee.session.register(uri, async (args) => {
    // answer in a scrambled order: later calls often finish first
    const hops = (args[0] * 7919) % 13;
    for (let i = 0; i < hops; i += 1) await new Promise((resolve) => setImmediate(resolve));
    return new autobahn.Result([args[0] * 2], { n: args[0] });
  });
  const n = 200;
  const results = await within(Promise.all(Array.from({ length: n }, (_, i) => caller.session.call(uri, [i]))),
    8000, `${n} concurrent RESULTs`);
  results.forEach((res, i) => assert.deepEqual([res.args, res.kwargs], [[i * 2], { n: i }], `result of call ${i}`));
  p.assertHealthy();
});
