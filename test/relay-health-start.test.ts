/**
 * relay - grpc.health.v1 at start-up: NOT_SERVING from the first answer of either port
 * until the relay has a source. The health port is served by a thread of its own that
 * reads the status on its own clock; a relay that started it SERVING and set NOT_SERVING
 * afterwards answered SERVING for the first tens of ms (one CI run's Python client then
 * saw the relay turn NOT_SERVING under it).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HealthStatus, healthV1 } from './helpers/health';
import { startServe } from './helpers/serve';

for (const [mode, source] of [
  ['--feeders', '127.0.0.1:1'],
  ['--from', 'nats://127.0.0.1:1'],
] as const) {
  test(`relay ${mode} - both health ports say NOT_SERVING from their first answer, with no source reachable`, { timeout: 30_000 }, async () => {
    const relay = await startServe(['relay', '--bind', '127.0.0.1', '--gRPC', '0', '--gRPCHealthPort', '0', '--metricsPort', '-1', mode, source]);
    try {
      // Asked at once, all together, as soon as the relay says it listens.
      const first = await Promise.all([
        healthV1(relay.addresses.health ?? '', 'feeder.LogService'),
        healthV1(relay.addresses.health ?? '', ''),
        healthV1(relay.addresses.grpc, 'feeder.LogService'),
      ]);
      assert.deepEqual(first, [HealthStatus.NOT_SERVING, HealthStatus.NOT_SERVING, HealthStatus.NOT_SERVING]);
    } finally {
      await relay.stop('SIGTERM');
    }
  });
}
