/** The `armorfeed load` run the load tests start from, against a broker they started. */
import * as assert from 'node:assert/strict';
import type { RunningBroker } from '../../src/load/broker-process';
import { newRunTag, type LoadOptions } from '../../src/load/options';

/** Load options for `broker` (4 clients on both streams at 4000 ev/s for 3 s, over its tcp source); `over` changes any of them. */
export function loadOptions(broker: RunningBroker, over: Partial<LoadOptions> = {}): LoadOptions {
  const a = broker.addresses;
  assert.ok(a.tcp !== undefined && a.metrics !== undefined);
  return {
    addr: a.grpc,
    ingest: { kind: 'tcp', ...a.tcp },
    statsUrl: `http://${a.metrics.host}:${a.metrics.port}/stats`,
    brokerPid: broker.pid,
    clients: 4,
    streams: 'both',
    slowClients: 0,
    slowDelayUs: 0,
    stalledClients: 0,
    rate: 4000,
    burst: 0,
    durationMs: 3000,
    alertEvery: 5,
    idleMs: 500,
    drainTimeoutMs: 20_000,
    runTag: newRunTag(),
    alertFilter: 'policy',
    logFilter: 'system',
    ...over,
  };
}
