// The reconnect schedule as a unit: exponential backoff with full jitter, so 500 clients dropped by one
// gateway restart spread their first retries instead of storming back together.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { backoff } from '../switchboard.js';

/** A seeded PRNG (mulberry32), so the test is deterministic. */
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Most items in any 100 ms window of `times` (ms). */
function busiestWindow(times, width = 100) {
  const sorted = [...times].sort((x, y) => x - y);
  let most = 0;
  for (let i = 0, j = 0; i < sorted.length; i += 1) {
    while (sorted[i] - sorted[j] >= width) j += 1;
    most = Math.max(most, i - j + 1);
  }
  return most;
}

test('each delay lies in [0, min(cap, base * 2^attempt))', () => {
  for (let attempt = 0; attempt < 12; attempt += 1) {
    const bound = Math.min(30000, 1000 * 2 ** attempt);
    assert.equal(backoff(attempt, { random: () => 0 }), 0);
    assert.equal(backoff(attempt, { random: () => 0.999999 }), Math.floor(0.999999 * bound));
    for (let i = 0; i < 200; i += 1) {
      const d = backoff(attempt);
      assert.ok(Number.isInteger(d) && d >= 0 && d < bound, `attempt ${attempt}: ${d}`);
    }
  }
  assert.ok(backoff(20, { base: 100, cap: 1000, random: () => 0.5 }) === 500, 'cap and base are options');
});

test('500 clients: first retries spread over a second, no 100 ms window holds more than 15% of them', () => {
  for (const seed of [1, 2, 3]) {
    const random = rng(seed);
    const first = Array.from({ length: 500 }, () => backoff(0, { random }));
    const most = busiestWindow(first);
    assert.ok(most <= 75, `seed ${seed}: ${most} of 500 first retries in one 100 ms window`);
    assert.ok(Math.max(...first) - Math.min(...first) > 900, 'spread over the whole first second');
  }
  // without jitter every client would come back in the same instant
  assert.equal(busiestWindow(Array(500).fill(1000)), 500);
});

test('500 clients retrying against a gateway that stays down 10 s: the load per 100 ms stays low', () => {
  const random = rng(42);
  const attempts = [];
  for (let c = 0; c < 500; c += 1) {
    let at = 0;
    for (let attempt = 0; at < 10000; attempt += 1) {
      at += backoff(attempt, { random });
      attempts.push(at);
    }
  }
  const most = busiestWindow(attempts.filter((x) => x < 10000));
  // first and second retries overlap in the first second; still a fifth of the clients at most, where
  // a fixed schedule would bring all 500 back in the same instant, again and again
  assert.ok(most <= 100, `${most} attempts in one 100 ms window`);
});
