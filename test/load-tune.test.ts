import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { runTune, tuneDefaults, validateTuneOptions } from '../src/load/tune';
import { formatTuneSummary } from '../src/load/tune-table';

test('tune - a small sweep finishes well within 2 minutes and recommends the smallest queue that met the target in its own table', async () => {
  const started = performance.now();
  const options = validateTuneOptions({
    ...tuneDefaults,
    queueSizes: [64, 2048],
    rates: [1500],
    slowDelaysUs: [500],
    encoderThreads: [null],
    batchSizes: [null],
    ringSizes: [null],
    pointDurationMs: 2000,
    maxWallMs: 110_000,
  });
  const t = await runTune(options);
  const table = formatTuneSummary(t);
  assert.ok(performance.now() - started < 120_000, table);
  assert.equal(t.points.length, 2, table);
  for (const p of t.points) {
    assert.deepEqual(p.failures, [], table);
    assert.equal(p.lossAccounted, true, `client loss must match the broker's counters at every point\n${table}`);
  }
  // Bursts of 500 cannot fit a 64-event queue: that point drops, the 2048 one does not.
  const [small, large] = t.points;
  assert.ok(small.worstDropPct > options.targetDropPct, table);
  assert.ok(large.meetsTarget, table);
  assert.equal(t.recommendations.length, 1, table);
  const rec = t.recommendations[0];
  const meeting = t.points.filter((p) => p.meetsTarget).sort((a, b) => a.settings.queueSize - b.settings.queueSize);
  assert.equal(rec.chosen?.settings.queueSize, meeting[0].settings.queueSize, table);
  assert.match(rec.text, new RegExp(`--queueSize ${meeting[0].settings.queueSize} keeps drops`), table);
  // Memory per client is the queue size times the mean encoded event (meanEventBytes is rounded for display).
  assert.ok(rec.chosen !== null, table);
  const c = rec.chosen;
  assert.ok(c.meanEventBytes > 350 && c.meanEventBytes < 650, table);
  assert.ok(Math.abs(c.queueBytesPerClient - c.settings.queueSize * c.meanEventBytes) <= c.settings.queueSize / 2, table);
});
