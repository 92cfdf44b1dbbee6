// `switchboard init` end to end in headless Chromium: the binary writes switchboard.toml and index.html, the
// gateway runs with that config, Chromium opens index.html straight from disk (file://, nothing serves it),
// and the printed emit command, run as printed, makes the note appear on the page.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

import { REPO, chromiumSkip as skip, delay, freePort, launchChromium } from './support.js';

const BIN = process.env.SWITCHBOARD_BIN || path.join(REPO, 'target', 'debug', 'switchboard');

/** Runs a printed `switchboard ...` line as printed, through sh, with the tested binary first on PATH. */
const shellEnv = (extra) => {
  const env = { ...process.env, PATH: `${path.dirname(BIN)}:${process.env.PATH}`, ...extra };
  for (const k of Object.keys(env)) if (k.startsWith('SWITCHBOARD__') && !(k in extra)) delete env[k];
  return env;
};

const cleanups = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

test('the page switchboard init writes shows the note its printed emit command sends', { skip, timeout: 90000 }, async () => {
  if (!fs.existsSync(BIN)) throw new Error(`gateway binary not found at ${BIN}: run cargo build -p switchboard`);
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'switchboard-init-page-'));
  cleanups.push(() => fs.rmSync(base, { recursive: true, force: true }));
  const dir = path.join(base, 'app');
  const port = await freePort();
  const stdout = execFileSync(BIN, ['init', dir, '--listen', `127.0.0.1:${port}`], { encoding: 'utf8', timeout: 20000 });
  const line = (prefix) => {
    const found = stdout.split('\n').map((l) => l.trim()).find((l) => l.startsWith(prefix));
    assert.ok(found, `no line starting ${prefix} in:\n${stdout}`);
    return found;
  };
  const page = path.join(dir, 'index.html');
  assert.equal(line('open '), `open ${page} in a browser`);

  // The printed gateway command; its ingestion listeners on ports the OS chooses (the defaults may be taken).
  const ready = path.join(base, 'ready.json');
  const log = [];
  const gateway = spawn('sh', ['-c', `exec ${line('switchboard gateway ')} --ready-file ${ready}`], {
    env: shellEnv({ SWITCHBOARD__INGEST__JSONRPC__LISTEN: '127.0.0.1:0', SWITCHBOARD__INGEST__ZMQ__ENDPOINT: 'tcp://127.0.0.1:0' }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  gateway.stdout.on('data', (d) => log.push(String(d)));
  gateway.stderr.on('data', (d) => log.push(String(d)));
  const exited = new Promise((r) => gateway.on('exit', (code) => r(code)));
  cleanups.push(async () => {
    if (gateway.exitCode === null && gateway.signalCode === null) {
      gateway.kill('SIGTERM');
      const timer = setTimeout(() => gateway.kill('SIGKILL'), 10000);
      await exited;
      clearTimeout(timer);
    }
  });
  const deadline = Date.now() + 30000;
  while (!fs.existsSync(ready)) {
    if (gateway.exitCode !== null) throw new Error(`gateway exited early (${gateway.exitCode}):\n${log.join('')}`);
    if (Date.now() > deadline) throw new Error(`gateway not ready within 30 s:\n${log.join('')}`);
    await delay(20);
  }
  const addresses = JSON.parse(fs.readFileSync(ready, 'utf8'));
  assert.equal(addresses.http, `127.0.0.1:${port}`, 'the gateway listens where the page looks');

  const browser = await launchChromium();
  cleanups.push(() => browser.close());
  const tab = await browser.newPage();
  const errors = [];
  tab.on('pageerror', (e) => errors.push(String(e)));
  tab.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  await tab.goto(pathToFileURL(page).href);
  await tab.waitForFunction(() => document.getElementById('state').textContent === 'open', null, { timeout: 15000 })
    .catch((e) => { throw new Error(`${e.message}\npage errors: ${errors.join('\n')}\ngateway log:\n${log.join('')}`); });

  // The printed emit command, reaching the gateway's JSON-RPC port through the environment.
  execFileSync('sh', ['-c', `exec ${line('switchboard emit ')}`], {
    env: shellEnv({ SWITCHBOARD__INGEST__JSONRPC__LISTEN: addresses.jsonrpc }), encoding: 'utf8', timeout: 30000,
  });
  await tab.waitForFunction(() => document.querySelector('#notes li')?.textContent === '1: hello', null, { timeout: 10000 })
    .catch((e) => { throw new Error(`${e.message}\npage errors: ${errors.join('\n')}`); });
  assert.deepEqual(errors, [], 'no errors in the page');
});
