// Drives headless Chromium (Debian's /usr/bin/chromium, or $CHROMIUM) for test_django_e2e.py with
// js-client's playwright-core (npm ci in js-client): one JSON command per stdin line, one JSON answer per
// stdout line. Each page gets its own browser context (its own cookies, hence its own Django session).
//   {"cmd": "open", "page": "alice", "url": "..."}            -> {"ok": true}
//   {"cmd": "eval", "page": "alice", "js": "expression"}        -> {"ok": true, "value": ...} (awaited)
//   {"cmd": "wait", "page": "alice", "js": "expression", "timeout": 10000}
//   {"cmd": "errors", "page": "alice"}                          -> {"ok": true, "value": [page errors]}
import { createRequire } from 'node:module';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, '..', '..', 'js-client', 'package.json'));
const { chromium } = require('playwright-core');

const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: ARGS, headless: true });
const pages = new Map();

async function handle({ cmd, page: name, url, js, timeout = 10000 }) {
  if (cmd === 'open') {
    const context = await browser.newContext();
    const page = await context.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
    pages.set(name, { page, errors });
    await page.goto(url);
    return null;
  }
  const entry = pages.get(name);
  if (!entry) throw new Error(`no page ${name}`);
  if (cmd === 'eval') return await entry.page.evaluate(js);
  if (cmd === 'wait') {
    try {
      await entry.page.waitForFunction(js, null, { timeout });
    } catch (e) {
      const body = await entry.page.evaluate(() => document.body.innerText).catch(() => '?');
      throw new Error(`${e.message.split('\n')[0]}\npage text:\n${body}\npage errors: ${entry.errors.join('\n')}`);
    }
    return null;
  }
  if (cmd === 'errors') return entry.errors;
  throw new Error(`unknown command ${cmd}`);
}

const lines = readline.createInterface({ input: process.stdin });
process.stdout.write(JSON.stringify({ ok: true, value: 'ready' }) + '\n');
for await (const line of lines) {
  let answer;
  try {
    answer = { ok: true, value: (await handle(JSON.parse(line))) ?? null };
  } catch (e) {
    answer = { ok: false, error: String(e && e.stack || e) };
  }
  process.stdout.write(JSON.stringify(answer) + '\n');
}
await browser.close();
