'use strict';
// Graceful shutdown as Autobahn|JS clients see it: SIGTERM -> GOODBYE wamp.close.system_shutdown.
// Runs its own gateway (it is the thing being stopped); skipped against an external router.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { SERIALIZERS, connect, startGateway, within } = require('./helpers');

const external = Boolean(process.env.SWITCHBOARD_TEST_WS_URL);

test('SIGTERM: connected sessions get GOODBYE wamp.close.system_shutdown and the gateway exits', {
  timeout: 30000,
  skip: external && 'needs a gateway this test can stop',
}, async () => {
  const gw = await startGateway();
  let stopped = false;
  try {
    const clients = await Promise.all(SERIALIZERS.map((ser) => connect(gw, ser)));
    const started = Date.now();
    await gw.stop(); // SIGTERM, then waits for the process to exit (fails if it does not within 10 s)
    stopped = true;
    const elapsed = Date.now() - started;
    for (const c of clients) {
      const info = await within(c.closed, 1000, `close of ${c.serializer} session`);
      assert.equal(info.details.reason, 'wamp.close.system_shutdown',
        `${c.serializer} session close reason (got ${JSON.stringify(info)})`);
      assert.deepEqual(c.internalErrors, [], `${c.serializer} session saw no protocol violation`);
    }
    assert.ok(elapsed < 5000, `gateway took ${elapsed} ms to exit although every client said goodbye`);
  } finally {
    if (!stopped) await gw.stop().catch(() => {});
  }
});
