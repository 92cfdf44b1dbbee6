'use strict';
// Serializers and transports beyond JSON/MessagePack on /ws, with unmodified Autobahn|JS (Node):
// CBOR (wamp.2.cbor) offered alone, RawSocket on the gateway's HTTP port (Autobahn|JS's Node
// rawsocket transport speaks JSON), a WebSocket at the root path, and binary payloads (Buffer)
// crossing serializers byte for byte through the WAMP binary convention.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const {
  autobahn, SERIALIZERS, Inbox, assertWampId, connect, pool, uniqueUri, useGateway,
} = require('./helpers');

const gw = useGateway();
const T = { timeout: 15000 };

const JSON_SER = SERIALIZERS.find((s) => s.name === 'json');
const MSGPACK = SERIALIZERS.find((s) => s.name === 'msgpack');
const CBOR = {
  name: 'cbor', protocol: 'wamp.2.cbor', make: () => new autobahn.serializer.CBORSerializer(),
};

const ARGS = [1, 'two', 3.5, true, null, -42, 2 ** 40, 'héllo ✓ 日本', { nested: { deep: [1, 2, { x: 'y' }], empty: {} } }, []];
const KWARGS = { a: 1, b: { c: [1, 2, 3], d: { e: 'f', g: null } }, flag: false, ratio: -0.25, text: '', list: [{ k: [] }] };

/** Pub/sub then RPC between two sessions opened by `open`, checking payloads and the serializer in use. */
async function pubsubAndRpc(open, what) {
  const [a, b] = [await open(), await open()];
  const topic = uniqueUri(`com.example.transports.${what}.topic`);
  const inbox = new Inbox(`${what} events`);
  const subscription = await b.session.subscribe(topic, inbox.eventHandler());
  assertWampId(subscription.id, 'subscription id');
  const publication = await a.session.publish(topic, ARGS, KWARGS, { acknowledge: true });
  assertWampId(publication.id, 'publication id');
  const ev = await inbox.next(3000, `${what} EVENT`);
  assert.deepEqual(ev.args, ARGS, 'EVENT.Arguments');
  assert.deepEqual(ev.kwargs, KWARGS, 'EVENT.ArgumentsKw');
  assert.equal(ev.details.publication, publication.id);

  const procedure = uniqueUri(`com.example.transports.${what}.echo`);
  await b.session.register(procedure, (args, kwargs) => new autobahn.Result(args, kwargs));
  const result = await a.session.call(procedure, ARGS, KWARGS);
  assert.deepEqual(result.args, ARGS, 'RESULT.Arguments');
  assert.deepEqual(result.kwargs, KWARGS, 'RESULT.ArgumentsKw');
  const sum = uniqueUri(`com.example.transports.${what}.sum`);
  await b.session.register(sum, (args) => args.reduce((x, y) => x + y, 0));
  assert.equal(await a.session.call(sum, [1, 2, 39]), 42);
}

test('cbor: pub/sub and RPC with wamp.2.cbor the only serializer offered', T, async (t) => {
  const p = pool(t, gw, CBOR);
  await pubsubAndRpc(() => p.open(), 'cbor');
  const c = await p.open();
  assert.equal(c.connection.transport.info.protocol, 'wamp.2.cbor');
  p.assertHealthy();
});

test('rawsocket: pub/sub and RPC over RawSocket on the HTTP port', T, async (t) => {
  const p = pool(t, gw, JSON_SER);
  const rawsocket = { transports: [{ type: 'rawsocket', host: '127.0.0.1', port: gw.port }] };
  await pubsubAndRpc(() => p.open(rawsocket), 'rawsocket');
  const c = await p.open(rawsocket);
  assert.equal(c.connection.transport.info.type, 'rawsocket');
  p.assertHealthy();
});

for (const ser of [JSON_SER, MSGPACK, CBOR]) {
  test(`root path: pub/sub and RPC at ws://127.0.0.1:PORT/ (${ser.name})`, T, async (t) => {
    const root = { ...gw, url: `ws://127.0.0.1:${gw.port}/` };
    const p = pool(t, root, ser);
    await pubsubAndRpc(() => p.open(), `root.${ser.name}`);
    p.assertHealthy();
  });
}

// Every byte value, and the lengths around base64's padding cases.
const BLOBS = [Buffer.alloc(0), Buffer.from([0]), Buffer.from([1, 2]), Buffer.from([0, 255, 7]),
  Buffer.from(Array.from({ length: 256 }, (_, i) => i))];

function assertBytes(actual, expected, what) {
  assert.ok(actual instanceof Uint8Array, `${what}: expected bytes, got ${typeof actual} ${JSON.stringify(actual)}`);
  assert.deepEqual(Buffer.from(actual), expected, what);
}

function assertBlobs(args, kwargs, what) {
  assert.equal(args.length, BLOBS.length + 1, `${what}: args`);
  BLOBS.forEach((blob, i) => assertBytes(args[i], blob, `${what}: args[${i}]`));
  assert.equal(args[BLOBS.length], 'text stays text');
  assertBytes(kwargs.blob, BLOBS[4], `${what}: kwargs.blob`);
  assertBytes(kwargs.nested.inner[0], BLOBS[3], `${what}: kwargs.nested.inner[0]`);
}

const BINARY_PAIRS = [[CBOR, MSGPACK], [MSGPACK, CBOR], [CBOR, CBOR]];

for (const [from, to] of BINARY_PAIRS) {
  test(`binary: bytes in args and kwargs from ${from.name} reach ${to.name} byte for byte (call and event)`, T, async (t) => {
    const pFrom = pool(t, gw, from);
    const pTo = pool(t, gw, to);
    const [caller, callee] = await Promise.all([pFrom.open(), pTo.open()]);
    const kwargs = { blob: BLOBS[4], nested: { inner: [BLOBS[3]] } };
    const args = [...BLOBS, 'text stays text'];

    // RPC: the callee (other serializer) sees bytes, and its bytes come back to the caller.
    const procedure = uniqueUri('com.example.transports.binary.echo');
    const seen = [];
    await callee.session.register(procedure, (a, kw) => {
      seen.push({ args: a, kwargs: kw });
      return new autobahn.Result(a, kw);
    });
    const result = await caller.session.call(procedure, args, kwargs);
    assertBlobs(seen[0].args, seen[0].kwargs, `INVOCATION at the ${to.name} callee`);
    assertBlobs(result.args, result.kwargs, `RESULT at the ${from.name} caller`);

    // Pub/sub: publisher on one serializer, subscriber on the other.
    const topic = uniqueUri('com.example.transports.binary.topic');
    const inbox = new Inbox('binary events');
    await callee.session.subscribe(topic, inbox.eventHandler());
    await caller.session.publish(topic, args, kwargs, { acknowledge: true });
    const ev = await inbox.next(3000, 'EVENT with bytes');
    assertBlobs(ev.args, ev.kwargs, `EVENT at the ${to.name} subscriber`);
    pFrom.assertHealthy();
    pTo.assertHealthy();
  });
}

test('binary: a JSON subscriber sees CBOR bytes as the WAMP binary convention (NUL then base64)', T, async (t) => {
  const pJson = pool(t, gw, JSON_SER);
  const pCbor = pool(t, gw, CBOR);
  const [sub, pub] = await Promise.all([pJson.open(), pCbor.open()]);
  const topic = uniqueUri('com.example.transports.binary.json');
  const inbox = new Inbox('events');
  await sub.session.subscribe(topic, inbox.eventHandler());
  await pub.session.publish(topic, [Buffer.from([0, 255, 7])], {}, { acknowledge: true });
  const ev = await inbox.next(3000, 'EVENT at the JSON subscriber');
  assert.deepEqual(ev.args, ['\u0000AP8H']);

  // And back: the JSON publisher's convention string is bytes for a CBOR subscriber.
  const inbox2 = new Inbox('events');
  await pub.session.subscribe(topic, inbox2.eventHandler());
  await sub.session.publish(topic, ['\u0000AP8H'], {}, { acknowledge: true, exclude_me: false });
  const back = await inbox2.next(3000, 'EVENT at the CBOR subscriber');
  assertBytes(back.args[0], Buffer.from([0, 255, 7]), 'CBOR subscriber');
  pJson.assertHealthy();
  pCbor.assertHealthy();
});
