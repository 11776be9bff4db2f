import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { startBroker, type RunningBroker } from '../src/load/broker-process';
import { explainClient } from '../src/load/limits';
import type { ProcSummary } from '../src/load/proc-sampler';
import type { ClientReport, ThreadReport } from '../src/load/report-model';
import { runLoad } from '../src/load/run-load';
import { formatSummary } from '../src/report';
import { pointFromReport, recommend, tuneDefaults } from '../src/tune';
import { loadOptions } from './helpers/load';

let broker: RunningBroker;

before(async () => {
  broker = await startBroker({ queueSize: 1000 });
});

after(async () => {
  await broker.stop();
});

test('load - a subscriber whose own thread is saturated is reported as client-limited, and its loss is not called the broker\'s', async () => {
  // Client 0 burns 1.5 ms of CPU per event in its worker thread: at 2000 ev/s (both streams)
  // that thread cannot keep up (it falls 4000 events behind), its queue of 1000 fills and the broker drops for it.
  const r = await runLoad(loadOptions(broker, { clients: 2, rate: 2000, durationMs: 3000, burnClients: 1, burnUsPerEvent: 1500 }));
  const table = formatSummary(r);
  assert.deepEqual(r.failures, [], table);
  const [burnt, fast] = r.clients;
  assert.ok((burnt.missing ?? 0) > 0, `a client busy 1.5 ms per event misses events at 2000 ev/s\n${table}`);
  assert.equal(burnt.missing, burnt.server?.attributed, `its loss is still accounted by the broker\n${table}`);
  assert.equal(burnt.limitedBy, 'client', table);
  assert.match(burnt.limit, /^client-limited: this client's thread was busy \d+% of the run/, table);
  const thread = r.threads[burnt.thread];
  assert.ok(thread.role === 'subscribers' && thread.saturated && thread.clients.includes(0), table);
  assert.deepEqual(r.verdict.clientLimited, [burnt.name], table);
  // The broker is not blamed: the fast client decides the verdict, and it has its own thread.
  assert.notEqual(fast.thread, burnt.thread, table);
  // On a machine whose cores other processes keep busy, even the fast client may miss a few
  // events; then the report must say the machine, not the broker's queue, and not this client.
  if (fast.missing === 0) {
    assert.equal(fast.limitedBy, 'nothing', table);
    assert.equal(r.verdict.fastClientsLossless, true, table);
  } else assert.equal(fast.limitedBy, 'machine', table);
  assert.equal(r.verdict.lossAccounted, true, table);
  assert.match(table, /client-limited/);
  // tune reads the same report: that point is marked not measured and is never recommended.
  const point = pointFromReport(r, { settings: { queueSize: 1000, encoderThreads: null, batchSize: null, ringSize: null }, rate: 2000, slowDelayUs: 0 }, '2 clients', { ...tuneDefaults, encoderThreads: [null], batchSizes: [null], ringSizes: [null] });
  assert.match(point.notMeasured ?? '', /^client-limited: c0 \(this client's thread was busy/, table);
  assert.equal(point.meetsTarget, false, table);
  assert.equal(recommend([point], 0.1)[0].chosen, null, table);
  // Every thread of the tool has CPU samples, for the report's chart.
  assert.ok(r.threads.some((t) => t.role === 'producer'), table);
  for (const t of r.threads) assert.ok(t.samples.length >= 4 && t.cpuSec !== null, table);
});

test('load limits - one sentence per client: its own thread, the machine, the broker\'s CPU, the broker\'s queue, or nothing', () => {
  const thread = (over: Partial<ThreadReport> = {}): ThreadReport => ({
    name: 'clients c0', role: 'subscribers', clients: [0], meanElu: 0.2, saturatedShare: 0, saturated: false, cpuSec: 0.4, delayP99Ms: 5, delayMaxMs: 20,
    samples: [{ t: 0.5, elu: 0.2, cpuPct: 20 }, { t: 1, elu: 0.2, cpuPct: 20 }], ...over,
  });
  const server = (queueFull: number): ClientReport['server'] => ({ delivered: 0, dropped: { client_queue_full: queueFull, throttled: 0, filtered: 0 }, attributed: queueFull, queueDepthAtEnd: 0, agrees: true });
  const fast = { behaviour: 'fast' as const, delayUs: 0, expected: 1000 };
  const counters = { ingestEvents: 1000, ringFull: 0, malformedInput: 0, throttled: 0 };
  const broker = (mainPct: number): ProcSummary => ({ pid: 1, samples: [], cpuSec: 1, maxRssBytes: 1, meanCpuPct: mainPct, mainThreadMeanCpuPct: mainPct });

  const saturated = explainClient({ ...fast, missing: 10, server: server(10) }, thread({ meanElu: 0.97, saturatedShare: 1, saturated: true, cpuSec: 0.97 }), counters, broker(30), 0);
  assert.equal(saturated.limitedBy, 'client');
  assert.match(saturated.limit, /^client-limited: this client's thread was busy 97% of the run \(saturated in all of its 0.5 s samples, 97% of a core\); its 10 missing events are the load tool's limit/);
  const stalled = explainClient({ ...fast, missing: 10, server: server(10) }, thread({ delayMaxMs: 450 }), counters, broker(30), 0);
  assert.equal(stalled.limitedBy, 'client');
  assert.match(stalled.limit, /stalled for up to 450 ms/);
  assert.equal(explainClient({ ...fast, missing: 10, server: server(10) }, thread(), counters, broker(30), 0, 99).limitedBy, 'machine');
  assert.equal(explainClient({ ...fast, missing: 10, server: server(10) }, thread(), counters, broker(92), 0, 60).limitedBy, 'broker-cpu');
  const queue = explainClient({ behaviour: 'slow', delayUs: 1000, expected: 1000, missing: 10, server: server(10) }, thread(), counters, broker(30), 0, 99);
  assert.equal(queue.limitedBy, 'broker-queue');
  assert.match(queue.limit, /^broker queue full: the client read slower than events arrived \(1000 us per event\), and the broker dropped 10 events/);
  assert.equal(explainClient({ ...fast, missing: 0, server: server(0) }, thread(), counters, broker(30), 0).limitedBy, 'nothing');
  // A slow client's stall or a busy machine does not hide its queue drops: that is what it models.
  assert.equal(explainClient({ behaviour: 'slow', delayUs: 1000, expected: 1000, missing: 10, server: server(10) }, thread({ delayMaxMs: 900 }), counters, broker(30), 0).limitedBy, 'broker-queue');
});
