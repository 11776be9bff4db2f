/**
 * export - the export thread's warm-up (src/export/warmUp.ts), against a real nats-server:
 * it runs its sample events to the end through a responder of its own, once per thread,
 * and none of it reaches a stream or the export's counts; where the stream's subjects
 * would take the warm-up's, it does not run. (What it is for, the gRPC clients' p99 over
 * a fresh serve's first seconds, is measured by bench:export, not here.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { StorageType } from '@nats-io/jetstream';
import { EXPORT_WARM_UP_EVENTS, warmUpPublishPath } from '../src/export/warmUp';
import { exportServeArgs, pacedSend } from './helpers/export';
import { natsForTest } from './helpers/nats';
import { fetchStats, startServe } from './helpers/serve';
import { waitUntil } from './helpers/wait';

test('export warm-up - every sample event is acked by its own responder, nothing is stored, and a second call in the thread is skipped', { timeout: 30_000 }, async (t) => {
  const { nc, jsm } = await natsForTest(t);
  await jsm.streams.add({ name: 'KUBEARMOR', subjects: ['kubearmor.>'], storage: StorageType.Memory });
  const first = await warmUpPublishPath(nc, ['kubearmor.>'], 256);
  assert.deepEqual([first.events, first.skipped], [EXPORT_WARM_UP_EVENTS, undefined], JSON.stringify(first));
  assert.equal((await jsm.streams.info('KUBEARMOR')).state.messages, 0);
  assert.equal((await warmUpPublishPath(nc, ['kubearmor.>'], 256)).skipped, 'warm already');
});

test('export warm-up - a stream whose subjects would take the warm-up\'s gets no warm-up message; the events after it are exported as ever', { timeout: 60_000 }, async (t) => {
  const { nats, jsm } = await natsForTest(t);
  await jsm.streams.add({ name: 'KUBEARMOR', subjects: ['kubearmor.>', '_ARMORFEED_WARMUP.>'], storage: StorageType.Memory });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'armorfeed-warm-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const socket = path.join(dir, 'in.sock');
  const serve = await startServe(exportServeArgs(socket, nats.url));
  t.after(() => serve.stop('SIGKILL', 5000));
  await pacedSend(socket, 50, 10_000).done;
  await waitUntil('50 events acked', async () => ((await fetchStats(serve.addresses.metrics)).export?.acked ?? 0) >= 50, 15_000);
  const info = await jsm.streams.info('KUBEARMOR', { subjects_filter: '_ARMORFEED_WARMUP.>' });
  assert.deepEqual(info.state.subjects ?? {}, {}, 'no warm-up message in the stream');
  const x = (await fetchStats(serve.addresses.metrics)).export;
  assert.equal(x?.offered, x?.acked, JSON.stringify(x));
});
