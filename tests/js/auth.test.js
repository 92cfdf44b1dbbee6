'use strict';
// Authentication with unmodified Autobahn|JS, once per serializer: WAMP ticket (minted by
// `switchboard ticket`, the web app's side) and WAMP-CRA (Autobahn's own auth_cra), salted or not.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const { autobahn, connect, describe, forEachSerializer, pool, useGateway } = require('./helpers');

const REALM = 'secure';
const EXTRA_CONFIG = `
[security]
secret = "js-ticket-secret-0123456789"

[[realms]]
name = "${REALM}"

[[realms.roles]]
name = "member"
permissions = [{ uri = "app.public", match = "prefix", allow = { subscribe = true } }]

[[realms.users]]
authid = "backend"
secret = "backend-secret"
role = "member"

[[realms.users]]
authid = "salty"
secret = "s33kr1t"
role = "member"
salt = "salt123"
iterations = 100
keylen = 32
`;

const gw = useGateway({ extraConfig: EXTRA_CONFIG });
// Against an external router (SWITCHBOARD_TEST_WS_URL) there is no `secure` realm and no ticket secret.
const T = { timeout: 15000, skip: Boolean(process.env.SWITCHBOARD_TEST_WS_URL) };

/** A ticket from `switchboard ticket` (the last line of its stdout). */
function mint(authid, role = 'member') {
  const out = execFileSync(gw.bin, ['ticket', '--config', gw.configPath, '--authid', authid, '--role', role,
    '--ttl', '60'], { encoding: 'utf8' });
  return out.trim().split('\n').pop();
}

function ticketOptions(authid, ticket) {
  return {
    realm: REALM,
    authmethods: ['ticket'],
    authid,
    onchallenge: (session, method) => {
      assert.equal(method, 'ticket');
      return ticket;
    },
  };
}

function craOptions(authid, secret) {
  return {
    realm: REALM,
    authmethods: ['wampcra'],
    authid,
    onchallenge: (session, method, extra) => {
      assert.equal(method, 'wampcra');
      const key = extra.salt
        ? autobahn.auth_cra.derive_key(secret, extra.salt, extra.iterations, extra.keylen)
        : secret;
      return autobahn.auth_cra.sign(key, extra.challenge);
    },
  };
}

/** Connecting must fail with ABORT `reason`; returns the ABORT details. */
async function expectAbort(ser, options, reason, what) {
  let err;
  try {
    const c = await connect(gw, ser, options);
    await c.close();
  } catch (e) {
    err = e;
  }
  assert.ok(err, `${what}: joining must fail`);
  assert.ok(err.closeInfo, `${what}: expected an ABORT, got: ${err.message}`);
  assert.equal(err.closeInfo.details.reason, reason, `${what}: ABORT reason in ${describe(err.closeInfo)}`);
  return err.closeInfo.details;
}

forEachSerializer(test, 'ticket join: WELCOME carries authid, authrole and authmethod', T, async (t, ser) => {
  const p = pool(t, gw, ser);
  const c = await p.open(ticketOptions('alice', mint('alice')));
  assert.equal(c.details.authid, 'alice');
  assert.equal(c.details.authrole, 'member');
  assert.equal(c.details.authmethod, 'ticket');
  // the role's permissions apply: app.public is allowed, the rest is not
  await c.session.subscribe('app.public.news', () => {});
  await assert.rejects(c.session.subscribe('app.private', () => {}), (e) => e.error === 'wamp.error.not_authorized');
  p.assertHealthy();
});

forEachSerializer(test, 'a forged ticket is refused with wamp.error.authentication_failed', T, async (t, ser) => {
  const good = mint('alice');
  const [payload, mac] = good.split('.');
  const forged = `${payload}.${mac[0] === '0' ? '1' : '0'}${mac.slice(1)}`;
  const details = await expectAbort(ser, ticketOptions('alice', forged), 'wamp.error.authentication_failed', 'forged');
  assert.ok(!String(details.message).includes('js-ticket-secret'), `ABORT leaks the secret: ${describe(details)}`);
  await expectAbort(ser, ticketOptions('bob', good), 'wamp.error.authentication_failed', 'wrong authid');
});

forEachSerializer(test, 'anonymous is refused where the realm names no anonymous role', T, async (t, ser) => {
  await expectAbort(ser, { realm: REALM }, 'wamp.error.not_authorized', 'anonymous');
});

for (const [authid, secret] of [['backend', 'backend-secret'], ['salty', 's33kr1t']]) {
  forEachSerializer(test, `WAMP-CRA join as ${authid}`, T, async (t, ser) => {
    const p = pool(t, gw, ser);
    const c = await p.open(craOptions(authid, secret));
    assert.equal(c.details.authid, authid);
    assert.equal(c.details.authrole, 'member');
    assert.equal(c.details.authmethod, 'wampcra');
    p.assertHealthy();
    await expectAbort(ser, craOptions(authid, 'wrong'), 'wamp.error.authentication_failed', 'wrong secret');
  });
}
