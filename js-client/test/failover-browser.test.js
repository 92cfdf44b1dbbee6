// Failover in headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core): a page given the
// three nodes of a cluster (`url: [...]`, a RabbitMQ stream of their own) shows a live list; its node is
// killed (SIGKILL) while events flow through another node's JSON-RPC; the page moves to the next node and
// ends with every event once, in order. Needs RabbitMQ (skipped outside CI when unreachable, failing in CI).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';

import { REALM, chromiumSkip, delay, emitModel, eventually, launchChromium, rabbitSkip, startCluster, uniqueUri } from './support.js';

const skip = chromiumSkip || (await rabbitSkip());
const MODEL = uniqueUri('shop.browserfailover');

const page = (urls, modulePort) => `<!doctype html>
<meta charset="utf-8"><title>failover</title>
<p id="state">loading</p><ol id="events"></ol>
<script type="module">
  import { connect } from 'http://127.0.0.1:${modulePort}/switchboard.js';
  window.changes = [];
  window.nodes = [];
  window.problems = [];
  const client = await connect({ url: ${JSON.stringify(urls)}, realm: '${REALM}', retry: { base: 100, cap: 1000 } });
  window.nodes.push(client.connectedUrl);
  client.on('state', (s) => {
    document.getElementById('state').textContent = s;
    if (s === 'open') window.nodes.push(client.connectedUrl);
  });
  const live = await client.live('${MODEL}');
  live.on('reset', (r) => window.problems.push('reset: ' + r.reason));
  live.on('error', (e) => window.problems.push('error: ' + e.message));
  live.on('change', (ch) => {
    if (ch.action !== 'created') return;
    window.changes.push(ch.pk);
    const li = document.createElement('li');
    li.textContent = String(ch.pk);
    document.getElementById('events').append(li);
  });
  document.getElementById('state').textContent = client.state;
</script>`;

let cluster;
let server;
let browser;
before(async () => {
  if (skip) return;
  cluster = await startCluster(3);
  const html = page(cluster.gws.map((gw) => gw.url), cluster.gws[2].port);
  server = http.createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end(html);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
}, { timeout: 90000 });
after(async () => {
  if (browser) await browser.close();
  if (server) server.close();
  if (cluster) await cluster.stop();
});

test('a page given three nodes survives its node\'s death (kill -9) with every event once, in order', { skip, timeout: 120000 }, async () => {
  const [a, b, c] = cluster.gws;
  browser = await launchChromium();
  const tab = await browser.newPage();
  const errors = [];
  tab.on('pageerror', (e) => errors.push(String(e)));
  await tab.goto(`http://127.0.0.1:${server.address().port}/`);
  await tab.waitForFunction(() => document.getElementById('state').textContent === 'open', null, { timeout: 20000 });
  assert.deepEqual(await tab.evaluate(() => window.nodes), [a.url]);

  const published = [];
  let pumping = true;
  const pump = (async () => {
    for (let pk = 1; pumping; pk++) {
      await emitModel(c, MODEL, 'created', pk, { n: pk });
      published.push(pk);
      await delay(10);
    }
  })();
  const shown = () => tab.evaluate(() => window.changes.length);
  await eventually(async () => (await shown()) >= 20, 15000, 'events on the page before the kill');
  await a.kill();
  const atKill = published.length;
  await eventually(async () => (await tab.evaluate(() => window.nodes)).length === 2, 15000, 'the page joined another node');
  await eventually(() => published.length >= atKill + 40, 15000, 'events published after the move');
  pumping = false;
  await pump;
  await eventually(async () => (await shown()) >= published.length, 15000, 'every event on the page');
  await delay(500); // room for a duplicate to show
  const changes = await tab.evaluate(() => window.changes);
  assert.deepEqual(changes, published, 'every event once, in publication order');
  const items = await tab.$$eval('#events li', (lis) => lis.map((li) => Number(li.textContent)));
  assert.deepEqual(items, published);
  assert.deepEqual(await tab.evaluate(() => window.nodes), [a.url, b.url], 'from node A to the next URL, B');
  assert.deepEqual(await tab.evaluate(() => window.problems), []);
  assert.deepEqual(errors, []);
});
