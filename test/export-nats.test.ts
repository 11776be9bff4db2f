/**
 * The NATS JetStream export end to end: `armorfeed serve --export` processes fed through
 * the socket source at a steady rate, a gRPC client reading beside the export, and real
 * nats-server processes (one, or a cluster of three) that are killed, restarted and
 * stopped under it. What the stream holds is read back and compared with what the gRPC
 * client received, byte for byte, and with the feeder's export counters, exactly.
 */
import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { ExportStats } from '../src/export';
import type { FeederStats } from '../src/stats';
import { feederTypes } from '../src/wire/proto';
import { exportServeArgs, pacedSend, rawWatch, type RawWatcher } from './helpers/export';
import { NatsServer, natsClient, readStream, startNatsCluster, streamCounts, type StoredEvent } from './helpers/nats';
import { exitStatsFile, fetchStats, startServe, type ServeProcess } from './helpers/serve';
import { seqLog } from './helpers/events';
import { FrameProducer } from '../src/producer';
import { TEST_HOOK_CRASH_EXPORT } from '../src/testHooks';
import { waitUntil } from './helpers/wait';

const STREAM = 'KUBEARMOR';
const LOGS = 'kubearmor.test-cluster.node_a.logs';

interface Fed {
  serve: ServeProcess;
  watcher: RawWatcher;
  metrics: string;
  socket: string;
  /** The final stats, once serve has exited (--statsFile). */
  final(): FeederStats;
}

/** A serve process exporting to `nats` (with `extra` flags) and a gRPC client registered on it. */
async function startFed(t: TestContext, nats: string, extra: string[] = [], env?: NodeJS.ProcessEnv): Promise<Fed> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'armorfeed-export-'));
  const socket = path.join(dir, 'in.sock');
  // A client queue that holds a whole run: on a busy 2-core machine the client may fall
  // behind for a while, and these tests compare against everything it received.
  const final = exitStatsFile();
  const serve = await startServe(exportServeArgs(socket, nats, ['--queueSize', '250000', ...final.args, ...extra]), { env });
  const watcher = rawWatch(serve.addresses.grpc);
  t.after(async () => {
    watcher.close();
    if (serve.child.exitCode === null) await serve.stop('SIGKILL', 5000);
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const metrics = serve.addresses.metrics;
  await waitUntil('the WatchLogs stream registered', async () => (await fetchStats(metrics)).clients.some((c) => c.open), 10_000);
  return { serve, watcher, metrics, socket, final: () => final.read() };
}

async function exportStats(fed: Fed): Promise<ExportStats> {
  const x = (await fetchStats(fed.metrics)).export;
  assert.ok(x !== undefined, 'the feeder reports its export');
  return x;
}

function droppedTotal(x: ExportStats): number {
  return Object.values(x.dropped).reduce((a, b) => a + b, 0);
}

/** Waits until every event offered so far is settled (acked or dropped), then checks the identity. */
async function settled(fed: Fed, timeoutMs: number): Promise<ExportStats> {
  let last: ExportStats | undefined;
  await waitUntil(
    'every exported event settled',
    async () => {
      last = await exportStats(fed);
      return last.buffered.events === 0 && last.inFlight === 0;
    },
    timeoutMs,
    () => JSON.stringify(last),
  );
  const x = await exportStats(fed);
  assert.equal(x.offered, x.acked + droppedTotal(x) + x.buffered.events, `offered = acked + dropped + buffered: ${JSON.stringify(x)}`);
  return x;
}

/** Armorfeed-Seq of each stored event. */
function seqsOf(stored: StoredEvent[]): number[] {
  return stored.map((e) => Number(e.headers['Armorfeed-Seq']));
}

/** Asserts `seqs` holds each of 1..n exactly once, in any order; returns how many were out of order. */
function assertEachOnce(seqs: number[], n: number): number {
  const seen = new Uint8Array(n + 1);
  let outOfOrder = 0;
  for (let i = 0; i < seqs.length; i++) {
    const s = seqs[i];
    assert.ok(Number.isInteger(s) && s >= 1 && s <= n, `Armorfeed-Seq ${s} is in 1..${n}`);
    assert.equal(seen[s], 0, `Armorfeed-Seq ${s} is stored once`);
    seen[s] = 1;
    if (i > 0 && s < seqs[i - 1]) outOfOrder++;
  }
  assert.equal(seqs.length, n, `every one of 1..${n} is stored`);
  return outOfOrder;
}

describe('export to NATS JetStream', () => {
  test('export - 200,000 events at 20,000/s: the stream holds each once, in sequence, with the bytes the gRPC client received', { timeout: 120_000 }, async (t) => {
    const N = 200_000;
    const nats = await NatsServer.start();
    t.after(() => nats.stop());
    const fed = await startFed(t, nats.url, ['--exportBufferEvents', '200000', '--exportBufferBytes', String(256 * 1024 * 1024)]);
    await pacedSend(fed.socket, N, 20_000).done;
    await fed.watcher.waitFor(N, 30_000);
    const x = await settled(fed, 30_000);
    assert.deepEqual(x.dropped, { export_buffer_full: 0, export_rejected: 0, export_timeout: 0, export_shutdown: 0 });
    assert.equal(x.retries, 0, 'nothing had to be retried');

    const nc = await natsClient(nats.url);
    t.after(() => nc.close());
    const counts = await streamCounts(nc, STREAM);
    assert.equal(counts.subjects[LOGS], N, `the stream holds ${N} logs: ${JSON.stringify(counts)}`);
    assert.equal(counts.messages, x.acked, 'the stream holds what was acked: the logs and the daemon messages');
    const stored = await readStream(nc, STREAM, LOGS, N);
    assert.equal(stored.length, N);

    const { Log } = feederTypes();
    let mismatched = -1;
    for (let i = 0; i < N; i++) {
      const e = stored[i];
      assert.equal(e.headers['Armorfeed-Seq'], String(i + 1), `stream order is sequence order, without gaps (at ${i})`);
      assert.equal(e.headers['Nats-Msg-Id'], `${x.nodeId}.logs.${i + 1}`);
      if (mismatched < 0 && Buffer.compare(Buffer.from(e.data), fed.watcher.raw[i]) !== 0) mismatched = i;
    }
    assert.equal(mismatched, -1, `stored event ${mismatched} has the bytes the gRPC client received`);
    for (let i = 0; i < N; i += 997) {
      const log = Log.toObject(Log.decode(stored[i].data), { longs: Number }) as { HostPID: number; UpdatedTime: string; HostName: string };
      assert.equal(log.HostPID, i + 1);
      assert.equal(stored[i].headers['Armorfeed-Updated-Time'], log.UpdatedTime);
    }

    const exit = await fed.serve.stop('SIGTERM', 15_000);
    assert.equal(exit.code, 0, exit.stderr.slice(-2000));
    const last = fed.final().export;
    assert.ok(last !== undefined, 'the final stats report the export');
    assert.deepEqual([last.stream, last.state, last.dropped.export_shutdown, last.buffered.events], [STREAM, 'closed', 0, 0], JSON.stringify(last));
    assert.match(last.servers, /^nats:\/\/127\.0\.0\.1:\d+$/);
  });

  test('export - nats-server killed for 5 s and restarted, with room in the buffer: every event is in the stream exactly once', { timeout: 90_000 }, async (t) => {
    const N = 100_000;
    const nats = await NatsServer.start();
    t.after(() => nats.stop());
    const fed = await startFed(t, nats.url);
    await pacedSend(fed.socket, N, 10_000, [
      { atMs: 2000, run: () => nats.kill() },
      { atMs: 7000, run: () => nats.restart() },
    ]).done;
    await fed.watcher.waitFor(N, 30_000);
    const x = await settled(fed, 40_000);
    assert.ok(x.disconnects >= 1, `the export lost its server: ${JSON.stringify(x)}`);
    assert.deepEqual(x.dropped, { export_buffer_full: 0, export_rejected: 0, export_timeout: 0, export_shutdown: 0 });

    const nc = await natsClient(nats.url);
    t.after(() => nc.close());
    const counts = await streamCounts(nc, STREAM);
    assert.equal(counts.subjects[LOGS], N, `exactly ${N} logs, retries deduplicated: ${JSON.stringify(counts)} ${JSON.stringify(x)}`);
    assertEachOnce(seqsOf(await readStream(nc, STREAM, LOGS, N)), N);
  });

  test('export - nats-server killed for 5 s with a small buffer: stream count + export_buffer_full = events offered, exactly', { timeout: 90_000 }, async (t) => {
    const N = 100_000;
    const nats = await NatsServer.start();
    t.after(() => nats.stop());
    const fed = await startFed(t, nats.url, ['--exportBufferEvents', '5000']);
    await pacedSend(fed.socket, N, 10_000, [
      { atMs: 2000, run: () => nats.kill() },
      { atMs: 7000, run: () => nats.restart() },
    ]).done;
    await fed.watcher.waitFor(N, 30_000);
    const x = await settled(fed, 40_000);
    const ingested = (await fetchStats(fed.metrics)).ingest.socket.events;
    assert.equal(ingested, N);
    assert.ok(x.dropped.export_buffer_full > 0, `the 5 s outage overflowed a 5,000-event buffer: ${JSON.stringify(x)}`);
    assert.equal(x.dropped.export_rejected + x.dropped.export_timeout + x.dropped.export_shutdown, 0, JSON.stringify(x.dropped));

    const nc = await natsClient(nats.url);
    t.after(() => nc.close());
    const counts = await streamCounts(nc, STREAM);
    assert.equal(counts.messages + x.dropped.export_buffer_full, x.offered, `stream ${counts.messages} + export_buffer_full ${x.dropped.export_buffer_full} = offered ${x.offered}: ${JSON.stringify(counts)}`);
    const logs = counts.subjects[LOGS];
    const seqs = seqsOf(await readStream(nc, STREAM, LOGS, logs));
    assert.equal(new Set(seqs).size, logs, 'no log is stored twice');
    assert.ok(Math.max(...seqs) <= N);
  });

  test('export - a stopped nats-server (SIGSTOP 3 s) does not hold up the gRPC client, and the export catches up after', { timeout: 60_000 }, async (t) => {
    const N = 40_000;
    const nats = await NatsServer.start();
    t.after(() => nats.stop());
    const fed = await startFed(t, nats.url);
    const seen = { atStop: 0, beforeCont: 0, heldBack: 0 };
    await pacedSend(fed.socket, N, 10_000, [
      {
        atMs: 500,
        run: () => {
          nats.signal('SIGSTOP');
          seen.atStop = fed.watcher.raw.length;
        },
      },
      {
        atMs: 3400,
        run: async () => {
          seen.beforeCont = fed.watcher.raw.length;
          seen.heldBack = (await exportStats(fed)).buffered.events;
        },
      },
      { atMs: 3500, run: () => nats.signal('SIGCONT') },
    ]).done;
    await fed.watcher.waitFor(N, 30_000);
    assert.ok(seen.heldBack > 5000, `events waited in the export buffer while NATS was stopped: ${seen.heldBack}`);
    // Loose, and independent of how busy the machine is (bench/export.ts measures the
    // latency): the client kept receiving while NATS was stopped. 29,000 events were sent
    // in that window; a fan-out that waited for NATS would have delivered none of them.
    const duringStop = seen.beforeCont - seen.atStop;
    assert.ok(duringStop > 7000, `the gRPC client received ${duringStop} events while NATS was stopped`);
    const client = (await fetchStats(fed.metrics)).clients.find((c) => c.open);
    assert.equal(client?.dropped.client_queue_full, 0);
    const x = await settled(fed, 30_000);
    assert.equal(droppedTotal(x), 0, JSON.stringify(x));
    const nc = await natsClient(nats.url);
    t.after(() => nc.close());
    assert.equal((await streamCounts(nc, STREAM)).subjects[LOGS], N);
  });

  test('export - a three-server cluster, stream with 3 replicas: the connected server killed mid-run, no event lost', { timeout: 240_000 }, async (t) => {
    const N = 50_000;
    const servers = await startNatsCluster(3);
    t.after(() => Promise.all(servers.map((s) => s.stop())));
    const fed = await startFed(t, servers.map((s) => s.url).join(','), ['--exportReplicas', '3']);
    await waitUntil('the export ready on the cluster (meta leader elected, stream created)', async () => (await exportStats(fed)).state === 'ready', 30_000, async () => JSON.stringify(await exportStats(fed)));
    let killed: NatsServer | undefined;
    await pacedSend(fed.socket, N, 10_000, [
      {
        atMs: 2000,
        run: async () => {
          const at = (await exportStats(fed)).server;
          killed = servers.find((s) => at.endsWith(`:${s.port}`)) ?? servers[0];
          await killed.kill();
        },
      },
    ]).done;
    await fed.watcher.waitFor(N, 30_000);
    const x = await settled(fed, 45_000);
    assert.ok(killed !== undefined && x.disconnects >= 1, `the connected server was killed: ${JSON.stringify(x)}`);
    assert.equal(droppedTotal(x), 0, JSON.stringify(x));

    const alive = servers.filter((s) => s !== killed).map((s) => s.url);
    const nc = await natsClient(alive);
    t.after(() => nc.close());
    const counts = await streamCounts(nc, STREAM);
    assert.equal(counts.subjects[LOGS], N, `every log in the replicated stream, on the two servers left: ${JSON.stringify(counts)}`);
    // Reading back takes a consumer, which a two-of-three cluster on a busy machine can be
    // slow to place: the third server comes back first (the stream's count above is the
    // two survivors').
    await killed?.restart();
    assertEachOnce(seqsOf(await readStream(nc, STREAM, LOGS, N)), N);
  });

  test('export - an export thread that dies is started again: gRPC clients get every event, what it held is counted export_rejected, later events are stored', { timeout: 60_000 }, async (t) => {
    const nats = await NatsServer.start();
    t.after(() => nats.stop());
    const fed = await startFed(t, nats.url, [], { ...process.env, ARMORFEED_TEST_HOOKS: '1' });
    const producer = new FrameProducer({ socket: fed.socket }, { reconnect: false });
    t.after(() => producer.close());
    for (let i = 1; i <= 300; i++) producer.write(seqLog(i));
    await producer.room();
    await fed.watcher.waitFor(300, 20_000);
    const before = await settled(fed, 20_000);
    // The hook event (log 301) crashes the export thread (src/testHooks.ts).
    producer.write(seqLog(301, { resource: TEST_HOOK_CRASH_EXPORT }));
    await producer.room();
    let x: ExportStats | undefined;
    await waitUntil('the export thread started again and ready', async () => (x = await exportStats(fed)).threadRestarts === 1 && x.state === 'ready', 20_000, () => JSON.stringify(x));
    for (let i = 302; i <= 600; i++) producer.write(seqLog(i));
    await producer.room();
    await fed.watcher.waitFor(600, 20_000);
    x = await settled(fed, 20_000);
    assert.ok(x.dropped.export_rejected >= 0 && x.dropped.export_rejected <= 1 + x.window, `at most what it held is lost: ${JSON.stringify(x)}`);
    assert.equal(x.acked - before.acked + x.dropped.export_rejected, x.offered - before.offered, `every event since is acked or counted: ${JSON.stringify(x)}`);
    assert.match(fed.serve.stderr(), /export thread failed: .*starting it again/);
    assert.equal(fed.serve.child.exitCode, null, 'serve still runs');

    // The logs after the restart are stored, numbered on from where the dead thread left off.
    const nc = await natsClient(nats.url);
    t.after(() => nc.close());
    const storedLogs = (await streamCounts(nc, STREAM)).subjects[LOGS] ?? 0;
    const seqs = new Set(seqsOf(await readStream(nc, STREAM, LOGS, storedLogs)));
    for (let seq = 1; seq <= 300; seq++) assert.ok(seqs.has(seq), `log ${seq} (before) stored`);
    for (let seq = 302; seq <= 600; seq++) assert.ok(seqs.has(seq), `log ${seq} (after the restart) stored`);
  });
});

describe('export thread restarts', () => {
  test('export - past 5 restarts a minute the export thread is not started again: the export stays failed and every later event is counted export_rejected', { timeout: 90_000 }, async (t) => {
    const nats = await NatsServer.start();
    t.after(() => nats.stop());
    const fed = await startFed(t, nats.url, [], { ...process.env, ARMORFEED_TEST_HOOKS: '1' });
    const producer = new FrameProducer({ socket: fed.socket }, { reconnect: false });
    t.after(() => producer.close());
    let x: ExportStats | undefined;
    let seq = 0;
    for (let crash = 1; crash <= 6; crash++) {
      producer.write(seqLog(++seq, { resource: TEST_HOOK_CRASH_EXPORT }));
      await producer.room();
      const restarts = Math.min(crash, 5);
      const state = crash <= 5 ? 'ready' : 'failed';
      await waitUntil(`crash ${crash}: ${restarts} restarts, ${state}`, async () => (x = await exportStats(fed)).threadRestarts === restarts && x.state === state, 20_000, () => JSON.stringify(x));
    }
    assert.match(fed.serve.stderr(), /the 6th time within a minute; not started again/);
    for (let i = 0; i < 100; i++) producer.write(seqLog(++seq));
    await producer.room();
    await fed.watcher.waitFor(seq, 20_000);
    await waitUntil('the later events counted', async () => {
      x = await exportStats(fed);
      return x.offered === x.acked + droppedTotal(x) && x.dropped.export_rejected >= 100;
    }, 10_000, () => JSON.stringify(x));
    assert.equal(x?.buffered.events, 0, JSON.stringify(x));
    assert.equal(fed.serve.child.exitCode, null, 'serve still runs');
  });
});
