/**
 * The export's start and end with real servers: NATS unreachable at start (serve anyway,
 * keep trying, publish once it is there), a stream that is not ours (exit 2, coded),
 * an existing stream used as it is, a shutdown with NATS down (counted, never silent), and
 * `armorfeed export-check`.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { StorageType } from '@nats-io/jetstream';
import { awaitExit, exitCodeOf } from './helpers/child';
import { exportServeArgs, pacedSend, rawWatch } from './helpers/export';
import { freePorts, natsClient, natsForTest, NatsServer, streamCounts } from './helpers/nats';
import { armorfeedMain, exitStatsFile, fetchStats, startServe } from './helpers/serve';
import { waitUntil } from './helpers/wait';

function socketIn(t: TestContext): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'armorfeed-export-start-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return path.join(dir, 'in.sock');
}

async function runToExit(args: string[], timeoutMs = 20_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [armorfeedMain, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const code = await awaitExit(child, exitCodeOf(child), timeoutMs);
  return { code, stdout, stderr };
}

test('export - NATS unreachable at start: serve serves gRPC at once, events wait, and are published once nats-server is up', { timeout: 60_000 }, async (t) => {
  const [port] = await freePorts(1);
  const url = `nats://127.0.0.1:${port}`;
  const socket = socketIn(t);
  const started = Date.now();
  const serve = await startServe(exportServeArgs(socket, url));
  t.after(() => serve.stop('SIGKILL', 5000));
  assert.ok(Date.now() - started < 10_000, 'the listening line came without NATS');
  assert.match(serve.stderr(), /export: NATS at .* is not reachable/);
  const watcher = rawWatch(serve.addresses.grpc);
  t.after(() => watcher.close());
  await waitUntil('the client registered', async () => (await fetchStats(serve.addresses.metrics)).clients.some((c) => c.open), 10_000);
  await pacedSend(socket, 2000, 10_000).done;
  await watcher.waitFor(2000, 10_000);
  const before = (await fetchStats(serve.addresses.metrics)).export;
  assert.ok(before !== undefined && before.state === 'connecting' && before.acked === 0 && before.buffered.events >= 2000, JSON.stringify(before));

  const nats = await NatsServer.start({ port });
  t.after(() => nats.stop());
  await waitUntil('the waiting events acked', async () => {
    const x = (await fetchStats(serve.addresses.metrics)).export;
    return x !== undefined && x.state === 'ready' && x.buffered.events === 0;
  }, 20_000, async () => JSON.stringify((await fetchStats(serve.addresses.metrics)).export));
  const x = (await fetchStats(serve.addresses.metrics)).export;
  assert.ok(x !== undefined);
  assert.equal(x.acked, x.offered);
  const nc = await natsClient(url);
  t.after(() => nc.close());
  assert.equal((await streamCounts(nc, 'KUBEARMOR')).subjects['kubearmor.test-cluster.node_a.logs'], 2000);
  const text = await (await fetch(`http://${serve.addresses.metrics}/metrics`)).text();
  assert.match(text, new RegExp(`^armorfeed_export_acked_total ${x.acked}$`, 'm'));
  assert.match(text, new RegExp(`^armorfeed_export_events_total ${x.offered}$`, 'm'));
  assert.match(text, /^armorfeed_export_connected\{state="ready"\} 1$/m);
  assert.match(text, /^armorfeed_export_buffer_events 0$/m);
  assert.match(text, /^armorfeed_export_in_flight 0$/m);
});

test('export - SIGTERM with NATS down: what could not be flushed is counted export_shutdown in the final stats', { timeout: 30_000 }, async (t) => {
  const [port] = await freePorts(1);
  const socket = socketIn(t);
  const final = exitStatsFile();
  const serve = await startServe(exportServeArgs(socket, `nats://127.0.0.1:${port}`, ['--gracePeriodMs', '300', ...final.args]));
  await pacedSend(socket, 500, 10_000).done;
  await waitUntil('500 events ingested', async () => (await fetchStats(serve.addresses.metrics)).ingest.socket.events === 500, 10_000);
  const exit = await serve.stop('SIGTERM', 10_000);
  assert.equal(exit.code, 0, exit.stderr.slice(-2000));
  const x = final.read().export;
  assert.ok(x !== undefined, exit.stderr.slice(-1500));
  assert.deepEqual([x.acked, x.buffered.events], [0, 0], JSON.stringify(x));
  assert.equal(x.dropped.export_shutdown, x.offered, 'every offered event is accounted for as export_shutdown');
  assert.ok(x.offered >= 500);
  assert.match(exit.stderr, /not acknowledged by JetStream before the grace period ended \(dropped as export_shutdown/);
});

test('export - a stream without our subjects stops serve (exit 2, ERR_EXPORT_STREAM_MISMATCH); one with them is used as it is', { timeout: 60_000 }, async (t) => {
  const { nats, jsm } = await natsForTest(t);
  await jsm.streams.add({ name: 'KUBEARMOR', subjects: ['other.>'], storage: StorageType.Memory });
  await jsm.streams.add({ name: 'MINE', subjects: ['kubearmor.>'], storage: StorageType.Memory, max_age: 60e9 });

  const socket = socketIn(t);
  const refused = await runToExit(exportServeArgs(socket, nats.url));
  assert.equal(refused.code, 2, refused.stderr);
  assert.match(refused.stderr, /ERR_EXPORT_STREAM_MISMATCH: JetStream stream KUBEARMOR has subjects \["other\.>"\], which do not cover kubearmor\.>/);
  assert.doesNotMatch(refused.stderr, /armorfeed: listening/);

  const serve = await startServe(exportServeArgs(socket, nats.url, ['--exportStream', 'MINE', '--exportMaxAgeSec', '5']));
  t.after(() => serve.stop('SIGKILL', 5000));
  assert.match(serve.stderr(), /publishing to JetStream stream MINE \(existing\)/);
  await pacedSend(socket, 100, 10_000).done;
  await waitUntil('100 events acked', async () => ((await fetchStats(serve.addresses.metrics)).export?.acked ?? 0) >= 100, 10_000);
  const info = await jsm.streams.info('MINE');
  assert.equal(info.config.max_age, 60e9, 'the existing stream keeps its own settings');
  assert.equal(info.config.storage, StorageType.Memory);
});

test('export-check - publishes one event and reads it back; a coded error and a non-zero exit when it cannot', { timeout: 60_000 }, async (t) => {
  const nats = await NatsServer.start();
  t.after(() => nats.stop());
  const ok = await runToExit(['export-check', '--export', nats.url, '--cluster', 'c1', '--host', 'node.b']);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /stream {6}KUBEARMOR \(created now\): subjects=\["kubearmor\.>"\] storage=file replicas=1 max_age=86400s/);
  assert.match(ok.stdout, /pub ack {5}stream=KUBEARMOR seq=1 duplicate=false/);
  assert.match(ok.stdout, /read back {3}kubearmor\.c1\.node_b\.messages \d+ bytes, headers .*"Armorfeed-Seq":"1"/);
  assert.match(ok.stdout, /"Message":"armorfeed export-check from node\.b"/);
  const again = await runToExit(['export-check', '--export', nats.url]);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /existing, used as it is/);

  const mismatch = await runToExit(['export-check', '--export', nats.url, '--exportSubjectPrefix', 'elsewhere']);
  assert.equal(mismatch.code, 2);
  assert.match(mismatch.stderr, /ERR_EXPORT_STREAM_MISMATCH/);
  const [port] = await freePorts(1);
  const down = await runToExit(['export-check', '--export', `nats://127.0.0.1:${port}`, '--timeout', '2000']);
  assert.equal(down.code, 1);
  assert.match(down.stderr, /ERR_EXPORT_UNREACHABLE: cannot connect to NATS at nats:\/\/127\.0\.0\.1:\d+/);
  const none = await runToExit(['export-check']);
  assert.equal(none.code, 2);
  assert.match(none.stderr, /ERR_CONFIG_INVALID: export: needs the NATS servers/);
});

/** The nice value of each thread of process `pid` (field 19 of /proc/PID/task/TID/stat). */
function threadNices(pid: number): number[] {
  return fs.readdirSync(`/proc/${pid}/task`).map((tid) => {
    const stat = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
  });
}

test('export - the export thread alone runs at --exportThreadNice (10 by default, 0 leaves it as is)', { timeout: 30_000, skip: process.platform !== 'linux' }, async (t) => {
  const [port] = await freePorts(1);
  for (const [extra, expected] of [[[], 10], [['--exportThreadNice', '3'], 3], [['--exportThreadNice', '0'], 0]] as const) {
    const serve = await startServe(exportServeArgs(socketIn(t), `nats://127.0.0.1:${port}`, [...extra]));
    t.after(() => serve.stop('SIGKILL', 5000));
    await waitUntil('the export thread started', async () => (await fetchStats(serve.addresses.metrics)).export !== undefined, 10_000);
    const nices = threadNices(serve.pid);
    const lowered = nices.filter((n) => n !== 0);
    assert.deepEqual(lowered, expected === 0 ? [] : [expected], `threads' nice values with ${JSON.stringify(extra)}: ${JSON.stringify(nices)}`);
    assert.ok(nices.length - lowered.length >= 4, 'the main thread, ingest and encoders keep theirs');
    await serve.stop('SIGTERM', 10_000);
  }
});
