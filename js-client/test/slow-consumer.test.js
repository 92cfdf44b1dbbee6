// A page that stops reading: the gateway closes it with ABORT switchboard.error.slow_consumer instead of
// skipping events; the client says so through on('state') and reconnects by itself.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';

import { Inbox, eventually, open, startGateway, uniqueUri } from './support.js';

let gw;
before(async () => {
  gw = await startGateway({ gatewayKeys: 'outbound_queue = 64\nslow_consumer_ms = 200' });
}, { timeout: 40000 });
after(() => gw && gw.stop());

test('closed as a slow consumer: state says why, the client reconnects and receives again', { timeout: 60000 }, async (t) => {
  const slow = await open(t, gw, { WebSocket });
  const publisher = await open(t, gw);
  const topic = uniqueUri('app.burst');
  const inbox = new Inbox();
  await slow.subscribe(topic, inbox.handler());
  const states = [];
  slow.on('state', (state, detail) => states.push([state, detail && detail.uri]));
  const firstSession = slow.session.id;

  // Stop reading, like a tab the browser froze, and flood until the gateway gives up on it (bounded).
  slow._ws._socket.pause();
  const chunk = 'x'.repeat(16 * 1024);
  for (let n = 0; n < 4000 && !gw.log.join('').includes('closing slow consumer'); n++) {
    await publisher.publish(topic, [chunk, n], {}, { acknowledge: true });
  }
  assert.ok(gw.log.join('').includes('closing slow consumer'), 'the gateway closed the stalled page');
  slow._ws._socket.resume();

  await eventually(() => slow.state === 'open' && slow.session.id !== firstSession, 20000, 'reconnected');
  assert.deepEqual(states[0], ['connecting', 'switchboard.error.slow_consumer']);
  assert.equal(states.at(-1)[0], 'open');
  // What arrived before the close came in order, with no gap.
  const seen = inbox.items.map((e) => e.args[1]);
  assert.deepEqual(seen, seen.map((_, i) => i));
  // And the subscription is back.
  await publisher.publish(topic, ['after', -1], {}, { acknowledge: true });
  await eventually(() => inbox.items.some((e) => e.args[0] === 'after'), 5000, 'event after the reconnect');
});
