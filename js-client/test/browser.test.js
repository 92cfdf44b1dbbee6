// End to end in headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core): a page on
// another origin imports /switchboard.js from the gateway, renders a live collection, sees created,
// updated and deleted rows, and, untouched, keeps receiving after the gateway restarts.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';

import { REALM, chromiumSkip as skip, emitModel, launchChromium, startGateway } from './support.js';


const page = (gwPort) => `<!doctype html>
<meta charset="utf-8"><title>orders</title>
<p id="state">loading</p><ul id="orders"></ul><ul id="news"></ul>
<script type="module">
  import { connect } from 'http://127.0.0.1:${gwPort}/switchboard.js';
  window.states = [];
  const client = await connect({ url: 'ws://127.0.0.1:${gwPort}/ws', realm: '${REALM}' });
  client.on('state', (s) => { window.states.push(s); document.getElementById('state').textContent = s; });
  await client.subscribe('app.browser.news', (args) => {
    const li = document.createElement('li');
    li.textContent = args[0];
    document.getElementById('news').append(li);
  });
  const live = await client.live('shop.order');
  const render = () => {
    document.getElementById('orders').replaceChildren(...[...live.items()].map((row) => {
      const li = document.createElement('li');
      li.dataset.pk = row.pk;
      li.textContent = row.pk + ':' + row.status;
      return li;
    }));
  };
  live.on('change', render);
  document.getElementById('state').textContent = client.state;
</script>`;

let gw;
let server;
let browser;
before(async () => {
  if (skip) return;
  gw = await startGateway();
  const html = page(gw.port);
  server = http.createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end(html);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
}, { timeout: 40000 });
after(async () => {
  if (browser) await browser.close();
  if (server) server.close();
  if (gw) await gw.stop();
});

test('a page on another origin imports /switchboard.js and renders a live collection across a gateway restart', { skip, timeout: 90000 }, async () => {
  browser = await launchChromium();
  const tab = await browser.newPage();
  const errors = [];
  tab.on('pageerror', (e) => errors.push(String(e)));
  // While the gateway restarts, Chromium logs each refused reconnect attempt itself ("WebSocket connection to
  // ... failed"); the client retries those by design. Anything else logged as an error is a failure.
  const expectedDuringRestart = /^WebSocket connection to '\S+' failed/;
  tab.on('console', (m) => {
    if (m.type() === 'error' && !expectedDuringRestart.test(m.text())) errors.push(m.text());
  });
  const origin = `http://127.0.0.1:${server.address().port}`;
  assert.notEqual(origin, gw.base, 'the page is on another origin than the gateway');
  await tab.goto(`${origin}/`);
  await tab.waitForFunction(() => document.getElementById('state').textContent === 'open', null, { timeout: 15000 })
    .catch((e) => { throw new Error(`${e.message}\npage errors: ${errors.join('\n')}`); });

  const rows = () => tab.$$eval('#orders li', (lis) => lis.map((li) => li.textContent));
  const until = (fn, arg) => tab.waitForFunction(fn, arg, { timeout: 10000 });

  await emitModel(gw, 'shop.order', 'created', 1, { status: 'new', total: 30 });
  await emitModel(gw, 'shop.order', 'created', 2, { status: 'new', total: 12 });
  await until(() => document.querySelectorAll('#orders li').length === 2);
  assert.deepEqual(await rows(), ['1:new', '2:new']);

  await emitModel(gw, 'shop.order', 'updated', 1, { status: 'paid' }, ['status']);
  await until(() => document.querySelector('#orders li[data-pk="1"]').textContent === '1:paid');
  await emitModel(gw, 'shop.order', 'deleted', 2);
  await until(() => document.querySelectorAll('#orders li').length === 1);
  assert.deepEqual(await rows(), ['1:paid']);

  await gw.restart();
  await tab.waitForFunction(() => window.states.includes('connecting') && document.getElementById('state').textContent === 'open',
    null, { timeout: 30000 });
  await emitModel(gw, 'shop.order', 'created', 3, { status: 'new' });
  await until(() => document.querySelectorAll('#orders li').length === 2);
  assert.deepEqual(await rows(), ['1:paid', '3:new']);
  await emitModel(gw, 'shop.order', 'updated', 1, { status: 'shipped' }, ['status']);
  await until(() => document.querySelector('#orders li[data-pk="1"]').textContent === '1:shipped');

  // the plain subscription came back too
  await (await import('./support.js')).rpc(gw, 'publish', { topic: 'app.browser.news', args: ['after restart'] });
  await until(() => document.querySelector('#news li')?.textContent === 'after restart');
  assert.deepEqual(errors, [], 'no errors in the page');
});
