import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { autoRates, probeMaxRate, recommend, runTune, tuneDefaults, validateTuneOptions } from '../src/tune';
import type { TunePoint, TuneReport } from '../src/tune';
import { formatTuneSummary } from '../src/report';

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
  // The bound on what a queue references is the queue size times the mean encoded event (meanEventBytes is rounded for display).
  assert.ok(rec.chosen !== null, table);
  const c = rec.chosen;
  assert.ok(c.meanEventBytes > 350 && c.meanEventBytes < 650, table);
  assert.ok(Math.abs(c.queueBytesPerClient - c.settings.queueSize * c.meanEventBytes) <= c.settings.queueSize / 2, table);
  // Memory per client is measured, for the recommended queue: runs with 1 and 4 stalled clients, full queues.
  assert.equal(t.memory?.length, 1, table);
  const m = (t.memory ?? [])[0];
  assert.equal(m.queueSize, c.settings.queueSize, table);
  assert.deepEqual(m.runs.map((x) => x.clients), [1, 4], table);
  const [one, four] = m.runs;
  assert.ok(one.maxRssBytes !== null && four.maxRssBytes !== null && m.rssBytesPerClient !== null, table);
  assert.ok(one.peakSlabBytesInUse !== null && four.peakSlabBytesInUse !== null && m.slabBytesPerClient !== null, table);
  // Every stalled client's queues filled: four clients hold about four times what one holds.
  assert.ok((one.peakQueuedEvents ?? 0) > 0 && (four.peakQueuedEvents ?? 0) >= 3 * (one.peakQueuedEvents ?? 0), table);
  assert.match(table, new RegExp(`--queueSize ${c.settings.queueSize}: memory per client, measured with full queues`));
});

test('tune - a point where the load tool was the limit is marked not measured and never recommended', () => {
  const point = (queueSize: number, worstDropPct: number, notMeasured: string | null): TunePoint => ({
    settings: { queueSize, encoderThreads: null, batchSize: null, ringSize: null },
    rate: 50_000,
    burst: 0,
    consumers: '3 clients',
    sent: 150_000,
    worstDropPct,
    fastDropPct: worstDropPct,
    worstP99Us: 1000,
    fastP99Us: 1000,
    meanEventBytes: 450,
    queueBytesPerClient: queueSize * 450,
    brokerMaxRssBytes: null,
    brokerMeanCpuPct: null,
    lossAccounted: true,
    notMeasured,
    meetsTarget: notMeasured === null && worstDropPct <= 0.1,
    failures: [],
  });
  const limited = 'client-limited: c1 (this client\'s thread was busy 97% of the run)';
  // The 64 point's zero drops are not evidence (the tool was the limit): 1024 is the answer.
  const [rec] = recommend([point(64, 0, limited), point(1024, 0, null)], 0.1);
  assert.equal(rec.chosen?.settings.queueSize, 1024);
  const [none] = recommend([point(64, 5, limited), point(1024, 2, limited)], 0.1);
  assert.equal(none.chosen, null);
  assert.match(none.text, /not measured: at every point the load tool itself was the limit/);
  const t: TuneReport = { kind: 'tune', version: 1, startedAt: '', wallSec: 1, targetDropPct: 0.1, pointDurationSec: 1, points: [point(64, 5, limited)], recommendations: [none], detail: null, machine: { cpus: 2, cpuModel: '', node: '', platform: '' } };
  assert.match(formatTuneSummary(t), /not measured: queue 64 rate 50000: client-limited/);
});

test('tune - the automatic sweep goes from 10,000 ev/s up to the rate the probe found', async () => {
  assert.deepEqual(autoRates(45_000), [10_000, 20_000, 45_000]);
  assert.deepEqual(autoRates(21_000), [10_000, 21_000]);
  assert.deepEqual(autoRates(10_500), [10_000]);
  assert.deepEqual(autoRates(6_300), [6_000]);
  // The probe itself: one short run as fast as the broker takes events.
  const options = validateTuneOptions({ ...tuneDefaults, queueSizes: [1024], clients: 2, slowClients: 0, encoderThreads: [null], batchSizes: [null], ringSizes: [null] });
  assert.deepEqual(options.rates, []);
  const probe = await probeMaxRate(options);
  assert.ok(probe.deliveredEps > 1000 && probe.rateEps >= 1000 && probe.rateEps <= probe.deliveredEps, probe.note);
  assert.match(probe.note, /^probe: as fast as possible for 2s .* the sweep goes up to [\d,]+ ev\/s$/);
});
