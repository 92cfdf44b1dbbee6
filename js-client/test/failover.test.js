// Several node URLs (`url: [...]`), without a gateway: a fake WebSocket whose nodes are up or down. Checked:
// bad `url` values throw at construction; a client whose first node is down joins the next one and says which
// (`connectedUrl`); a lost connection moves to the next node at once (round robin), with backoff only after a
// whole round of nodes failed; with "auto" each node's WebSocket, then its long-poll, is tried before the next.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { Client, connect } from '../switchboard.js';
import { eventually } from './support.js';

const A = 'ws://a.test/ws', B = 'ws://b.test/ws', C = 'ws://c.test/ws';

/** Nodes in `up` accept (open, then WELCOME the HELLO); others refuse (close without opening). */
function fakeNodes(up) {
  const net = { up: new Set(up), log: [], sockets: new Set(), hangUp: false };
  let session = 0;
  net.WebSocket = class {
    constructor(url) {
      this.url = url;
      net.log.push(url);
      setTimeout(() => {
        if (!net.up.has(url)) return this.onclose && this.onclose();
        net.sockets.add(this);
        this.onopen();
      }, 0);
    }
    send(data) {
      const m = JSON.parse(data);
      if (m[0] === 1 && net.hangUp) return this.close(); // open, but closed at HELLO
      const answer = m[0] === 1 ? [2, ++session, { authrole: 'anonymous' }] // HELLO -> WELCOME
        : m[0] === 6 ? [6, {}, 'wamp.close.goodbye_and_out'] : null; // GOODBYE -> GOODBYE
      if (answer) setTimeout(() => this.onmessage({ data: JSON.stringify(answer) }), 0);
    }
    close() {
      if (this.closed) return;
      this.closed = true;
      net.sockets.delete(this);
      setTimeout(() => this.onclose && this.onclose(), 0);
    }
  };
  /** The node at `url` dies: it refuses from now on and drops its connections. */
  net.kill = (url) => {
    net.up.delete(url);
    for (const s of [...net.sockets]) if (s.url === url) s.close();
  };
  return net;
}

test('bad url values throw when the client is made', () => {
  const base = { realm: 'realm1', WebSocket: class {} };
  assert.throws(() => new Client({ ...base, url: [] }), /url: an empty array/);
  assert.throws(() => new Client({ ...base, url: [A, 42] }), /url: every entry must be a non-empty string.*got 42/);
  assert.throws(() => new Client({ ...base, url: [A, ''] }), /url: every entry must be a non-empty string/);
  assert.throws(() => new Client({ ...base, url: undefined }), /url: the URL must be a non-empty string/);
  assert.throws(() => new Client({ ...base, url: [A, B], longpoll: 'http://a.test/lp' }), /longpoll: give one endpoint per url \(2\)/);
});

test('the first node down: the client joins the next one and says which', async (t) => {
  const net = fakeNodes([B]);
  const client = await connect({ url: [A, B, C], realm: 'realm1', WebSocket: net.WebSocket, longpoll: false });
  t.after(() => client.close());
  assert.deepEqual(net.log, [A, B]);
  assert.equal(client.connectedUrl, B);
  assert.deepEqual(client.url, [A, B, C]);
});

test('a lost node: the next one at once (round robin), backoff only after a whole round failed', async (t) => {
  const net = fakeNodes([A, B, C]);
  let backoffs = 0;
  const retry = { base: 10, cap: 10, random: () => { backoffs++; return 0.5; } };
  const client = await connect({ url: [A, B, C], realm: 'realm1', WebSocket: net.WebSocket, longpoll: false, retry });
  t.after(() => client.close());
  assert.equal(client.connectedUrl, A);
  const states = [];
  client.on('state', (s) => states.push(s));

  net.kill(A);
  await eventually(() => client.connectedUrl === B, 2000, 'joined B');
  assert.deepEqual(net.log, [A, B]);
  assert.equal(backoffs, 0, 'no backoff when the next node is up');
  assert.deepEqual(states, ['connecting', 'open']);

  // B dies while A is still down: C at once (not back to A first).
  net.kill(B);
  await eventually(() => client.connectedUrl === C, 2000, 'joined C');
  assert.deepEqual(net.log, [A, B, C]);
  assert.equal(backoffs, 0);

  // Every node down: one backoff per round (C lost, A and B refuse), then the round goes on from A.
  net.kill(C);
  await eventually(() => backoffs >= 2, 2000, 'two rounds failed');
  assert.equal(client.connectedUrl, null);
  assert.equal(client.state, 'connecting');
  net.up.add(B);
  await eventually(() => client.connectedUrl === B, 2000, 'joined B again');
  const rounds = net.log.slice(3);
  // C lost -> A, B refuse (round 1 ends with the lost C counted) -> backoff -> C, A, B ... until B is up.
  assert.deepEqual(rounds.slice(0, 2), [A, B]);
  assert.equal(rounds.at(-1), B);
  for (let i = 0; i < rounds.length - 1; i++) {
    assert.equal([A, B, C][([A, B, C].indexOf(rounds[i]) + 1) % 3], rounds[i + 1], 'round robin');
  }
});

test('"auto": each node\'s WebSocket, then its long-poll, before the next node', async (t) => {
  const net = fakeNodes([B]);
  const polled = [];
  const realFetch = globalThis.fetch;
  globalThis.fetch = async (url) => { polled.push(String(url)); throw new TypeError('fetch failed'); };
  t.after(() => { globalThis.fetch = realFetch; });
  const client = await connect({ url: [A, B], realm: 'realm1', WebSocket: net.WebSocket });
  t.after(() => client.close());
  assert.deepEqual(net.log, [A, B]);
  assert.deepEqual(polled, ['http://a.test/lp/open']);
  assert.equal(client.connectedUrl, B);
  assert.equal(client.transport, 'websocket');
});

test('nodes that open but close before the join: backoff once per round, no busy loop', async (t) => {
  const net = fakeNodes([A, B]);
  net.hangUp = true;
  let backoffs = 0;
  const retry = { base: 20, cap: 20, random: () => { backoffs++; return 0.99; } };
  const client = new Client({ url: [A, B], realm: 'realm1', WebSocket: net.WebSocket, longpoll: false, retry });
  t.after(() => client.close());
  await eventually(() => backoffs >= 3, 2000, 'three rounds');
  assert.ok(net.log.length <= 2 * (backoffs + 1), `${net.log.length} attempts for ${backoffs} backoffs`);
  net.hangUp = false;
  await client.ready;
  assert.ok([A, B].includes(client.connectedUrl));
});

test('retry: false tries every node once before it gives up', async () => {
  const net = fakeNodes([]);
  await assert.rejects(
    connect({ url: [A, B, C], realm: 'realm1', WebSocket: net.WebSocket, longpoll: false, retry: false }),
    /switchboard.error.connection_lost/,
  );
  assert.deepEqual(net.log, [A, B, C]);
});
