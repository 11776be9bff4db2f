/**
 * The main thread's inline-encoding bound follows its own event-loop load: the full bound
 * while it is mostly idle, a quarter of it once it was busy over the last window.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InlineBudget } from '../src/encode/strategy';
import { delay } from './helpers/wait';

function busyFor(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // The event loop is held, as by a main thread busy writing to clients.
  }
}

test('inline budget - the full bound while the main thread is idle, a quarter after it was busy, the full bound again once idle', async () => {
  const budget = new InlineBudget(256);
  await delay(150);
  assert.equal(budget.limit(), 256, 'idle: the full bound');
  busyFor(150);
  assert.equal(budget.limit(), 64, 'after 150 ms of a held event loop: a quarter');
  await delay(150);
  assert.equal(budget.limit(), 256, 'idle again: the full bound');
});
