// HTTP long-poll (the gateway's /lp): the client over long-poll when asked, as its fallback behind a proxy
// that refuses WebSocket upgrades (and staying on it across a gateway restart), and in a Chromium page on
// another origin whose window has no WebSocket at all.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';

import { Inbox, REALM, chromiumSkip, eventually, launchChromium, open, rpc, startGateway, uniqueUri } from './support.js';

let gw;
let proxy;
before(async () => {
  gw = await startGateway();
  proxy = await blockingProxy(gw.port);
}, { timeout: 40000 });
after(async () => {
  if (proxy) proxy.close();
  if (gw) await gw.stop();
});

/**
 * A proxy in front of the gateway that forwards plain HTTP requests and answers every WebSocket upgrade 403, as
 * proxies that do not know WebSocket do; `upgrades` counts the refused ones.
 */
function blockingProxy(port) {
  const server = http.createServer((req, res) => {
    const upstream = http.request({ host: '127.0.0.1', port, path: req.url, method: req.method, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode, answer.headers);
        answer.pipe(res);
      });
    upstream.on('error', () => {
      res.writeHead(502);
      res.end();
    });
    req.pipe(upstream);
  });
  server.upgrades = 0;
  server.on('upgrade', (req, socket) => {
    server.upgrades++;
    socket.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

test('over long-poll the client subscribes, publishes, calls and registers beside a WebSocket client', { timeout: 30000 }, async (t) => {
  const lp = await open(t, gw, { transport: 'longpoll' });
  const ws = await open(t, gw);
  assert.equal(lp.transport, 'longpoll');
  assert.equal(ws.transport, 'websocket');

  const topic = uniqueUri('app.lp.news');
  const atLp = new Inbox();
  const atWs = new Inbox();
  await lp.subscribe(topic, atLp.handler());
  await ws.subscribe(topic, atWs.handler());
  await ws.publish(topic, ['from websocket'], { n: 1 }, { acknowledge: true });
  assert.deepEqual(await atLp.next(), { args: ['from websocket'], kwargs: { n: 1 }, details: {} });
  await lp.publish(topic, ['from long-poll'], {}, { acknowledge: true, exclude_me: false });
  assert.deepEqual((await atWs.next()).args, ['from long-poll']);
  assert.deepEqual((await atLp.next()).args, ['from long-poll']);

  const onLp = uniqueUri('app.lp.double');
  const onWs = uniqueUri('app.lp.shout');
  await lp.register(onLp, (args) => args[0] * 2);
  await ws.register(onWs, (args) => String(args[0]).toUpperCase());
  assert.deepEqual((await ws.call(onLp, [21])).args, [42]);
  assert.deepEqual((await lp.call(onWs, ['hi'])).args, ['HI']);
});

test('a long-poll subscriber receives a burst of 500 events in order, each once', { timeout: 30000 }, async (t) => {
  const lp = await open(t, gw, { transport: 'longpoll' });
  const topic = uniqueUri('app.lp.burst');
  const seen = [];
  await lp.subscribe(topic, (args) => seen.push(args[0]));
  const publisher = await open(t, gw);
  for (let i = 0; i < 500; i++) publisher.publish(topic, [i]);
  await publisher.publish(topic, ['end'], {}, { acknowledge: true });
  await eventually(() => seen.at(-1) === 'end', 15000, 'the last event');
  assert.deepEqual(seen, [...Array(500).keys(), 'end']);
});

test('behind a proxy that refuses WebSocket the client falls back to long-poll, and stays on it after a restart', { timeout: 60000 }, async (t) => {
  const url = `ws://127.0.0.1:${proxy.address().port}/ws`;
  const client = await open(t, gw, { url });
  assert.equal(client.transport, 'longpoll');
  assert.equal(proxy.upgrades, 1, 'one WebSocket attempt, then long-poll');
  const topic = uniqueUri('app.lp.proxied');
  const inbox = new Inbox();
  await client.subscribe(topic, inbox.handler());
  await rpc(gw, 'publish', { topic, args: ['through the proxy'] });
  assert.deepEqual((await inbox.next()).args, ['through the proxy']);

  // Closed by the gateway while it runs: the client comes back over long-poll, without knocking at WebSocket.
  const first = client.session.id;
  await rpc(gw, 'kick', { authid: client.session.details.authid });
  const resubscribed = async (old) => client.state === 'open' && client.session.id !== old
    && (await rpc(gw, 'subscribers', { topic })).sessions.includes(client.session.id);
  await eventually(() => resubscribed(first), 20000, 'joined and subscribed again after a kick');
  assert.equal(client.transport, 'longpoll');
  assert.equal(proxy.upgrades, 1, 'the transport that worked is tried first');
  await rpc(gw, 'publish', { topic, args: ['after a kick'] });
  assert.deepEqual((await inbox.next()).args, ['after a kick']);

  // A restart: both transports fail while the gateway is down; once it is back the client is on long-poll.
  const second = client.session.id;
  await gw.restart();
  await eventually(() => resubscribed(second), 20000, 'joined and subscribed again after a restart');
  assert.equal(client.transport, 'longpoll');
  await rpc(gw, 'publish', { topic, args: ['after restart'] });
  assert.deepEqual((await inbox.next()).args, ['after restart']);
});

test('a client asked for long-poll with a binary serializer, or for an unknown transport, is refused at once', async () => {
  const msgpack = { protocol: 'wamp.2.msgpack', binary: true, encode: () => new Uint8Array(), decode: () => [] };
  const t = { after() {} };
  await assert.rejects(open(t, gw, { transport: 'longpoll', serializer: msgpack }), /needs the JSON serializer/);
  await assert.rejects(open(t, gw, { transport: 'carrier-pigeon' }), /unknown transport carrier-pigeon/);
});

const page = (gwPort) => `<!doctype html>
<meta charset="utf-8"><title>no websocket</title>
<p id="transport">loading</p><ul id="news"></ul>
<script type="module">
  delete window.WebSocket;
  window.WebSocket = undefined;
  import('http://127.0.0.1:${gwPort}/switchboard.js').then(async ({ connect }) => {
    const client = await connect({ url: 'ws://127.0.0.1:${gwPort}/ws', realm: '${REALM}' });
    await client.subscribe('app.lp.page', (args) => {
      const li = document.createElement('li');
      li.textContent = args[0];
      document.getElementById('news').append(li);
    });
    document.getElementById('transport').textContent = client.transport;
  }).catch((e) => { document.getElementById('transport').textContent = 'failed: ' + e.message; });
</script>`;

test('a Chromium page without WebSocket subscribes and receives events through /lp', { skip: chromiumSkip, timeout: 60000 }, async (t) => {
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end(page(gw.port));
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => server.close());
  const browser = await launchChromium();
  t.after(() => browser.close());
  const tab = await browser.newPage();
  const errors = [];
  tab.on('pageerror', (e) => errors.push(String(e)));
  tab.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  await tab.goto(`http://127.0.0.1:${server.address().port}/`);
  await tab.waitForFunction(() => document.getElementById('transport').textContent !== 'loading', null, { timeout: 15000 });
  assert.equal(await tab.textContent('#transport'), 'longpoll', `page errors: ${errors.join('\n')}`);
  assert.equal(await tab.evaluate(() => typeof window.WebSocket), 'undefined');
  for (const text of ['one', 'two', 'three']) await rpc(gw, 'publish', { topic: 'app.lp.page', args: [text] });
  await tab.waitForFunction(() => document.querySelectorAll('#news li').length === 3, null, { timeout: 10000 });
  assert.deepEqual(await tab.$$eval('#news li', (lis) => lis.map((li) => li.textContent)), ['one', 'two', 'three']);
  assert.deepEqual(errors, []);
});
