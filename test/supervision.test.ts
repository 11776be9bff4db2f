/**
 * Health tells the truth about the threads it depends on. A socket or TCP source whose
 * ingest thread dies or wedges is restarted on its ring and its address: grpc.health.v1
 * is NOT_SERVING while it is down and SERVING again once the new thread listens, the
 * restart is counted by reason (/stats, /metrics, the final stats at exit), and events
 * published before and sent after the restart all reach a client. A wedged encoder task is aborted
 * and its thread replaced; a stalled main loop is reported by the health port's own
 * thread. The faults come from the test hooks (src/testHooks.ts, ARMORFEED_TEST_HOOKS=1)
 * through real sockets: a frame that crashes or spins an ingest thread, an event that
 * spins an encoder, a call that blocks the main thread.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pack } from 'msgpackr';
import { encodeFrame } from '../src/ingest/frames';
import { TEST_HOOK_CRASH, TEST_HOOK_METADATA_KEY, TEST_HOOK_WEDGE, TEST_HOOK_WEDGE_ENCODER } from '../src/testHooks';
import { connect } from './helpers/client';
import { seqLog, seqs } from './helpers/events';
import { healthV1, HealthStatus, watchHealth } from './helpers/health';
import { exitStatsFile, fetchStats, startServe, type ServeProcess } from './helpers/serve';
import { connectTo, frameOf, sendAndEnd } from './helpers/tcp';
import { waitUntil } from './helpers/wait';

const LOOPBACK = ['--bind', '127.0.0.1', '--gRPC', '0', '--gRPCHealthPort', '0', '--metricsPort', '0'];

async function health(serve: ServeProcess): Promise<number> {
  return healthV1(serve.addresses.health, 'feeder.LogService');
}

function events(from: number, to: number): Buffer {
  return Buffer.concat(Array.from({ length: to - from + 1 }, (_, i) => frameOf(seqLog(from + i))));
}

/** Sends one hook frame on a connection of its own; the thread that reads it crashes or spins, so the connection is left to die. */
async function sendHook(address: string, hook: string): Promise<void> {
  const sock = await connectTo(address);
  sock.on('error', () => undefined);
  sock.write(encodeFrame(pack(hook)));
}

async function restartsOf(serve: ServeProcess, source: string): Promise<Record<string, number>> {
  return (await fetchStats(serve.addresses.metrics)).ingest[source].restarts;
}

for (const [fault, hook, reason, kind] of [
  ['dies', TEST_HOOK_CRASH, 'exited', 'tcp'],
  ['wedges', TEST_HOOK_WEDGE, 'wedged', 'socket'],
] as const) {
  test(`supervision - a ${kind} source whose thread ${fault} is NOT_SERVING, restarted (${reason}) and SERVING again, and loses no published event`, { timeout: 60_000 }, async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'armorfeed-restart-'));
    const socketPath = path.join(dir, 'in.sock');
    const sourceArgs = kind === 'tcp' ? ['--source', 'tcp', '--tcp', '127.0.0.1:0'] : ['--source', 'socket', '--socket', socketPath];
    const final = exitStatsFile();
    const serve = await startServe(['serve', ...LOOPBACK, ...sourceArgs, '--ingestWedgedMs', '1000', ...final.args], { env: { ...process.env, ARMORFEED_TEST_HOOKS: '1' } });
    const address = kind === 'tcp' ? serve.addresses.tcp : socketPath;
    const conn = connect(serve.addresses.grpc);
    try {
      const w = conn.watch('WatchLogs', 'all');
      await waitUntil('the client registered', async () => (await fetchStats(serve.addresses.metrics)).clients.length === 1, 10_000);
      assert.equal(await health(serve), HealthStatus.SERVING);
      await sendAndEnd(address, events(1, 100));
      await w.waitFor(100);

      await sendHook(address, hook);
      await waitUntil('health NOT_SERVING', async () => (await health(serve)) === HealthStatus.NOT_SERVING, 10_000, () => serve.stderr().slice(-2000));
      assert.equal(await healthV1(serve.addresses.grpc, ''), HealthStatus.NOT_SERVING, 'the main port says so too');
      await waitUntil('health SERVING again', async () => (await health(serve)) === HealthStatus.SERVING, 15_000, () => serve.stderr().slice(-2000));
      assert.deepEqual(await restartsOf(serve, kind), { exited: reason === 'exited' ? 1 : 0, wedged: reason === 'wedged' ? 1 : 0 });
      assert.match(serve.stderr(), new RegExp(`source ${kind} restarted \\(${reason}\\)`));

      // The new thread listens where the old one did, and writes into the same ring.
      await sendAndEnd(address, events(101, 200));
      await w.waitFor(200);
      assert.deepEqual(seqs(w), Array.from({ length: 200 }, (_, i) => i + 1), 'every event once, in order');
      const s = (await fetchStats(serve.addresses.metrics)).ingest[kind];
      assert.equal(s.failed, false);
      assert.equal(s.events, 200);
      // The second sender's connection closes just after its events arrive (the new thread
      // counts it out on 'close'); the dead thread's would never be.
      let open = -1;
      await waitUntil('no connection counted as open', async () => (open = (await fetchStats(serve.addresses.metrics)).ingest[kind].connections) === 0, 5000, () => `the dead thread's connections are still counted as open: ${open}`);
      const metrics = await (await fetch(`http://${serve.addresses.metrics}/metrics`)).text();
      assert.match(metrics, new RegExp(`armorfeed_source_restarts_total\\{source="${kind}",reason="${reason}"\\} 1`));
    } finally {
      conn.close();
      const exit = await serve.stop('SIGTERM', 10_000);
      fs.rmSync(dir, { recursive: true, force: true });
      assert.equal(exit.code, 0, exit.stderr.slice(-2000));
      const last = final.read().ingest[kind];
      assert.deepEqual([last.events, last.dropped.ring_full, last.restarts], [200, 0, { exited: reason === 'exited' ? 1 : 0, wedged: reason === 'wedged' ? 1 : 0 }], 'the final stats');
    }
  });
}

test('supervision - without ARMORFEED_TEST_HOOKS a hook frame is an ordinary malformed event', { timeout: 30_000 }, async () => {
  const serve = await startServe(['serve', ...LOOPBACK, '--source', 'tcp', '--tcp', '127.0.0.1:0', '--ingestWedgedMs', '1000']);
  try {
    await sendAndEnd(serve.addresses.tcp, Buffer.concat([encodeFrame(pack(TEST_HOOK_CRASH)), encodeFrame(pack(TEST_HOOK_WEDGE)), events(1, 1)]));
    await waitUntil('the three frames counted', async () => {
      const s = (await fetchStats(serve.addresses.metrics)).ingest.tcp;
      return s.events === 1 && s.dropped.malformed_input === 2;
    }, 10_000);
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(await health(serve), HealthStatus.SERVING);
    assert.deepEqual(await restartsOf(serve, 'tcp'), { exited: 0, wedged: 0 });
  } finally {
    await serve.stop('SIGTERM', 10_000);
  }
});

test('supervision - an encoder task that wedges is aborted, its thread replaced, health NOT_SERVING meanwhile, and its events counted encode_error', { timeout: 60_000 }, async () => {
  // --inlineMaxEvents 0: every span goes to the encoder threads, none is encoded on the main thread.
  const serve = await startServe(['serve', ...LOOPBACK, '--source', 'tcp', '--tcp', '127.0.0.1:0', '--inlineMaxEvents', '0', '--encoderTaskTimeoutMs', '1000'], {
    env: { ...process.env, ARMORFEED_TEST_HOOKS: '1' },
  });
  const conn = connect(serve.addresses.grpc);
  const healthWatch = watchHealth(serve.addresses.health, 'feeder.LogService');
  try {
    const w = conn.watch('WatchLogs', 'all');
    await waitUntil('the client registered', async () => (await fetchStats(serve.addresses.metrics)).clients.length === 1, 10_000);
    await sendAndEnd(serve.addresses.tcp, events(1, 10));
    await w.waitFor(10);

    await sendAndEnd(serve.addresses.tcp, frameOf(seqLog(11, { resource: TEST_HOOK_WEDGE_ENCODER })));
    await waitUntil('the wedged task aborted', async () => (await fetchStats(serve.addresses.metrics)).encoded.encoderRestarts === 1, 10_000, () => serve.stderr().slice(-2000));
    await waitUntil('health SERVING again', async () => healthWatch.statuses.at(-1) === HealthStatus.SERVING && healthWatch.statuses.length >= 3, 10_000, () => JSON.stringify(healthWatch.statuses));
    assert.deepEqual(healthWatch.statuses, [HealthStatus.SERVING, HealthStatus.NOT_SERVING, HealthStatus.SERVING]);
    assert.match(serve.stderr(), /\[ERROR\] 1 encoder task\(s\) ran over 1000 ms/);

    await sendAndEnd(serve.addresses.tcp, events(12, 20));
    await w.waitFor(19);
    assert.deepEqual(seqs(w), [...Array.from({ length: 10 }, (_, i) => i + 1), ...Array.from({ length: 9 }, (_, i) => i + 12)], 'the encoders work again, in order');
    const s = await fetchStats(serve.addresses.metrics);
    assert.equal(s.dropped.encode_error, 1, 'the wedged span is counted');
    assert.equal(s.encoded.encoderThreadsRunning, s.encoded.encoderThreads, 'the thread was replaced');
  } finally {
    healthWatch.close();
    conn.close();
    const exit = await serve.stop('SIGTERM', 10_000);
    assert.equal(exit.code, 0, exit.stderr.slice(-2000));
  }
});

test('supervision - a stalled main loop turns the health port NOT_SERVING while it lasts, and the stall is counted', { timeout: 60_000 }, async () => {
  const serve = await startServe(['serve', ...LOOPBACK, '--source', 'none', '--mainLoopStallMs', '500'], { env: { ...process.env, ARMORFEED_TEST_HOOKS: '1' } });
  const healthWatch = watchHealth(serve.addresses.health, 'feeder.LogService');
  const conn = connect(serve.addresses.grpc);
  try {
    await waitUntil('health SERVING', () => healthWatch.statuses.at(-1) === HealthStatus.SERVING, 5_000);
    // The main thread blocks for 2 s as it takes this call.
    const w = conn.watch('WatchMessages', '', { [TEST_HOOK_METADATA_KEY]: 'stall-main:2000' });
    await waitUntil('NOT_SERVING, then SERVING again', () => healthWatch.statuses.length >= 3, 10_000, () => JSON.stringify(healthWatch.statuses));
    assert.deepEqual(healthWatch.statuses, [HealthStatus.SERVING, HealthStatus.NOT_SERVING, HealthStatus.SERVING]);
    const s = await fetchStats(serve.addresses.metrics);
    assert.equal(s.mainLoop.stalls, 1);
    assert.ok(s.mainLoop.delayMaxMs >= 1500, JSON.stringify(s.mainLoop));
    await waitUntil('a WARN about the stall', () => /\[WARN\] the main loop did not run for \d+ ms/.test(serve.stderr()), 5_000, () => serve.stderr().slice(-1500));
    w.cancel();
  } finally {
    healthWatch.close();
    conn.close();
    const exit = await serve.stop('SIGTERM', 10_000);
    assert.equal(exit.code, 0, exit.stderr.slice(-2000));
  }
});
