import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { startBroker, type RunningBroker } from '../src/load/broker-process';
import { runLoad } from '../src/load/run-load';
import { formatSummary } from '../src/load/summary-table';
import { loadOptions } from './helpers/load';

let broker: RunningBroker;

before(async () => {
  broker = await startBroker({ queueSize: 256 });
});

after(async () => {
  await broker.stop();
});

test('load - a subscriber whose own thread is saturated is reported as client-limited, and its loss is not called the broker\'s', async () => {
  // Client 0 burns 1.5 ms of CPU per event in its worker thread: at 2000 ev/s (both streams)
  // that thread cannot keep up, its broker queue fills and the broker drops for it.
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
  assert.equal(fast.limitedBy, 'nothing', table);
  assert.equal(r.verdict.fastClientsLossless, true, table);
  assert.equal(r.verdict.lossAccounted, true, table);
  assert.match(table, /client-limited/);
  // Every thread of the tool has CPU samples, for the report's chart.
  assert.ok(r.threads.some((t) => t.role === 'producer'), table);
  for (const t of r.threads) assert.ok(t.samples.length >= 4 && t.cpuSec !== null, table);
});
