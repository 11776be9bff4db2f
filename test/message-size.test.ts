/**
 * No client is sent a message it must refuse: grpc-go (karmor) and grpc-js (armorfeed log)
 * refuse messages over 4 MiB by default, which breaks their stream. An event whose
 * encoded Alert/Log would exceed that is dropped and counted (`encoded_oversized`), and
 * the stream goes on; `--maxEventBytes` stops at 4 MiB.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../src/config';
import { ConfigError } from '../src/errors';
import { startWatched } from './helpers/feeder';
import { delay, until } from './helpers/wait';

const MiB = 1024 * 1024;

test('message size - an alert whose encoding would pass 4 MiB is dropped as encoded_oversized; the stream and the events around it go on', { timeout: 60_000 }, async () => {
  const w = await startWatched({ maxEventBytes: 4 * MiB, ringSize: 16 * MiB, alertThrottling: false }, [['WatchAlerts', 'all']], 'WatchAlerts registered');
  const [alerts] = w.watchers;
  try {
    const alert = { type: 'MatchedPolicy', source: '/bin/sh', operation: 'File', policyName: 'p' };
    // 1.5 MiB of commas: Tags as is, plus one (empty) ATags entry of 3 bytes per part: ~6 MiB encoded.
    const blowUp = { ...alert, tags: ','.repeat(1.5 * MiB), podName: 'too-big' };
    // 3.5 MiB as is: a large message, but one a client takes.
    const large = { ...alert, data: 'x'.repeat(3.5 * MiB), podName: 'large' };
    assert.equal(w.feeder.push({ ...alert, podName: 'before' }), true);
    assert.equal(w.feeder.push(blowUp), true);
    assert.equal(w.feeder.push(large), true);
    assert.equal(w.feeder.push({ ...alert, podName: 'after' }), true);
    await until('three alerts', () => alerts.messages.length >= 3, 20_000);
    await delay(200);
    assert.deepEqual(alerts.messages.map((m) => m.PodName), ['before', 'large', 'after']);
    assert.equal(String(alerts.messages[1].Data).length, 3.5 * MiB);
    const ended = await Promise.race([alerts.ended, delay(50).then(() => undefined)]);
    assert.equal(ended, undefined, `the stream ended: ${JSON.stringify(ended)}`);
    const s = w.feeder.stats();
    assert.equal(s.dropped.encoded_oversized, 1);
    assert.equal(s.dropped.encode_error, 0);
    const client = s.clients.find((c) => c.stream === 'alerts');
    await until('three delivered', () => w.feeder.stats().clients.find((c) => c.stream === 'alerts')?.delivered === 3);
    assert.equal(client?.written, 3, 'the dropped event was never handed to gRPC');
  } finally {
    await w.close();
  }
});

test('message size - maxEventBytes above 4 MiB is refused, naming the key', () => {
  assert.throws(
    () => loadConfig({ flags: { maxEventBytes: String(4 * MiB + 1), ringSize: String(64 * MiB) }, env: {} }),
    (err: unknown) => err instanceof ConfigError && err.key.startsWith('maxEventBytes') && /4194304/.test(err.message),
  );
  // The ring must hold two of the largest events (the default ring is 2 MiB).
  assert.equal(loadConfig({ flags: { maxEventBytes: String(4 * MiB), ringSize: String(8 * MiB) }, env: {} }).maxEventBytes, 4 * MiB);
});
