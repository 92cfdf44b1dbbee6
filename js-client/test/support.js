// What the js-client tests share: a real gateway process (temp config, ports the OS chooses, restart on
// the same ports), signed JSON-RPC publishes (DESIGN section 5), tickets from `switchboard ticket`, and polling.
import { spawn, execFile, execFileSync } from 'node:child_process';
import { createHmac, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';

import { connect as sbConnect } from '../switchboard.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(HERE, '..', '..');
export const SECRET = 'js-client-test-secret-0123456789';
export const REALM = 'realm1';
const BIN = process.env.SWITCHBOARD_BIN || path.join(REPO, 'target', 'debug', 'switchboard');

export const delay = (ms) => new Promise((r) => setTimeout(r, ms));

/** Debian's Chromium (or $CHROMIUM) and the flags the browser tests launch it with. */
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const chromiumMissing = !fs.existsSync(CHROMIUM);
/** The `skip` option of a browser test: a reason when Chromium is missing outside CI, else false (in CI a
 * missing Chromium fails the test: .ci/run installs it). */
export const chromiumSkip = chromiumMissing && process.env.CI !== 'true'
  ? `${CHROMIUM} not found (apt-get install -y chromium); skipped outside CI` : false;
/** Launches headless Chromium through playwright-core. */
export async function launchChromium() {
  if (chromiumMissing) throw new Error(`${CHROMIUM} is missing in CI: .ci/run installs it (apt-get install chromium)`);
  const { chromium } = await import('playwright-core');
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
}

/** Poll `fn` until it returns something truthy; fail after `ms` naming `what`. */
export async function eventually(fn, ms, what, every = 20) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    await delay(every);
  }
}

let counter = 0;
/** A topic or procedure no other test uses. */
export const uniqueUri = (prefix) => `${prefix}.p${process.pid}.n${++counter}`;

function config(port, rpcPort, gatewayKeys = '', realmKeys = '', sections = '') {
  return `[gateway]
listen = "127.0.0.1:${port}"
${gatewayKeys}

[security]
secret = "${SECRET}"

[ingest.jsonrpc]
listen = "127.0.0.1:${rpcPort}"

[[realms]]
name = "${REALM}"
anonymous_role = "anonymous"

[[realms.roles]]
name = "anonymous"
permissions = [{ uri = "", match = "prefix", allow = { subscribe = true, publish = true, call = true, register = true } }]

[[realms.roles]]
name = "member"
permissions = [{ uri = "app.", match = "prefix", allow = { subscribe = true, publish = true, call = true } }]
${realmKeys}
${sections}
`;
}

const children = new Set();
process.on('exit', () => children.forEach((c) => c.kill('SIGKILL')));

/**
 * A gateway (WebSocket + JSON-RPC) with a secret, an anonymous realm and a "member" role;
 * `gatewayKeys` are extra `key = value` lines for its `[gateway]` section, `realmKeys` extra TOML for its
 * realm (e.g. `[[realms.history]]` and `[[realms.models]]` tables). The first start listens on
 * port 0 and reads the bound ports from its ready file (`--ready-file`), then rewrites the config with
 * them, so that `restart()` (stop, then start again) comes back on the same ports.
 * `sections` are extra top-level TOML tables (e.g. `[cluster]`).
 * `stop()` ends it (SIGTERM, expecting exit 0); `kill()` ends it with SIGKILL (a node that dies).
 */
export async function startGateway({ gatewayKeys = '', realmKeys = '', sections = '' } = {}) {
  if (!fs.existsSync(BIN)) throw new Error(`gateway binary not found at ${BIN}: run cargo build -p switchboard`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'switchboard-js-client-'));
  const gw = { dir, configPath: path.join(dir, 'switchboard.toml'), bin: BIN, log: [] };
  const readyPath = path.join(dir, 'ready.json');
  fs.writeFileSync(gw.configPath, config(0, 0, gatewayKeys, realmKeys, sections));

  gw.spawn = async () => {
    const env = { ...process.env };
    for (const k of Object.keys(env)) if (k.startsWith('SWITCHBOARD__')) delete env[k];
    fs.rmSync(readyPath, { force: true });
    const child = spawn(BIN, ['gateway', '--config', gw.configPath, '--ready-file', readyPath],
      { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    for (const s of [child.stdout, child.stderr]) {
      s.on('data', (d) => {
        gw.log.push(d.toString());
        if (gw.log.length > 200) gw.log.shift();
        if (process.env.SWITCHBOARD_TEST_GATEWAY_LOG === '1') process.stderr.write(d);
      });
    }
    gw.exited = new Promise((r) => child.on('exit', (code, signal) => {
      children.delete(child);
      r({ code, signal });
    }));
    gw.child = child;
    const deadline = Date.now() + 30000;
    while (!fs.existsSync(readyPath)) {
      if (child.exitCode !== null) throw new Error(`gateway exited early (code ${child.exitCode}):\n${gw.log.join('')}`);
      if (Date.now() > deadline) throw new Error(`gateway not ready within 30 s:\n${gw.log.join('')}`);
      await delay(20);
    }
    const ready = JSON.parse(fs.readFileSync(readyPath, 'utf8'));
    const port = (address) => Number(address.split(':').pop());
    if (gw.port === undefined) {
      // First start: keep the ports the OS chose for every restart.
      gw.port = port(ready.http);
      gw.rpcPort = port(ready.jsonrpc);
      gw.url = `ws://127.0.0.1:${gw.port}/ws`;
      gw.base = `http://127.0.0.1:${gw.port}`;
      gw.rpcUrl = `http://127.0.0.1:${gw.rpcPort}/`;
      fs.writeFileSync(gw.configPath, config(gw.port, gw.rpcPort, gatewayKeys, realmKeys, sections));
    }
  };
  gw.stop = async ({ remove = true } = {}) => {
    const { child } = gw;
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10000);
      const { code } = await gw.exited;
      clearTimeout(timer);
      if (code !== 0) throw new Error(`gateway exited with ${code} after SIGTERM:\n${gw.log.join('')}`);
    }
    if (remove) fs.rmSync(dir, { recursive: true, force: true });
  };
  gw.kill = async () => {
    const { child } = gw;
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await gw.exited;
    }
  };
  gw.restart = async () => {
    await gw.stop({ remove: false });
    await gw.spawn();
  };
  await gw.spawn();
  return gw;
}

/** X-Switchboard-Signature for `body`. */
export function sign(body, secret = SECRET) {
  const t = Math.floor(Date.now() / 1000);
  const n = randomUUID().replace(/-/g, '');
  const s = createHmac('sha256', secret).update(`${t}.${n}.`).update(body).digest('hex');
  return `t=${t},n=${n},s=${s}`;
}

let rpcId = 0;
/** A signed JSON-RPC call to the gateway's ingestion endpoint; resolves with `result` or throws. */
export async function rpc(gw, method, params) {
  const body = JSON.stringify({ jsonrpc: '2.0', id: ++rpcId, method, params });
  const res = await fetch(gw.rpcUrl, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'X-Switchboard-Signature': sign(body) },
    body,
  });
  const answer = await res.json();
  if (answer.error) throw new Error(`JSON-RPC ${method}: ${JSON.stringify(answer.error)}`);
  return answer.result;
}

/** Emits a model change the way the emitter does (topic models.<model>). */
export function emitModel(gw, model, action, pk, data = {}, changed = []) {
  return rpc(gw, 'publish', { topic: `models.${model}`, kwargs: { action, model, pk, data, changed } });
}

/** Seeds (or resyncs) a model view the way the emitter's model(name).sync(rows) does: a `synced` event. */
export function syncModel(gw, model, rows = []) {
  return rpc(gw, 'publish', { topic: `models.${model}`, kwargs: { action: 'synced', model, rows } });
}

/**
 * A WebSocket class for the library (`WebSocket` option) that records every frame it sends (`sent`, decoded)
 * and whose connection the test can cut: `cut()` drops every open socket and makes new ones fail (a refused
 * port) until `heal()`, so the client keeps retrying meanwhile.
 */
export function cuttable() {
  const ctl = { blocked: false, sockets: new Set(), sent: [] };
  ctl.WebSocket = class extends WebSocket {
    constructor(url, protocols) {
      super(ctl.blocked ? 'ws://127.0.0.1:9/ws' : url, protocols);
      ctl.sockets.add(this);
      this.on('close', () => ctl.sockets.delete(this));
    }
    send(data, ...rest) {
      ctl.sent.push(JSON.parse(data));
      return super.send(data, ...rest);
    }
  };
  ctl.cut = () => {
    ctl.blocked = true;
    for (const s of ctl.sockets) s.terminate();
  };
  ctl.heal = () => { ctl.blocked = false; };
  // The client's options for a WebSocket-only client (no long-poll fallback past the cut).
  ctl.options = { WebSocket: ctl.WebSocket, longpoll: false };
  return ctl;
}

/** A ticket minted by `switchboard ticket` (last line of stdout). */
export function mintTicket(gw, authid, role = 'member', ttl = 60) {
  const out = execFileSync(gw.bin, ['ticket', '--config', gw.configPath, '--authid', authid, '--role', role, '--ttl', String(ttl)], { encoding: 'utf8' });
  return out.trim().split('\n').pop();
}

/** The library's connect() with the `ws` shim and fast retries; closed after the test `t`. */
export async function open(t, gw, options = {}) {
  const client = await sbConnect({ url: gw.url, realm: REALM, WebSocket, retry: { base: 100, cap: 1000 }, ...options });
  t.after(() => client.close());
  return client;
}

/** A FIFO whose `next()` waits (with a deadline) for the next pushed item. */
export class Inbox {
  constructor() {
    this.items = [];
    this.waiters = [];
  }
  push(x) {
    const w = this.waiters.shift();
    if (w) w(x);
    else this.items.push(x);
  }
  handler() {
    return (args, kwargs, details) => this.push({ args, kwargs, details });
  }
  next(ms = 5000) {
    if (this.items.length) return Promise.resolve(this.items.shift());
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(done), 1);
        reject(new Error(`nothing arrived within ${ms} ms`));
      }, ms);
      const done = (x) => {
        clearTimeout(timer);
        resolve(x);
      };
      this.waiters.push(done);
    });
  }
}

export const AMQP_URL = 'amqp://guest:guest@127.0.0.1:5672/%2f';

/** A TCP port on 127.0.0.1 that was free a moment ago (the tiny race with other processes is accepted); also
 * a port nothing listens on, for a node that is down. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Whether something listens at RabbitMQ's 127.0.0.1:5672. */
export function rabbitUp() {
  return new Promise((resolve) => {
    const socket = net.connect(5672, '127.0.0.1');
    socket.setTimeout(2000);
    socket.on('connect', () => { socket.destroy(); resolve(true); });
    socket.on('error', () => resolve(false));
    socket.on('timeout', () => { socket.destroy(); resolve(false); });
  });
}

/** The `skip` of a test that needs RabbitMQ: a reason when it is unreachable outside CI, else false (in CI the
 * test runs and fails: .ci/run starts RabbitMQ). */
export async function rabbitSkip() {
  if (await rabbitUp()) return false;
  return process.env.CI === 'true' ? false
    : 'RabbitMQ not reachable at 127.0.0.1:5672 (rabbitmq-server -detached); skipped outside CI';
}

const CLUSTER_HISTORY = `
[[realms.history]]
uri = "models."
match = "prefix"
limit = 10000
ttl_s = 3600

[[realms.history]]
uri = "app."
match = "prefix"
limit = 1000
ttl_s = 3600
`;

/**
 * `n` gateways of one cluster (`[cluster]`, like tests/python/test_cluster.py): a stream and node names of
 * their own (`stream`, `gws[i].node`), each with its WebSocket and JSON-RPC ports and history for
 * `models.` and `app.` (what live collections recover from after moving to another node). `stop()` stops the nodes still running and deletes the stream queue with
 * `rabbitmqctl delete_queue` (best effort: when rabbitmqctl is missing the stream ages out, `max_age_s` 60).
 */
export async function startCluster(n = 3) {
  const unique = randomUUID().replace(/-/g, '').slice(0, 12);
  const cluster = { stream: `sbtest.jsfailover.${unique}`, gws: [] };
  cluster.stop = async () => {
    await Promise.all(cluster.gws.map((gw) => gw.stop().catch((e) => console.error(String(e)))));
    await new Promise((r) => execFile('rabbitmqctl', ['delete_queue', cluster.stream], { timeout: 20000 }, () => r()));
  };
  try {
    for (let i = 1; i <= n; i++) {
      const node = `js${i}-${unique}`;
      const gw = await startGateway({
        realmKeys: CLUSTER_HISTORY,
        sections: `[cluster]\namqp_url = "${AMQP_URL}"\nstream = "${cluster.stream}"\nnode = "${node}"\nmax_age_s = 60\n`,
      });
      gw.node = node;
      cluster.gws.push(gw);
    }
  } catch (e) {
    await cluster.stop();
    throw e;
  }
  return cluster;
}
