// Presence against a real gateway: client.presence(topic) lists the authids subscribed to a topic, one per
// authid however many tabs it has, keeps the list current from switchboard.presence.<topic> (join with the
// first tab, leave with the last, state from setState), and reloads it after a re-join.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { cuttable, delay, eventually, mintTicket, open, startGateway, uniqueUri } from './support.js';

const REALM_KEYS = `
[[realms.roles]]
name = "viewer"
permissions = [
  { uri = "app.", match = "prefix", allow = { subscribe = true, call = true } },
  { uri = "switchboard.presence.app.", match = "prefix", allow = { subscribe = true } },
]
`;

let gw;
before(async () => { gw = await startGateway({ realmKeys: REALM_KEYS }); }, { timeout: 40000 });
after(() => gw && gw.stop());

const as = (t, authid, options = {}) => open(t, gw, { ticket: mintTicket(gw, authid, 'viewer'), ...options });

function recorder(room) {
  const seen = [];
  for (const kind of ['join', 'leave', 'state']) room.on(kind, (m) => seen.push([kind, m.authid, m.state]));
  return seen;
}

test('client.presence keeps one member per authid, joins with the first tab and leaves with the last', { timeout: 30000 }, async (t) => {
  const topic = uniqueUri('app.room');
  const watcher = await as(t, 'watcher');
  const room = await watcher.presence(topic);
  assert.deepEqual(room.list(), []);
  const seen = recorder(room);

  const tab1 = await as(t, 'bob');
  const tab2 = await as(t, 'bob');
  await tab1.setState({ status: 'here' });
  await tab1.subscribe(topic, () => {});
  await eventually(() => seen.length === 1, 5000, 'bob joins');
  assert.deepEqual(seen[0], ['join', 'bob', { status: 'here' }]);
  await tab2.subscribe(topic, () => {});
  await delay(200);
  assert.equal(seen.length, 1, 'no event for the second tab');
  assert.deepEqual(room.list(), [{ authid: 'bob', state: { status: 'here' } }]);

  await tab2.setState({ status: 'typing' });
  await eventually(() => seen.length === 2, 5000, 'the state event');
  assert.deepEqual(seen[1], ['state', 'bob', { status: 'typing' }]);
  assert.deepEqual(room.members.get('bob').state, { status: 'typing' });

  await tab2.close();
  await eventually(() => seen.length === 3, 5000, 'the state falls back to the remaining tab');
  assert.deepEqual(seen[2], ['state', 'bob', { status: 'here' }]);
  await delay(100);
  assert.equal(room.size, 1, 'bob still has a tab');
  await tab1.close();
  await eventually(() => seen.length === 4, 5000, 'bob leaves with his last tab');
  assert.equal(seen[3][0], 'leave');
  assert.equal(room.size, 0);
  await room.close();
});

test('client.presence reloads after a re-join and emits what changed while cut', { timeout: 30000 }, async (t) => {
  const topic = uniqueUri('app.room');
  const ctl = cuttable();
  const watcher = await as(t, 'watcher2', { WebSocket: ctl.WebSocket });
  await watcher.setState({ role: 'watching' });
  await watcher.subscribe(topic, () => {});
  const room = await watcher.presence(topic);
  assert.deepEqual(room.list(), [{ authid: 'watcher2', state: { role: 'watching' } }]);
  const seen = recorder(room);
  const carol = await as(t, 'carol');

  const session = watcher.session.id;
  ctl.cut();
  await eventually(() => watcher.state === 'connecting', 5000, 'the client notices the cut');
  await carol.subscribe(topic, () => {});
  ctl.heal();
  await eventually(() => watcher.state === 'open' && watcher.session.id !== session, 10000, 'the client re-joins');
  await eventually(() => room.size === 2, 5000, 'carol is listed after the re-join');
  assert.deepEqual(seen.filter(([kind]) => kind === 'join').map(([, authid]) => authid), ['carol']);
  assert.deepEqual(room.members.get('watcher2').state, { role: 'watching' }, 'the state is set again after the re-join');
  await room.close();
});
