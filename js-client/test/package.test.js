// switchboard.js as an npm package: its version is the gateway's (the workspace version in Cargo.toml), the
// tarball `npm pack` makes holds only the library, its types and README, and a scratch project that installs
// the tarball (offline: the package has no dependencies) imports it by name.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { REPO } from './support.js';

const HERE = path.join(REPO, 'js-client');
const pkg = JSON.parse(fs.readFileSync(path.join(HERE, 'package.json'), 'utf8'));
const npm = (args, cwd) => execFileSync('npm', args, { cwd, encoding: 'utf8', timeout: 60000, stdio: ['ignore', 'pipe', 'pipe'] });

test('the package version is the gateway\'s (Cargo.toml [workspace.package] version)', () => {
  const cargo = fs.readFileSync(path.join(REPO, 'Cargo.toml'), 'utf8');
  const section = cargo.split(/^\[/m).find((s) => s.startsWith('workspace.package]'));
  assert.ok(section, 'Cargo.toml has [workspace.package]');
  const version = section.match(/^version\s*=\s*"([^"]+)"/m)?.[1];
  assert.ok(version, 'Cargo.toml [workspace.package] has a version');
  assert.equal(pkg.version, version, 'js-client/package.json version must follow the workspace version');
});

test('npm pack holds the library, its types and README; an offline install imports it by name', { timeout: 120000 }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'switchboard-pack-'));
  try {
    const [packed] = JSON.parse(npm(['pack', '--json', '--pack-destination', dir], HERE));
    assert.deepEqual(packed.files.map((f) => f.path).sort(),
      ['README.md', 'package.json', 'switchboard.d.ts', 'switchboard.js']);
    const tarball = path.join(dir, packed.filename);
    assert.ok(fs.existsSync(tarball), `${tarball} written`);

    const app = path.join(dir, 'app');
    fs.mkdirSync(app);
    fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'scratch', version: '0.0.0', type: 'module', private: true }));
    npm(['install', tarball, '--offline', '--no-audit', '--no-fund', '--ignore-scripts'], app);
    const installed = path.join(app, 'node_modules', ...pkg.name.split('/'));
    assert.ok(fs.existsSync(path.join(installed, 'switchboard.d.ts')), 'types installed');

    const script = `import { connect, backoff, Client, WampError, Result } from '${pkg.name}';
      import * as all from '${pkg.name}';
      console.log(JSON.stringify({ connect: typeof connect, backoff: typeof backoff, Client: typeof Client,
        WampError: typeof WampError, Result: typeof Result, names: Object.keys(all).sort() }));`;
    const out = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script],
      { cwd: app, encoding: 'utf8', timeout: 30000 }));
    assert.deepEqual(out, {
      connect: 'function', backoff: 'function', Client: 'function', WampError: 'function', Result: 'function',
      names: ['Client', 'LongPoll', 'Result', 'WampError', 'backoff', 'connect', 'longPollUrl'],
    });
    // The resolved entry points are the ones `exports` names.
    const resolved = execFileSync(process.execPath, ['--input-type=module', '-e',
      `console.log(import.meta.resolve('${pkg.name}'))`], { cwd: app, encoding: 'utf8', timeout: 30000 }).trim();
    assert.ok(resolved.endsWith(`/node_modules/${pkg.name}/switchboard.js`), resolved);
    assert.deepEqual(pkg.exports, { '.': { types: './switchboard.d.ts', default: './switchboard.js' } });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
