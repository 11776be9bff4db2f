/**
 * An ingest thread that dies while the broker runs (here: the jsonl source is given a
 * directory, whose first read fails with EISDIR) is not a silent loss: grpc.health.v1
 * turns NOT_SERVING for the service and overall, an ERROR names the source, /stats marks
 * it failed, and the broker still stops cleanly.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { connect } from './helpers/client';
import { healthV1, HealthStatus } from './helpers/health';
import { fetchStats, startServe } from './helpers/serve';
import { waitUntil } from './helpers/wait';

test('source failure - an ingest thread that dies turns grpc.health.v1 NOT_SERVING and logs an ERROR naming its source', { timeout: 60_000 }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'armorfeed-source-failure-'));
  const serve = await startServe(['serve', '--bind', '127.0.0.1', '--gRPC', '0', '--gRPCHealthPort', '0', '--metricsPort', '0', '--source', 'jsonl', '--jsonl', dir]);
  const conn = connect(serve.addresses.grpc);
  try {
    await waitUntil('an ERROR naming the jsonl source', () => /\[ERROR\] .*jsonl/.test(serve.stderr()), 10_000, () => serve.stderr());
    await waitUntil('health NOT_SERVING', async () => (await healthV1(serve.addresses.health, '')) === HealthStatus.NOT_SERVING, 5_000);
    for (const service of ['', 'feeder.LogService']) {
      assert.equal(await healthV1(serve.addresses.health, service), HealthStatus.NOT_SERVING, `health port, service ${JSON.stringify(service)}`);
      assert.equal(await healthV1(serve.addresses.grpc, service), HealthStatus.NOT_SERVING, `main port, service ${JSON.stringify(service)}`);
    }
    assert.match(serve.stderr(), /\[ERROR\] ingest thread of source jsonl exited unexpectedly.*EISDIR/);
    const s = (await fetchStats(serve.addresses.metrics)).ingest.jsonl;
    assert.equal(s.failed, true);
    assert.equal(await conn.health(7), 7, 'the gRPC server itself still answers');
  } finally {
    conn.close();
    const exit = await serve.stop('SIGTERM', 10_000);
    fs.rmSync(dir, { recursive: true, force: true });
    assert.equal(exit.code, 0, exit.stderr.slice(-2000));
  }
});
