'use strict';
// Bad frames get an answer, never a crash (DESIGN.md section 4). Raw frames where Autobahn|JS cannot
// produce them; every test ends by checking that the gateway still serves a new Autobahn|JS session.
// This file has its own gateway so that a crash here does not take other files' tests with it.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const {
  MSG, RawPeer, SERIALIZERS, connect, describe, forEachSerializer, startGateway, uniqueUri, useGateway, within,
} = require('./helpers');

const gw = useGateway();
const T = { timeout: 15000 };
const [JSON_SER, MSGPACK_SER] = SERIALIZERS;

async function assertGatewayServes(gateway, ser) {
  const c = await connect(gateway, ser, { timeoutMs: 3000 }).catch((e) => {
    throw new Error(`gateway no longer accepts sessions (crashed?): ${e.message}\n${gateway.logTail ? gateway.logTail(20) : ''}`);
  });
  await c.close();
}

/** Send a raw frame and expect ABORT wamp.error.protocol_violation, then the socket closing. */
async function expectProtocolViolation(peer, frame, what) {
  peer.ws.send(frame);
  const reply = await peer.next(3000, `answer to ${what}`);
  assert.equal(reply[0], MSG.ABORT, `${what}: expected ABORT, got ${describe(reply).slice(0, 300)}`);
  assert.equal(reply[2], 'wamp.error.protocol_violation', `${what}: ABORT reason`);
  assert.equal(typeof reply[1].message, 'string', `${what}: ABORT.Details.message names the fault`);
  await within(peer.closed, 3000, `${what}: socket closed after ABORT`);
}

/** A msgpack PUBLISH {acknowledge: true} whose single argument is `depth` nested arrays around nil. */
function deepMsgpackPublish(depth) {
  const topic = Buffer.from('com.example.deep');
  const head = Buffer.from([0x95, MSG.PUBLISH, 0x01, 0x81, 0xab, ...Buffer.from('acknowledge'), 0xc3,
    0xa0 + topic.length, ...topic, 0x91]);
  return Buffer.concat([head, Buffer.alloc(depth, 0x91), Buffer.from([0xc0])]);
}

function deepJsonPublish(depth) {
  return `[${MSG.PUBLISH},1,{"acknowledge":true},"com.example.deep",[${'['.repeat(depth)}${']'.repeat(depth)}]]`;
}

// Deep nesting gets a gateway per test: if one depth crashes the process, the others still say
// something about their own depth, and the bad-frame tests below keep the shared gateway.
for (const depth of [100, 600, 2000, 100000]) {
  for (const ser of SERIALIZERS) {
    test(`${ser.name}: PUBLISH nested ${depth} levels deep is answered (PUBLISHED or ABORT), gateway survives`, T, async (t) => {
      const own = await startGateway();
      t.after(() => own.stop()); // fails the test if the gateway died
      const peer = await RawPeer.connect(own, ser, { publisher: {} });
      t.after(() => peer.close());
      peer.ws.send(ser === JSON_SER ? deepJsonPublish(depth) : deepMsgpackPublish(depth));
      const died = own.exited.then(({ code, signal }) => {
        throw new Error(`gateway died (code=${code}, signal=${signal}) on a PUBLISH nested ${depth} deep\n` +
          `gateway output:\n${own.logTail(4)}`);
      });
      died.catch(() => {}); // only the race below reports it
      const reply = await Promise.race([peer.next(3000, `answer to a PUBLISH nested ${depth} deep`), died]);
      if (reply[0] === MSG.ABORT) {
        assert.equal(reply[2], 'wamp.error.protocol_violation', 'ABORT reason');
      } else {
        assert.deepEqual(reply.slice(0, 2), [MSG.PUBLISHED, 1], `expected PUBLISHED or ABORT, got ${describe(reply).slice(0, 300)}`);
      }
      await assertGatewayServes(own, ser);
    });
  }
}

forEachSerializer(test, 'undecodable frame -> ABORT wamp.error.protocol_violation', T, async (t, ser) => {
  const peer = await RawPeer.connect(gw, ser, { publisher: {} });
  t.after(() => peer.close());
  const frame = ser === JSON_SER ? 'this is not json' : Buffer.from([0xc1, 0xc1]);
  await expectProtocolViolation(peer, frame, 'undecodable frame');
  await assertGatewayServes(gw, ser);
});

forEachSerializer(test, 'well-formed but not a WAMP message -> ABORT wamp.error.protocol_violation', T, async (t, ser) => {
  for (const [what, msg] of [['an object', { a: 1 }], ['unknown type 999', [999, 1]], ['PUBLISH without topic', [MSG.PUBLISH, 1, {}]]]) {
    const peer = await RawPeer.connect(gw, ser, { publisher: {} });
    t.after(() => peer.close());
    const frame = ser === JSON_SER ? JSON.stringify(msg) : RawPeer.encodeMsgpack(msg);
    await expectProtocolViolation(peer, frame, what);
  }
  await assertGatewayServes(gw, ser);
});

forEachSerializer(test, 'message before HELLO and a second HELLO -> ABORT wamp.error.protocol_violation', T, async (t, ser) => {
  const early = await RawPeer.open(gw, ser);
  t.after(() => early.close());
  const publish = [MSG.PUBLISH, 1, {}, uniqueUri('com.example.early')];
  await expectProtocolViolation(early, ser === JSON_SER ? JSON.stringify(publish) : RawPeer.encodeMsgpack(publish), 'PUBLISH before HELLO');

  const twice = await RawPeer.connect(gw, ser, { publisher: {} });
  t.after(() => twice.close());
  const hello = [MSG.HELLO, 'realm1', { roles: { publisher: {} } }];
  await expectProtocolViolation(twice, ser === JSON_SER ? JSON.stringify(hello) : RawPeer.encodeMsgpack(hello), 'second HELLO');
  await assertGatewayServes(gw, ser);
});

test('a frame of the other serializer (binary on wamp.2.json, text on wamp.2.msgpack) is refused', T, async (t) => {
  const onJson = await RawPeer.connect(gw, JSON_SER, { publisher: {} });
  t.after(() => onJson.close());
  onJson.ws.send(RawPeer.encodeMsgpack([MSG.PUBLISH, 1, {}, 'com.example.x']));
  const r1 = await onJson.next(3000, 'answer to a binary frame on wamp.2.json').catch((e) => e);
  const closed1 = await within(onJson.closed, 3000, 'json socket closed').catch(() => null);
  assert.ok(closed1 || (Array.isArray(r1) && r1[0] === MSG.ABORT),
    `binary frame on a JSON session must end the session, got ${describe(r1)}`);

  const onMsgpack = await RawPeer.connect(gw, MSGPACK_SER, { publisher: {} });
  t.after(() => onMsgpack.close());
  onMsgpack.ws.send(JSON.stringify([MSG.PUBLISH, 1, {}, 'com.example.x']));
  const r2 = await onMsgpack.next(3000, 'answer to a text frame on wamp.2.msgpack').catch((e) => e);
  const closed2 = await within(onMsgpack.closed, 3000, 'msgpack socket closed').catch(() => null);
  assert.ok(closed2 || (Array.isArray(r2) && r2[0] === MSG.ABORT),
    `text frame on a MessagePack session must end the session, got ${describe(r2)}`);
  await assertGatewayServes(gw, JSON_SER);
});
