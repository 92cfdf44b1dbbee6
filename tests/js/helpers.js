'use strict';
// Shared helpers for the Autobahn|JS interop tests: start/stop one gateway per test file, open
// Autobahn|JS connections as promises, collect deliveries, and a tiny raw WAMP peer for the few
// things Autobahn|JS cannot do itself (it has no INTERRUPT support as a callee).
//
// Environment:
//   SWITCHBOARD_BIN          gateway binary (default <repo>/target/debug/switchboard)
//   SWITCHBOARD_TEST_WS_URL  use an already running router at this ws:// URL instead of spawning one
//   SWITCHBOARD_TEST_REALM   realm on that router (default realm1)
//   SWITCHBOARD_TEST_GATEWAY_LOG=1  copy the spawned gateway's output to stderr

// Autobahn|JS binds console.warn when it loads and prints a warning for every closed connection;
// drop those routine lines, keep everything else.
const ROUTINE_WARN = /^(connection closed|auto-reconnect disabled|giving up trying to auto-reconnect)/;
const originalWarn = console.warn;
console.warn = (...args) => {
  if (typeof args[0] === 'string' && ROUTINE_WARN.test(args[0])) return;
  originalWarn.apply(console, args);
};

const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { before, after } = require('node:test');

const autobahn = require('autobahn');
const WebSocket = require('ws');
const msgpack = require('msgpack5')({ forceFloat64: true });

const REPO = path.resolve(__dirname, '..', '..');
const REALM = process.env.SWITCHBOARD_TEST_REALM || 'realm1';
const MAX_ID = 2 ** 53;

const SERIALIZERS = [
  { name: 'json', protocol: 'wamp.2.json', make: () => new autobahn.serializer.JSONSerializer() },
  { name: 'msgpack', protocol: 'wamp.2.msgpack', make: () => new autobahn.serializer.MsgpackSerializer() },
];

// ---------------------------------------------------------------------------------------------
// small utilities

let uriCounter = 0;
/** A URI no other test uses: `<prefix>.<pid>.<counter>.<random>`. */
function uniqueUri(prefix) {
  uriCounter += 1;
  return `${prefix}.p${process.pid}.n${uriCounter}.r${Math.floor(Math.random() * 1e9)}`;
}

function delay(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Resolve/reject like `promise`, or reject with a message naming `what` after `ms`. */
function within(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([Promise.resolve(promise), timeout]).finally(() => clearTimeout(timer));
}

/** Poll `fn` (sync or async) until it returns a truthy value; fail after `ms`. */
async function eventually(fn, ms, what, intervalMs = 25) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`condition not met within ${ms} ms: ${what} (last: ${describe(last)})`);
    }
    await delay(intervalMs);
  }
}

function describe(x) {
  if (x instanceof Error) return `${x.name}: ${x.message}`;
  if (x && typeof x === 'object' && 'error' in x && 'args' in x) {
    return `WAMP error ${x.error} args=${safeJson(x.args)} kwargs=${safeJson(x.kwargs)}`;
  }
  return safeJson(x);
}

function safeJson(x) {
  try {
    return JSON.stringify(x);
  } catch {
    return String(x);
  }
}

function assertWampId(id, what) {
  assert.equal(typeof id, 'number', `${what} should be a number, got ${describe(id)}`);
  assert.ok(Number.isInteger(id) && id >= 1 && id <= MAX_ID, `${what} should be an integer in [1, 2^53], got ${id}`);
}

/**
 * Await a promise that must reject with a WAMP error (autobahn.Error) whose URI is `uri`
 * (a string, an array of accepted URIs, or a RegExp). Returns the error.
 */
async function expectWampError(promise, uri, what, ms = 5000) {
  let result;
  try {
    result = await within(promise, ms, what);
  } catch (err) {
    if (err instanceof Error && /^timed out after/.test(err.message)) throw err;
    assert.ok(err && typeof err.error === 'string',
      `${what}: expected WAMP error ${uri}, got a non-WAMP rejection: ${describe(err)}`);
    if (uri instanceof RegExp) {
      assert.match(err.error, uri, `${what}: expected a WAMP error matching ${uri}, got ${describe(err)}`);
    } else {
      const accepted = Array.isArray(uri) ? uri : [uri];
      assert.ok(accepted.includes(err.error),
        `${what}: expected WAMP error ${accepted.join(' or ')}, got ${describe(err)}`);
    }
    return err;
  }
  assert.fail(`${what}: expected WAMP error ${uri}, but it succeeded with ${describe(result)}`);
}

/** FIFO of received things with promise-based `next()`. */
class Inbox {
  constructor(name) {
    this.name = name;
    this.items = [];
    this.waiters = [];
    this.all = [];
  }

  push(item) {
    this.all.push(item);
    const waiter = this.waiters.shift();
    if (waiter) waiter(item);
    else this.items.push(item);
  }

  next(ms = 3000, what) {
    if (this.items.length) return Promise.resolve(this.items.shift());
    let resolveFn;
    const p = new Promise((resolve) => {
      resolveFn = resolve;
      this.waiters.push(resolve);
    });
    return within(p, ms, what || `next item in ${this.name}`).catch((e) => {
      const i = this.waiters.indexOf(resolveFn);
      if (i >= 0) this.waiters.splice(i, 1);
      throw e;
    });
  }

  /** Handler for session.subscribe that records {args, kwargs, details}. */
  eventHandler() {
    return (args, kwargs, details) => this.push({ args, kwargs, details });
  }
}

// ---------------------------------------------------------------------------------------------
// gateway process

/** The gateway's config: realm1 open to anonymous sessions, then `extraConfig` (TOML) as is. */
function gatewayConfig(extraConfig = '') {
  return [
    '[gateway]',
    'listen = "127.0.0.1:0"',

    'max_message_bytes = 1048576',
    '',
    '[[realms]]',
    `name = "${REALM}"`,
    'anonymous_role = "anonymous"',
    '',
    '[[realms.roles]]',
    'name = "anonymous"',
    'permissions = [{ uri = "", match = "prefix", allow = { subscribe = true, publish = true, call = true, register = true } }]',
    '',
    extraConfig,
  ].join('\n');
}

const liveChildren = new Set();
process.on('exit', () => {
  for (const child of liveChildren) {
    try {
      child.kill('SIGKILL');
    } catch {
      /* already gone */
    }
  }
});

/**
 * Spawn the gateway with a fresh config on port 0 (the OS chooses) and wait, with a deadline, for the
 * ready file (`--ready-file`) it writes once listening, which names the bound address.
 * `extraConfig` is TOML appended to the config (more realms, `[security]`, ...).
 */
async function startGateway({ readyTimeoutMs = 30000, extraConfig = '' } = {}) {
  if (process.env.SWITCHBOARD_TEST_WS_URL) {
    return {
      url: process.env.SWITCHBOARD_TEST_WS_URL, external: true, exited: new Promise(() => {}), logTail: () => '', stop: async () => {},
    };
  }
  const bin = process.env.SWITCHBOARD_BIN || path.join(REPO, 'target', 'debug', 'switchboard');
  if (!fs.existsSync(bin)) {
    throw new Error(`gateway binary not found at ${bin}: build it with \`cargo build -p switchboard\` ` +
      'or set SWITCHBOARD_BIN');
  }
  return spawnGateway(bin, readyTimeoutMs, extraConfig);
}

async function spawnGateway(bin, readyTimeoutMs, extraConfig) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'switchboard-js-'));
  const configPath = path.join(dir, 'switchboard.toml');
  const readyPath = path.join(dir, 'ready.json');
  fs.writeFileSync(configPath, gatewayConfig(extraConfig));

  // keep the config hermetic: no SWITCHBOARD__SECTION__KEY overrides from the caller's environment
  const env = { ...process.env, RUST_BACKTRACE: '1' };
  for (const key of Object.keys(env)) if (key.startsWith('SWITCHBOARD__')) delete env[key];

  const child = spawn(bin, ['gateway', '--config', configPath, '--ready-file', readyPath],
    { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
  liveChildren.add(child);
  const lines = [];
  const echo = process.env.SWITCHBOARD_TEST_GATEWAY_LOG === '1';
  const collector = () => {
    let partial = '';
    const add = (line) => {
      const clean = line.replace(/\x1b\[[0-9;]*m/g, ''); // tracing's colours
      lines.push(clean);
      if (lines.length > 400) lines.shift();
      if (echo) process.stderr.write(`[gateway] ${clean}\n`);
    };
    return {
      data(chunk) {
        const parts = (partial + chunk.toString('utf8')).split('\n');
        partial = parts.pop();
        parts.forEach(add);
      },
      end() {
        if (partial) add(partial);
        partial = '';
      },
    };
  };
  for (const stream of [child.stdout, child.stderr]) {
    const c = collector();
    stream.on('data', c.data);
    stream.on('end', c.end);
  }
  let spawnError = null;
  child.on('error', (e) => {
    spawnError = e;
  });
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => {
    liveChildren.delete(child);
    resolve({ code, signal });
  }));
  const hasExited = () => child.exitCode !== null || child.signalCode !== null || spawnError !== null;
  const logTail = (n = 60) => lines.slice(-n).join('\n');

  const deadline = Date.now() + readyTimeoutMs;
  let ready;
  for (;;) {
    if (fs.existsSync(readyPath)) {
      ready = JSON.parse(fs.readFileSync(readyPath, 'utf8'));
      break;
    }
    if (hasExited()) {
      const how = spawnError ? `failed to spawn: ${spawnError.message}` : `exited (code=${child.exitCode}, signal=${child.signalCode})`;
      fs.rmSync(dir, { recursive: true, force: true });
      throw new Error(`gateway ${how} before it was ready\nconfig:\n${gatewayConfig(extraConfig)}\noutput:\n${logTail()}`);
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      await exited;
      fs.rmSync(dir, { recursive: true, force: true });
      throw new Error(`gateway wrote no ready file within ${readyTimeoutMs} ms\noutput:\n${logTail()}`);
    }
    await delay(20);
  }
  const port = Number(ready.http.split(':').pop());
  const base = `http://${ready.http}`;

  return {
    url: `ws://127.0.0.1:${port}/ws`,
    base,
    bin,
    configPath,
    port,
    external: false,
    exited,
    logTail,
    async stop() {
      try {
        if (hasExited()) {
          throw new Error(`gateway died during the tests (code=${child.exitCode}, signal=${child.signalCode})\noutput:\n${logTail()}`);
        }
        child.kill('SIGTERM');
        const result = await within(exited, 10000, 'gateway exit after SIGTERM').catch(() => null);
        if (!result) {
          child.kill('SIGKILL');
          await exited;
          throw new Error(`gateway did not exit within 10 s of SIGTERM\noutput:\n${logTail()}`);
        }
        if (echo) process.stderr.write(`[gateway] exited code=${result.code} signal=${result.signal}\n`);
        if (result.code !== 0) {
          throw new Error(`gateway exited with code=${result.code} signal=${result.signal} after SIGTERM (expected a clean exit 0)` +
            `\noutput:\n${logTail()}`);
        }
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

/**
 * Register file-level before/after hooks that run one gateway for the whole test file.
 * Returns an object that holds `url` etc. once the `before` hook has run.
 */
function useGateway(options = {}) {
  const gw = {};
  before(async () => {
    Object.assign(gw, await startGateway(options));
  }, { timeout: 40000 });
  after(async () => {
    if (gw.stop) await gw.stop();
  }, { timeout: 20000 });
  return gw;
}

// ---------------------------------------------------------------------------------------------
// Autobahn|JS connections

/**
 * Open an Autobahn|JS connection and resolve once the WAMP session is joined.
 * The returned client has: session, details (WELCOME.Details), connection, id (session id),
 * closed (promise of {reason, details} from Connection.onclose), close(), internalErrors.
 */
function connect(gw, ser, { realm = REALM, timeoutMs = 5000, ...extra } = {}) {
  return new Promise((resolve, reject) => {
    const client = { serializer: ser.name, internalErrors: [], userErrors: [], closeInfo: null };
    let opened = false;
    let settled = false;
    let resolveClosed;
    client.closed = new Promise((r) => {
      resolveClosed = r;
    });
    const connection = new autobahn.Connection({
      url: gw.url,
      realm,
      serializers: [ser.make()],
      max_retries: 0,
      retry_if_unreachable: false,
      on_internal_error: (error, message) => client.internalErrors.push(`${message || ''} ${describe(error)}`.trim()),
      on_user_error: (error, message) => client.userErrors.push(`${message || ''} ${describe(error)}`.trim()),
      ...extra,
    });
    client.connection = connection;
    const timer = setTimeout(() => {
      if (settled) return;
      settled = true;
      reject(new Error(`WAMP session (${ser.name}) to ${gw.url} not joined within ${timeoutMs} ms`));
      try {
        connection.close();
      } catch {
        /* not open */
      }
    }, timeoutMs);
    connection.onopen = (session, details) => {
      opened = true;
      clearTimeout(timer);
      client.session = session;
      client.details = details;
      client.id = session.id;
      if (!settled) {
        settled = true;
        resolve(client);
      }
    };
    connection.onclose = (reason, details) => {
      client.closeInfo = { reason, details };
      resolveClosed(client.closeInfo);
      if (!opened && !settled) {
        settled = true;
        clearTimeout(timer);
        const err = new Error(`WAMP session (${ser.name}) to ${gw.url} failed before join: ${reason} ${describe(details)}`);
        err.closeInfo = client.closeInfo;
        reject(err);
      }
      return true; // never retry
    };
    client.close = async (ms = 3000) => {
      if (!client.closeInfo) {
        try {
          connection.close();
        } catch {
          /* already closed */
        }
      }
      const info = await within(client.closed, ms, `close of ${ser.name} session ${client.id}`).catch((e) => {
        // the router did not answer GOODBYE / close the socket: drop the transport ourselves
        if (connection._transport) connection._transport.close();
        throw e;
      });
      return info;
    };
    connection.open();
  });
}

/**
 * Per-test pool of connections: `open()` connects, and at the end of the test every connection is
 * closed and checked for Autobahn protocol-violation reports (which mean the router sent something
 * Autobahn|JS considers illegal).
 */
function pool(t, gw, ser) {
  const clients = [];
  const p = {
    async open(opts) {
      const c = await connect(gw, ser, opts);
      clients.push(c);
      return c;
    },
    /** Assert that no Autobahn|JS client saw a protocol violation or an unexpected disconnect. */
    assertHealthy() {
      for (const c of clients) {
        assert.deepEqual(c.internalErrors, [], `session ${c.id} (${ser.name}) reported internal errors`);
        if (c.closeInfo && !c.expectClose) {
          assert.fail(`session ${c.id} (${ser.name}) closed unexpectedly: ${describe(c.closeInfo)}`);
        }
      }
    },
  };
  t.after(async () => {
    await Promise.allSettled(clients.map((c) => c.close()));
  });
  return p;
}

/** Run `fn` for every serializer as a separate test named `<serializer>: <name>`. */
function forEachSerializer(testFn, name, opts, fn) {
  for (const ser of SERIALIZERS) {
    testFn(`${ser.name}: ${name}`, opts, (t) => fn(t, ser));
  }
}

// ---------------------------------------------------------------------------------------------
// raw WAMP peer (only where Autobahn|JS lacks the feature under test)

const MSG = {
  HELLO: 1, WELCOME: 2, ABORT: 3, GOODBYE: 6, ERROR: 8,
  PUBLISH: 16, PUBLISHED: 17, SUBSCRIBE: 32, SUBSCRIBED: 33, UNSUBSCRIBE: 34, UNSUBSCRIBED: 35, EVENT: 36,
  CALL: 48, CANCEL: 49, RESULT: 50, REGISTER: 64, REGISTERED: 65, UNREGISTER: 66, UNREGISTERED: 67,
  INVOCATION: 68, INTERRUPT: 69, YIELD: 70,
};

class RawPeer {
  static encodeMsgpack(msg) {
    return msgpack.encode(msg);
  }

  /** Open the WebSocket only (no HELLO). */
  static async open(gw, ser, ms = 5000) {
    const peer = new RawPeer(ser);
    const ws = new WebSocket(gw.url, [ser.protocol]);
    peer.ws = ws;
    ws.on('message', (data) => {
      let msg;
      try {
        msg = ser.name === 'json' ? JSON.parse(data.toString('utf8')) : msgpack.decode(data);
      } catch (e) {
        peer.inbox.push(['DECODE_ERROR', String(e)]);
        return;
      }
      peer.inbox.push(msg);
    });
    peer.closed = new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: String(reason) })));
    await within(new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    }), ms, `raw WebSocket open (${ser.name})`);
    assert.equal(ws.protocol, ser.protocol, 'negotiated WebSocket subprotocol');
    return peer;
  }

  /** Open the WebSocket and join REALM with the given HELLO.Details.roles. */
  static async connect(gw, ser, roles, ms = 5000) {
    const peer = await RawPeer.open(gw, ser, ms);
    peer.send([MSG.HELLO, REALM, { roles }]);
    const welcome = await peer.next(ms, 'WELCOME');
    assert.equal(welcome[0], MSG.WELCOME, `expected WELCOME, got ${describe(welcome)}`);
    peer.id = welcome[1];
    peer.welcome = welcome;
    return peer;
  }

  constructor(ser) {
    this.ser = ser;
    this.inbox = new Inbox(`raw ${ser.name} peer`);
    this.nextRequest = 0;
  }

  send(msg) {
    this.ws.send(this.ser.name === 'json' ? JSON.stringify(msg) : RawPeer.encodeMsgpack(msg));
  }

  request() {
    this.nextRequest += 1;
    return this.nextRequest;
  }

  next(ms, what) {
    return this.inbox.next(ms, `${what} on raw ${this.ser.name} peer`);
  }

  async close(ms = 3000) {
    if (this.ws.readyState === WebSocket.OPEN) {
      this.send([MSG.GOODBYE, {}, 'wamp.close.normal']);
      this.ws.close(1000);
    }
    await within(this.closed, ms, 'raw peer close').catch(() => this.ws.terminate());
  }
}

module.exports = {
  autobahn,
  SERIALIZERS,
  MSG,
  REALM,
  Inbox,
  RawPeer,
  assertWampId,
  connect,
  delay,
  describe,
  eventually,
  expectWampError,
  forEachSerializer,
  pool,
  startGateway,
  uniqueUri,
  useGateway,
  within,
};
