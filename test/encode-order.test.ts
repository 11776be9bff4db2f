/**
 * The encoder pool hands batches to the fan-out strictly in ring order, whichever
 * thread encoded them. A small backlog is encoded on the main thread even while a
 * larger span is still in a worker; that inline batch must wait its turn behind it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { seqLog, seqs } from './helpers/events';
import { startWatched } from './helpers/feeder';
import { waitUntil } from './helpers/wait';

function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

test('encode order - batches from workers and from the main thread reach the client in ring order', { timeout: 60_000 }, async () => {
  const { feeder, watchers, close } = await startWatched(
    { queueSize: 100_000, batchSize: 512, inlineMaxEvents: 64 },
    [['WatchLogs', 'system']],
    'one WatchLogs stream',
  );
  try {
    let seq = 0;
    const push = (n: number): void => {
      for (let i = 0; i < n; i++) assert.ok(feeder.push(seqLog(++seq)), 'ring has room');
    };
    // Each round: a span too large to inline goes to a worker; while it is there, 530
    // more are published. When it completes, the pump claims 512 (a worker task) and
    // then the 18 left over, which it encodes inline and queues behind the 512.
    for (let round = 0; round < 20; round++) {
      push(300);
      await nextTurn();
      push(530);
      await nextTurn();
      push(1 + (round % 5));
      await nextTurn();
    }
    const total = seq;
    const w = watchers[0];
    await waitUntil(`${total} logs delivered`, () => w.messages.length >= total, 30_000, () => `got ${w.messages.length}`);
    const got = seqs(w);
    const firstOutOfOrder = got.findIndex((s, i) => s !== i + 1);
    assert.equal(firstOutOfOrder, -1, `event ${firstOutOfOrder + 1} arrived as #${got[firstOutOfOrder]}`);
    const { encoded } = feeder.stats();
    assert.ok(encoded.inlineBatches > 0, `some batches were encoded inline (${encoded.inlineBatches})`);
    assert.ok(encoded.batches - encoded.inlineBatches > 0, `some batches were encoded in workers (${encoded.batches - encoded.inlineBatches})`);
  } finally {
    await close();
  }
});
