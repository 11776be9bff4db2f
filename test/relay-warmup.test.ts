/**
 * relay - the feeders-mode warm-up (src/relay/warmUp.ts): it runs its sample events through
 * a scratch node on loopback to the end, and none of it shows in the relay a user runs:
 * no node, client, batch or event in its stats, and nothing in its log but a debug line.
 * (What it is for, the first events' latency, is measured by bench:relay, not here.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultConfig } from '../src/config';
import { warmUpFeedersPath, WARM_UP_ROUNDS, WARM_UP_SAMPLE_EVENTS } from '../src/relay';
import { fetchStats, startServe } from './helpers/serve';
import { waitUntil } from './helpers/wait';

test('relay warm-up - every sample event of every round reaches the scratch upstream, and it stops its scratch node', { timeout: 30_000 }, async () => {
  const r = await warmUpFeedersPath(defaultConfig());
  assert.equal(r.gaveUp, undefined, JSON.stringify(r));
  assert.equal(r.events, WARM_UP_ROUNDS * WARM_UP_SAMPLE_EVENTS);
  // A second one works as well: the first left no port or stream behind that it trips on.
  assert.equal((await warmUpFeedersPath(defaultConfig())).events, WARM_UP_ROUNDS * WARM_UP_SAMPLE_EVENTS);
});

test('relay warm-up - nothing of it shows in the relay: no node, client, batch or event in /stats, no line in its log but at debug', { timeout: 30_000 }, async () => {
  const relay = await startServe(['relay', '--bind', '127.0.0.1', '--gRPC', '0', '--gRPCHealthPort', '-1', '--metricsPort', '0', '--feeders', '127.0.0.1:1']);
  try {
    // The upstream (nothing listens on port 1) is dialled once the warm-up is over.
    await waitUntil('the upstream dialled', async () => ((await fetchStats(relay.addresses.metrics)).relay?.upstreams[0]?.streams.alerts.failedAttempts ?? 0) > 0, 15_000);
    const s = await fetchStats(relay.addresses.metrics);
    assert.deepEqual(s.relay?.nodes, {});
    assert.equal(s.relay?.batches, 0);
    assert.deepEqual(s.clients, []);
    assert.deepEqual(s.relay?.upstreams.map((u) => u.id), ['127.0.0.1:1']);
    assert.deepEqual([s.relay?.upstreams[0]?.streams.alerts.events, s.relay?.upstreams[0]?.streams.logs.events], [0, 0]);
    assert.doesNotMatch(relay.stderr(), /warm-up|warm-up stopped|sample events/);
  } finally {
    await relay.stop('SIGTERM');
  }
});
