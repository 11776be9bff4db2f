import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { startBroker, type RunningBroker } from '../src/load/broker-process';
import { runLoad } from '../src/load/run-load';
import { formatSummary } from '../src/report';
import { loadOptions } from './helpers/load';

let broker: RunningBroker;

before(async () => {
  // Queues of 1000 (upstream's size; the default is 4000): the slow client below falls
  // 6000 events behind in 4 s, which a 4000-event queue and the HTTP/2 window can nearly hold.
  broker = await startBroker({ queueSize: 1000 });
});

after(async () => {
  const code = await broker.stop();
  assert.equal(code, 0, `armorfeed serve should drain and exit 0 on SIGTERM; stderr:\n${broker.stderr().slice(-1500)}`);
});

test('load - against armorfeed with 4 clients, one slow: each client\'s missing count equals the broker\'s drop counters, fast clients miss none', async () => {
  // 2500 ev/s: the slow client (at most 1000 ev/s) must lose events, and the fast ones
  // (one thread shared with the producer) keep headroom on a 2-core machine.
  const r = await runLoad(loadOptions(broker, { slowClients: 1, slowDelayUs: 1000, rate: 2500, durationMs: 4000 }));
  const table = formatSummary(r);
  assert.deepEqual(r.failures, [], table);
  assert.ok(r.producer !== null && r.producer.sent >= 9_900, table);
  assert.ok(r.server !== null && r.server.ingestEvents === r.producer.sent, table);
  for (const c of r.clients) {
    assert.ok(c.server !== null, `client ${c.index} is missing from /stats\n${table}`);
    assert.equal(c.missing, c.server.attributed, `client ${c.index}: missing vs broker drops\n${table}`);
    assert.equal(c.received + (c.missing ?? 0), c.expected, table);
  }
  const [slow, ...fast] = r.clients;
  assert.equal(slow.behaviour, 'slow');
  assert.ok((slow.missing ?? 0) > 0, `a 1 ms/event client cannot keep up with 2500 ev/s\n${table}`);
  assert.equal(slow.server?.dropped.client_queue_full, slow.missing, table);
  for (const c of fast) assert.equal(c.missing, 0, table);
  assert.equal(r.verdict.lossAccounted, true, table);
  assert.equal(r.verdict.fastClientsLossless, true, table);
  assert.ok(r.broker !== null && r.broker.cpuSec > 0 && r.broker.maxRssBytes > 10 << 20, table);
  // Latency exists on both clocks for every client that received events.
  for (const c of fast) {
    assert.ok(c.latencyFromUpdatedUs.count === c.received && c.latencyFromUpdatedUs.p50 > 0, table);
    assert.ok((c.latencyFromSendUs?.count ?? 0) > c.received * 0.99, table);
  }
});

test('load - a stalled client stops reading under bursts, then drains; its loss is still fully accounted by the broker', async () => {
  const r = await runLoad(loadOptions(broker, { clients: 3, stalledClients: 1, rate: 3000, burst: 600, durationMs: 2000, streams: 'logs' }));
  const table = formatSummary(r);
  assert.deepEqual(r.failures, [], table);
  const stalled = r.clients[0];
  assert.equal(stalled.behaviour, 'stalled');
  // It gets what fitted in its queue and the HTTP/2 window, and loses the rest.
  assert.ok((stalled.missing ?? 0) > 0 && stalled.received > 0, table);
  for (const c of r.clients) assert.equal(c.missing, c.server?.attributed, table);
  assert.equal(r.verdict.lossAccounted, true, table);
});
