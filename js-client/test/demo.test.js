// The demo end to end in headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core): a gateway
// ingesting over AMQP (the RabbitMQ at 127.0.0.1:5672), the shop example (emitter/examples/shop.rs, built by
// tests/run.sh: cargo build -p switchboard-emitter --example shop) emitting over AMQP, and its order page
// (js-client/examples/orders.html, served by the shop with the rows it has). Checked: the page shows rows
// that existed before it loaded; changes made while its WebSocket is cut show up after it reconnects, once
// each; changes made while the gateway is down (queued in RabbitMQ) reach the restarted gateway once each and
// the page ends with the shop's rows; a page whose recovery hits a history gap reloads from the model view and
// ends with the shop's rows; the page opened on its own loads its rows from the view.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFile } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';

import {
  REPO, SECRET, REALM, chromiumSkip as skip, delay, eventually, freePort, launchChromium, rabbitUp, rpc,
} from './support.js';
import { connect } from '../switchboard.js';

const IN_CI = process.env.CI === 'true';
const BIN = process.env.SWITCHBOARD_BIN || path.join(REPO, 'target', 'debug', 'switchboard');
const SHOP = process.env.SWITCHBOARD_SHOP_BIN || path.join(path.dirname(BIN), 'examples', 'shop');
const AMQP_URL = 'amqp://guest:guest@127.0.0.1:5672/%2f';


const children = new Set();
process.on('exit', () => children.forEach((c) => c.kill('SIGKILL')));



let runs = 0;
/** The demo's config (emitter/examples/shop.toml) on fixed ports, AMQP ingestion and emitter, own queue. */
function demoConfig({ port, rpcPort, exchange, queue, historyLimit }) {
  return `[gateway]
listen = "127.0.0.1:${port}"
shutdown_grace_ms = 1000

[security]
secret = "${SECRET}"

[ingest.jsonrpc]
listen = "127.0.0.1:${rpcPort}"

[ingest.amqp]
url = "${AMQP_URL}"
exchange = "${exchange}"
queue = "${queue}"

[emitter]
transport = "amqp"

[[realms]]
name = "${REALM}"
anonymous_role = "anonymous"

[[realms.roles]]
name = "anonymous"
permissions = [
  { uri = "", match = "prefix", allow = { subscribe = true, publish = true, call = true, register = true } },
  { uri = "models.", match = "prefix", allow = { subscribe = true, call = true, register = true } },
]

[[realms.history]]
uri = "models."
match = "prefix"
limit = ${historyLimit}

[[realms.models]]
name = "shop.order"
`;
}

function cleanEnv() {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('SWITCHBOARD__')) delete env[k];
  return env;
}

/** A process whose output is kept (last 200 chunks) for failure messages. */
function start(bin, args, cwd) {
  const proc = { log: [] };
  const child = spawn(bin, args, { cwd, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  for (const s of [child.stdout, child.stderr]) {
    s.on('data', (d) => {
      proc.log.push(d.toString());
      if (proc.log.length > 200) proc.log.shift();
      if (process.env.SWITCHBOARD_TEST_GATEWAY_LOG === '1') process.stderr.write(d);
    });
  }
  proc.exited = new Promise((r) => child.on('exit', (code, signal) => {
    children.delete(child);
    r({ code, signal });
  }));
  proc.child = child;
  proc.stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return proc.exited;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10000);
    const result = await proc.exited;
    clearTimeout(timer);
    return result;
  };
  return proc;
}

/**
 * A gateway and the shop on one config; `gw.restart()` brings the gateway back on the same ports (the page
 * must find it where it was), `stopAll()` ends both and deletes the run's queues (best effort).
 */
async function startDemo({ historyLimit = 1000 } = {}) {
  if (!fs.existsSync(BIN)) throw new Error(`gateway binary not found at ${BIN}: run cargo build -p switchboard`);
  if (!fs.existsSync(SHOP)) {
    throw new Error(`shop example not found at ${SHOP}: run cargo build -p switchboard-emitter --example shop (tests/run.sh does)`);
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'switchboard-js-demo-'));
  const name = `switchboard-js-demo.${process.pid}.${Date.now()}.${++runs}`;
  const demo = {
    dir, port: await freePort(), rpcPort: await freePort(), shopPort: await freePort(),
    exchange: `${name}.events`, queue: `${name}.ingest`,
  };
  demo.configPath = path.join(dir, 'switchboard.toml');
  fs.writeFileSync(demo.configPath, demoConfig({ ...demo, historyLimit }));
  demo.base = `http://127.0.0.1:${demo.port}`;
  demo.shopBase = `http://127.0.0.1:${demo.shopPort}`;
  const readyPath = path.join(dir, 'ready.json');

  demo.startGateway = async () => {
    fs.rmSync(readyPath, { force: true });
    const gw = start(BIN, ['gateway', '--config', demo.configPath, '--ready-file', readyPath], dir);
    demo.gw = gw;
    await eventually(() => {
      if (gw.child.exitCode !== null) throw new Error(`gateway exited early (code ${gw.child.exitCode}):\n${gw.log.join('')}`);
      return fs.existsSync(readyPath);
    }, 30000, `gateway ready:\n${gw.log.join('')}`).catch((e) => {
      throw new Error(`${e.message}\n${gw.log.join('')}`);
    });
  };
  demo.stopGateway = async () => {
    const { code } = await demo.gw.stop();
    assert.equal(code, 0, `gateway exited with ${code} after SIGTERM:\n${demo.gw.log.join('')}`);
  };
  demo.restartGateway = async () => {
    await demo.stopGateway();
    await demo.startGateway();
  };
  demo.stopAll = async () => {
    if (demo.watcher) await demo.watcher.close();
    if (demo.shop) await demo.shop.stop();
    if (demo.gw) await demo.gw.stop();
    fs.rmSync(dir, { recursive: true, force: true });
    // The topology is durable; drop this run's queues again if rabbitmqctl is at hand (exchanges stay: cheap).
    for (const q of [demo.queue, `${demo.queue}.dead-letter`]) {
      await new Promise((r) => execFile('rabbitmqctl', ['delete_queue', q], { timeout: 20000 }, () => r()));
    }
  };

  await demo.startGateway();
  // Another page, already open: at start the gateway holds its AMQP backlog until somebody subscribes (events
  // consumed then would reach nobody), so without one the shop's first events would wait for the page.
  demo.watcher = await connect({ url: `ws://127.0.0.1:${demo.port}/ws`, realm: REALM, WebSocket, retry: { base: 100, cap: 500 } });
  await demo.watcher.subscribe('models.shop.order', () => {});
  demo.shop = start(SHOP, [demo.configPath, `127.0.0.1:${demo.shopPort}`], dir);
  await eventually(async () => {
    if (demo.shop.child.exitCode !== null) throw new Error(`shop exited (code ${demo.shop.child.exitCode})`);
    return (await fetch(`${demo.shopBase}/orders.json`)).ok;
  }, 30000, 'shop answering').catch((e) => {
    throw new Error(`${e.message}\n${demo.shop.log.join('')}`);
  });
  return demo;
}

/** A REST call to the shop; fails unless it answers 200 (the change stored and emitted). */
async function shop(demo, method, urlPath, body) {
  const res = await fetch(`${demo.shopBase}${urlPath}`, { method, body: body && JSON.stringify(body) });
  const text = await res.text();
  assert.equal(res.status, 200, `${method} ${urlPath}: ${res.status} ${text}`);
  return JSON.parse(text);
}

/** The gateway's last publication on the orders topic (what the shop renders pages with). */
const lastPublication = async (demo) => (await rpc({ rpcUrl: `http://127.0.0.1:${demo.rpcPort}/` },
  'last_publication', { topic: 'models.shop.order' })).publication;

/**
 * Waits until the gateway has taken every event the shop emitted so far out of RabbitMQ (the shop's REST
 * calls return once the broker confirmed; the gateway publishes a moment later): its model view holds the
 * shop's rows. With `page`: and until the page applied the last publication.
 */
async function drained(demo, page) {
  const text = (rows) => rows.map((r) => `${r.pk}:${r.status ?? ''}:${r.total ?? ''}`).sort(byPk);
  let view;
  await eventually(async () => {
    const { kwargs } = await demo.watcher.call('switchboard.model.rows', [], { model: 'shop.order', limit: 1000 });
    view = text(kwargs.rows);
    return JSON.stringify(view) === JSON.stringify(await database(demo));
  }, 15000, 'the gateway took the shop\'s events').catch((e) => { throw new Error(`${e.message}: view ${JSON.stringify(view)}`); });
  if (page) {
    const publication = await lastPublication(demo);
    await page.waitForFunction((p) => window.demo?.orders?.position === p, publication, { timeout: 10000 });
  }
}

/** The shop's database as the page shows it: "pk:status:total", by pk. */
async function database(demo) {
  const rows = await (await fetch(`${demo.shopBase}/orders.json`)).json();
  return rows.map((r) => `${r.pk}:${r.status ?? ''}:${r.total ?? ''}`).sort(byPk);
}
const byPk = (a, b) => Number(a.split(':')[0]) - Number(b.split(':')[0]);

/** The rows the page shows, as "pk:status:total" (every row once: checked), by pk. */
async function shown(tab) {
  const rows = await tab.$$eval('#orders tr', (trs) => trs.map((tr) => [...tr.cells].map((td) => td.textContent).join(':')));
  const pks = rows.map((r) => r.split(':')[0]);
  assert.equal(new Set(pks).size, pks.length, `a row shown twice: ${rows.join(', ')}`);
  return rows.sort(byPk);
}

/** Waits until the page shows exactly the shop's database; fails with both. */
async function settles(tab, demo, ms, what) {
  let last;
  try {
    await eventually(async () => {
      last = { page: await shown(tab), db: await database(demo) };
      return JSON.stringify(last.page) === JSON.stringify(last.db);
    }, ms, what, 100);
  } catch (e) {
    throw new Error(`${e.message}\npage: ${JSON.stringify(last?.page)}\ndatabase: ${JSON.stringify(last?.db)}`);
  }
}

// Installed in every page before its scripts: a network the test can cut: every open WebSocket closed, new
// ones sent to a refused port and long-poll requests (the client's fallback) failed until heal; like
// support.js's cuttable() for node.
function cuttableWebSocket() {
  const Native = window.WebSocket;
  const nativeFetch = window.fetch.bind(window);
  window.fetch = (input, init) => (ctl.blocked && String(input.url || input).includes('/lp')
    ? Promise.reject(new TypeError('Failed to fetch (cut by the test)')) : nativeFetch(input, init));
  const ctl = { blocked: false, sockets: new Set() };
  window.__cut = ctl;
  window.WebSocket = class extends Native {
    constructor(url, protocols) {
      super(ctl.blocked ? 'ws://127.0.0.1:9/ws' : url, protocols);
      ctl.sockets.add(this);
      this.addEventListener('close', () => ctl.sockets.delete(this));
    }
  };
  ctl.cut = () => {
    ctl.blocked = true;
    for (const s of ctl.sockets) s.close();
  };
  ctl.heal = () => { ctl.blocked = false; };
}

let browser;
let demo;
let tab;
let loads = 0;
const errors = [];
// Refused (re)connects while the socket is cut or the gateway is down are logged by Chromium itself, and
// the client retries them by design; a page reload aborts its import. Anything else is a failure.
const EXPECTED = /^WebSocket connection to '\S+' failed|^Failed to load resource/;

async function newTab() {
  const page = await browser.newPage();
  await page.addInitScript(cuttableWebSocket);
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => {
    if (m.type() === 'error' && !EXPECTED.test(m.text())) errors.push(m.text());
  });
  return page;
}

const ready = (page, ms = 15000) => page.waitForFunction(
  () => window.demo?.ready && document.getElementById('state').textContent === 'open', null, { timeout: ms },
).catch((e) => { throw new Error(`${e.message}\npage errors: ${errors.join('\n')}`); });

let skipAll = skip;
before(async () => {
  if (skip) return;
  if (!(await rabbitUp())) {
    if (IN_CI) throw new Error('RabbitMQ is not reachable at 127.0.0.1:5672');
    skipAll = 'RabbitMQ not reachable at 127.0.0.1:5672 (rabbitmq-server -detached); skipped outside CI';
    return;
  }
  demo = await startDemo();
  const { chromium } = await import('playwright-core');
  browser = await launchChromium();
}, { timeout: 60000 });
after(async () => {
  if (browser) await browser.close();
  if (demo) await demo.stopAll();
});

test('the page served by the shop shows the orders that existed before it loaded', { timeout: 60000 }, async (t) => {
  if (skipAll) return t.skip(skipAll);
  await shop(demo, 'POST', '/orders', { status: 'new', total: 30 });
  await shop(demo, 'POST', '/orders', { status: 'new', total: 12 });
  await shop(demo, 'PUT', '/orders/2', { status: 'paid' });
  await shop(demo, 'POST', '/orders', { status: 'new', total: 7 });
  await shop(demo, 'DELETE', '/orders/3');
  await drained(demo);
  tab = await newTab();
  tab.on('load', () => loads++);
  await tab.goto(`${demo.shopBase}/`);
  await ready(tab);
  // Rendered into the page by the shop, so there at once: no event needed.
  assert.deepEqual(await shown(tab), ['1:new:30', '2:paid:12']);
  assert.deepEqual(await shown(tab), await database(demo));
  const embedded = await tab.$eval('#shop-data', (s) => JSON.parse(s.textContent));
  assert.equal(embedded.rows.length, 2, 'the rows are embedded in the page');
  assert.equal(typeof embedded.after, 'number', 'with the position they are consistent with');

  await shop(demo, 'POST', '/orders', { status: 'new', total: 99 });
  await settles(tab, demo, 10000, 'a new order shows up');
  assert.deepEqual(errors, []);
});

test('opened on its own (no rows from the shop), the page loads its rows from the model view', { timeout: 60000 }, async (t) => {
  if (skipAll) return t.skip(skipAll);
  const html = fs.readFileSync(path.join(REPO, 'js-client', 'examples', 'orders.html'));
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end(html);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => server.close());
  const page = await newTab();
  t.after(() => page.close());
  await page.goto(`http://127.0.0.1:${server.address().port}/?gateway=127.0.0.1:${demo.port}&realm=${REALM}`);
  await ready(page);
  assert.equal(await page.$eval('#shop-data', (s) => s.textContent), 'null');
  await settles(page, demo, 10000, 'the standalone page shows the view');
  await shop(demo, 'PUT', '/orders/1', { status: 'shipped' });
  await settles(page, demo, 10000, 'and follows it');
  assert.deepEqual(errors, []);
});

test('changes made while the page\'s WebSocket is cut show up after it reconnects, once each', { timeout: 60000 }, async (t) => {
  if (skipAll) return t.skip(skipAll);
  await settles(tab, demo, 10000, 'the page is current before the cut');
  await drained(demo, tab);
  const before = await tab.evaluate(() => window.demo.changes.length);
  await tab.evaluate(() => window.__cut.cut());
  await tab.waitForFunction(() => document.getElementById('state').textContent === 'connecting', null, { timeout: 10000 });
  const { id } = await shop(demo, 'POST', '/orders', { status: 'new', total: 5 });
  await shop(demo, 'PUT', '/orders/1', { status: 'returned' });
  await shop(demo, 'DELETE', '/orders/2');
  await delay(300);
  assert.equal(await tab.evaluate(() => document.getElementById('state').textContent), 'connecting', 'still cut');
  await tab.evaluate(() => window.__cut.heal());
  await ready(tab, 20000);
  await settles(tab, demo, 15000, 'the page recovered what it missed');
  const changes = await tab.evaluate((n) => window.demo.changes.slice(n), before);
  assert.deepEqual(changes, [
    { action: 'created', pk: id },
    { action: 'updated', pk: 1 },
    { action: 'deleted', pk: 2 },
  ], 'recovered from history, each once and in order');
  assert.deepEqual(await tab.evaluate(() => window.demo.resets), [], 'no reset: history had them');
  assert.equal(loads, 1, 'no page reload');
  assert.deepEqual(errors, []);
});

test('changes made while the gateway is down reach it over AMQP once each, and the page ends with the shop\'s rows', { timeout: 90000 }, async (t) => {
  if (skipAll) return t.skip(skipAll);
  await settles(tab, demo, 10000, 'the page is current before the restart');
  await drained(demo, tab);
  await demo.stopGateway();
  await tab.waitForFunction(() => document.getElementById('state').textContent === 'connecting', null, { timeout: 10000 });
  // The shop's emitter publishes to RabbitMQ, which keeps the events in the gateway's queue meanwhile.
  const { id } = await shop(demo, 'POST', '/orders', { status: 'new', total: 41 });
  await shop(demo, 'PUT', `/orders/${id}`, { status: 'paid' });
  await shop(demo, 'PUT', '/orders/4', { status: 'shipped' });
  await shop(demo, 'DELETE', '/orders/1');
  const downtime = [['created', id], ['updated', id], ['updated', 4], ['deleted', 1]];

  await demo.startGateway();
  // The restarted gateway has no history and an unseeded view: the page cannot recover, reloads, and the shop
  // renders it again with its rows (and resyncs the view). Whatever the timing, it ends with the database.
  await settles(tab, demo, 30000, 'the page shows the shop\'s rows after the restart');
  await ready(tab, 20000);
  // Without a seeded view the reset cannot reload (reloaded: false): the page reloaded itself, once.
  assert.equal(loads, 2, 'the page reloaded itself once');

  // The downtime's events were not lost: the restarted gateway published each once, in order.
  // (The page may have reloaded before the gateway took them from RabbitMQ: wait for them.)
  const client = await connect({ url: `ws://127.0.0.1:${demo.port}/ws`, realm: REALM, WebSocket, retry: false });
  t.after(() => client.close());
  const sub = await client.subscribe('models.shop.order', () => {});
  let published;
  await eventually(async () => {
    const { args } = await client.call('wamp.subscription.get_events', [sub.id], { limit: 1000 });
    published = args[0].map((e) => e.kwargs).filter((k) => k.action !== 'synced').map((k) => [k.action, k.pk]);
    return published.length >= downtime.length;
  }, 15000, 'the downtime\'s events published by the restarted gateway').catch((e) => {
    throw new Error(`${e.message}: ${JSON.stringify(published)}`);
  });
  await delay(500);
  const { args } = await client.call('wamp.subscription.get_events', [sub.id], { limit: 1000 });
  published = args[0].map((e) => e.kwargs).filter((k) => k.action !== 'synced').map((k) => [k.action, k.pk]);
  assert.deepEqual(published, downtime);
  await settles(tab, demo, 10000, 'the page still shows the shop\'s rows');
  assert.deepEqual(errors, []);
});

test('a page whose recovery hits a history gap reloads from the view and ends with the shop\'s rows', { timeout: 90000 }, async (t) => {
  if (skipAll) return t.skip(skipAll);
  const small = await startDemo({ historyLimit: 3 });
  t.after(() => small.stopAll());
  await shop(small, 'POST', '/orders', { status: 'new', total: 1 });
  await shop(small, 'POST', '/orders', { status: 'new', total: 2 });
  const page = await newTab();
  t.after(() => page.close());
  let pageLoads = 0;
  page.on('load', () => pageLoads++);
  await drained(small);
  await page.goto(`${small.shopBase}/`);
  await ready(page);
  assert.deepEqual(await shown(page), ['1:new:1', '2:new:2']);
  await drained(small, page);

  await page.evaluate(() => window.__cut.cut());
  await page.waitForFunction(() => document.getElementById('state').textContent === 'connecting', null, { timeout: 10000 });
  // Ten changes while cut: history keeps 3 per topic, so the page's position is gone.
  for (let i = 0; i < 4; i++) await shop(small, 'POST', '/orders', { status: 'new', total: 10 + i });
  for (let i = 0; i < 4; i++) await shop(small, 'PUT', `/orders/${1 + i}`, { status: `step${i}` });
  await shop(small, 'DELETE', '/orders/2');
  await shop(small, 'DELETE', '/orders/6');
  await page.evaluate(() => window.__cut.heal());
  await settles(page, small, 20000, 'the page reloaded from the view');
  assert.deepEqual(await page.evaluate(() => window.demo.resets),
    [{ reason: 'switchboard.error.history_gap', reloaded: true }]);
  assert.equal(pageLoads, 1, 'reloaded from the view, not by reloading the page');
  assert.deepEqual(errors, []);
});
