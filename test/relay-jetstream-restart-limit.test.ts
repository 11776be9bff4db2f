/**
 * relay - the crash-loop bound of `armorfeed relay --from`'s JetStream thread, against a
 * real nats-server: an event that kills every thread that reads it (a poison message)
 * restarts the thread 5 times within a minute, then no more. The relay stays up, says
 * NOT_SERVING, ends its replays UNAVAILABLE and refuses new ones, and counts it all.
 * Its own nats-server: the poison event must not reach the other relay tests' streams.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { hostPidsByNode, openStreams } from './helpers/client';
import { seqLog } from './helpers/events';
import { healthV1, HealthStatus } from './helpers/health';
import { NatsServer } from './helpers/nats';
import { fetchStats, startServe } from './helpers/serve';
import { TEST_HOOK_POISON_RELAY } from '../src/testHooks';
import { connectTo, frameOf, write } from './helpers/tcp';
import { waitUntil, withTimeout } from './helpers/wait';

const NODE = 'node-p';

test('relay - a JetStream thread that dies on every start is started again 5 times a minute, then not: NOT_SERVING, replays end UNAVAILABLE, new ones are refused, the relay runs on', { timeout: 120_000 }, async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'relay-js-limit-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const nats = await NatsServer.start();
  t.after(() => nats.stop());
  const socket = path.join(dir, 'node.sock');
  const node = await startServe([
    'serve', '--bind', '127.0.0.1', '--gRPC', '0', '--gRPCHealthPort', '-1', '--metricsPort', '0', '--cluster', 'c1',
    '--host', NODE, '--source', 'socket', '--socket', socket, '--encoderThreads', '1', '--export', nats.url,
  ]);
  t.after(() => node.stop('SIGTERM'));
  const relay = await startServe(
    ['relay', '--bind', '127.0.0.1', '--gRPC', '0', '--gRPCHealthPort', '0', '--metricsPort', '0', '--from', nats.url, '--host', 'relay'],
    { env: { ...process.env, ARMORFEED_TEST_HOOKS: '1' } },
  );
  t.after(() => relay.stop('SIGTERM'));
  const metrics = relay.addresses.metrics;
  const jetstream = async (): Promise<NonNullable<NonNullable<Awaited<ReturnType<typeof fetchStats>>['relay']>['jetstream']>> => {
    const js = (await fetchStats(metrics, 5000)).relay?.jetstream;
    assert.ok(js !== undefined, 'the relay reports its JetStream source');
    return js;
  };
  await waitUntil('the relay consumes the stream', async () => (await jetstream()).serving, 15_000);

  const replay = openStreams(relay.addresses.grpc, [['WatchLogs', 'system', { 'x-armorfeed-after-seq': '0' }]]);
  t.after(() => replay.close());
  const sock = await connectTo(socket);
  const ordinary = Array.from({ length: 20 }, (_, i) => seqLog(i + 1, { hostName: NODE }));
  await write(sock, Buffer.concat(ordinary.map((e) => frameOf(e))));
  const [replayed] = replay.watchers;
  await waitUntil('the replay got the ordinary events', () => (hostPidsByNode(replayed).get(NODE)?.length ?? 0) === ordinary.length, 15_000);

  // The poison event: every JetStream thread that reads it dies before relaying it, and
  // each new one resumes after the last event relayed, so reads it again.
  await write(sock, frameOf({ ...seqLog(21, { hostName: NODE }), resource: TEST_HOOK_POISON_RELAY }));
  sock.end();
  let js = await jetstream();
  await waitUntil('5 restarts, then failed', async () => (js = await jetstream()).thread.failed, 60_000, () => JSON.stringify(js.thread));
  assert.deepEqual(js.thread, { running: false, restarts: 5, failed: true });
  assert.equal(js.serving, false);
  assert.equal(js.state, 'closed');
  assert.match(relay.stderr(), /the 6th time within a minute; not started again: health stays NOT_SERVING and replays end/);
  assert.equal((relay.stderr().match(/starting it again/g) ?? []).length, 5, 'a line for each restart');

  // The replay that was open ends UNAVAILABLE, having relayed nothing of the poison event.
  const ended = await withTimeout(replayed.ended, 10_000, 'the open replay to end');
  assert.equal(ended.code, grpc.status.UNAVAILABLE, JSON.stringify(ended));
  assert.match(ended.details, /ERR_REPLAY_UNAVAILABLE/);
  assert.deepEqual(hostPidsByNode(replayed).get(NODE), ordinary.map((_, i) => i + 1));
  // A new replay is refused, not left waiting for a thread that will not come.
  const late = openStreams(relay.addresses.grpc, [['WatchLogs', 'system', { 'x-armorfeed-after-seq': '0' }]]);
  t.after(() => late.close());
  const refused = await withTimeout(late.watchers[0].ended, 10_000, 'the new replay to be refused');
  assert.equal(refused.code, grpc.status.UNAVAILABLE, JSON.stringify(refused));
  assert.match(refused.details, /ERR_REPLAY_UNAVAILABLE/);

  // The relay runs on and says what happened: health, stats, metrics.
  // The health port's own thread reads the relay's status on its next check (every 50 ms;
  // later on a busy machine: one CI run asked within that window and still got SERVING).
  let hs = -1;
  await waitUntil('the health port says NOT_SERVING', async () => (hs = await healthV1(relay.addresses.health, 'feeder.LogService')) === HealthStatus.NOT_SERVING, 5000, () => `health ${hs}`);
  const s = await fetchStats(metrics);
  assert.equal(s.relay?.jetstream?.replays.failed, 1);
  assert.ok((s.relay?.jetstream?.replays.refused ?? 0) >= 1);
  const text = await (await fetch(`http://${metrics}/metrics`)).text();
  assert.match(text, /armorfeed_relay_jetstream_thread_restarts_total 5\b/);
  assert.equal(relay.child.exitCode, null, 'the relay process still runs');
});
