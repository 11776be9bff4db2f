/**
 * `npm run bench:export`: the NATS JetStream export, measured on this machine against
 * baselines run in the same process and the same minute.
 *
 *   E1  events/s acknowledged by JetStream (file storage, one nats-server on loopback):
 *       armorfeed serve --export, fed by the Go producer as fast as it takes them, one
 *       gRPC client (Go loadclient) connected; against a minimal @nats-io publisher with
 *       the same message sizes, the same headers and the same in-flight window: js.publish
 *       (the client's own API), and the PublishAsync-style raw publish that armorfeed uses.
 *       Target: armorfeed >= 0.8x the minimal publisher. Each phase also prints how busy the
 *       machine was and its CPU (every process, nats-server included) per acked event.
 *   E2  the gRPC client's p99 (Go loadclient) at 20,000 events/s through the socket source:
 *       export off, export on, and export on with nats-server stopped (SIGSTOP) for 3 s.
 *       Targets: on <= 1.2x off; stopped <= 2x off.
 *
 * Runs are short (about a minute in all): on a shared 2-core machine treat every figure as
 * one sample, and read the load average printed first.
 *
 * Flags: --events N (E1, default 150000), --seconds S (E2 run length, default 8),
 * --export-nice N (serve's --exportThreadNice; default: serve's own, 10),
 * --bin DIR (Go peers; default $PEERS_BIN or ../shared/peers/build.sh path).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { connect, createInbox, type NatsConnection } from '@nats-io/transport-node';
import { DiscardPolicy, jetstream, jetstreamManager, StorageType } from '@nats-io/jetstream';
import type { FeederStats } from '../src/feeder';
import { exportHeaders, makeNodeId } from '../src/export/subjects';
import { feederTypes } from '../src/wire/proto';
import { findRepoRoot, freePort } from './devkit';
import { formatMachine, machineCpu, machineInfo, phaseCpu, type MachineCpu, type PhaseCpu } from './machine';
import { findPeersBin, onBenchExit, sleep, spawnTracked, stopChild, type TrackedChild } from './peers/children';
import { runLoadClient, type LoadClientRun } from './peers/loadclient';
import { runProducer } from './peers/producer';

const repoRoot = findRepoRoot();
const WINDOW = 256;

function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

async function startNats(port: number, storeDir: string): Promise<TrackedChild> {
  const bin = fs.existsSync('/usr/sbin/nats-server') ? '/usr/sbin/nats-server' : 'nats-server';
  const proc = spawnTracked(bin, ['-js', '-sd', storeDir, '-a', '127.0.0.1', '-p', String(port)], repoRoot);
  const deadline = Date.now() + 10_000;
  while (!/Server is ready/.test(proc.stderr())) {
    if (proc.hasExited() || Date.now() > deadline) throw new Error(`nats-server did not start: ${proc.stderr().slice(-1000)}`);
    await sleep(20);
  }
  return proc;
}

interface Serve {
  proc: TrackedChild;
  grpc: string;
  metrics: string;
}

async function startServe(socket: string, exportTo: string): Promise<Serve> {
  const args = [
    '--max-semi-space-size=2', path.join(repoRoot, 'dist', 'src', 'cli', 'main.js'), 'serve',
    '--bind', '127.0.0.1', '--gRPC', '0', '--gRPCHealthPort', '-1', '--metricsPort', '0', '--source', 'socket', '--socket', socket,
    '--export', exportTo, '--exportInFlight', String(WINDOW), '--exportBufferEvents', '400000', '--exportBufferBytes', String(512 * 1024 * 1024),
    ...(process.argv.includes('--export-nice') ? ['--exportThreadNice', flag('export-nice', '10')] : []),
  ];
  const proc = spawnTracked(process.execPath, args, repoRoot);
  const deadline = Date.now() + 20_000;
  for (;;) {
    const line = /armorfeed: listening (.*)/.exec(proc.stderr())?.[1];
    if (line !== undefined) {
      const grpc = /grpc=(\S+)/.exec(line)?.[1] ?? '';
      const metrics = /metrics=(\S+)/.exec(line)?.[1] ?? '';
      return { proc, grpc, metrics };
    }
    if (proc.hasExited() || Date.now() > deadline) throw new Error(`serve did not start: ${proc.stderr().slice(-1500)}`);
    await sleep(20);
  }
}

async function stats(metrics: string): Promise<FeederStats> {
  return (await (await fetch(`http://${metrics}/stats`)).json()) as FeederStats;
}

/** Encoded Log messages like the producer's: the payload sizes armorfeed publishes. */
function sampleLogs(n: number): Uint8Array[] {
  const { Log } = feederTypes();
  const out: Uint8Array[] = [];
  for (let i = 0; i < n; i++) {
    out.push(Log.encode({
      Timestamp: 1_700_000_000 + i, UpdatedTime: '2024-01-02T03:04:05.123456Z', ClusterName: 'default', HostName: 'bench-node',
      NamespaceName: 'default', PodName: `nginx-${i % 7}`, ContainerID: 'c0ffee'.repeat(8), ContainerName: 'nginx', HostPID: 1000 + i, PID: 7, PPID: 1, UID: 101,
      Type: 'ContainerLog', Source: '/bin/sh', Operation: 'File', Resource: `/etc/nginx/conf.d/site-${i}.conf`, Data: 'syscall=SYS_OPENAT fd=-100 flags=O_RDONLY',
      Result: 'Passed', ProcessName: '/usr/sbin/nginx', ParentProcessName: '/bin/sh', Cwd: '/', NodeID: 'bench-node',
    }).finish());
  }
  return out;
}

const cpuText = (c: PhaseCpu | undefined): string => (c === undefined ? '' : `  [machine ${(c.busy * 100).toFixed(0)}% busy, ${c.usPerEvent.toFixed(1)} us of CPU per acked event]`);

async function freshStream(nc: NatsConnection, name: string, subject: string): Promise<void> {
  const jsm = await jetstreamManager(nc);
  await jsm.streams.delete(name).catch(() => undefined);
  await jsm.streams.add({ name, subjects: [subject], storage: StorageType.File, discard: DiscardPolicy.Old, duplicate_window: 120e9 });
}

/** The client's own API: js.publish (a request per message), WINDOW at a time. */
async function baselineJsPublish(nc: NatsConnection, payloads: Uint8Array[], n: number): Promise<number> {
  await freshStream(nc, 'BASE_JS', 'basejs.>');
  const js = jetstream(nc);
  const nodeId = makeNodeId('bench-js');
  let sent = 0;
  let acked = 0;
  const start = performance.now();
  await new Promise<void>((resolve, reject) => {
    const pump = (): void => {
      while (sent - acked < WINDOW && sent < n) {
        const seq = ++sent;
        js.publish('basejs.c.n.logs', payloads[seq % payloads.length], { headers: exportHeaders(nodeId, 'logs', seq, '2024-01-02T03:04:05.123456Z'), timeout: 10_000 }).then(() => {
          if (++acked === n) resolve();
          else pump();
        }, reject);
      }
    };
    pump();
  });
  return n / ((performance.now() - start) / 1000);
}

/** PublishAsync as armorfeed does it: one reply inbox, acks matched by id, WINDOW at a time. */
async function baselineRaw(nc: NatsConnection, payloads: Uint8Array[], n: number): Promise<{ perSec: number; cpu?: PhaseCpu }> {
  await freshStream(nc, 'BASE_RAW', 'baseraw.>');
  const inbox = createInbox();
  const nodeId = makeNodeId('bench-raw');
  let sent = 0;
  let acked = 0;
  const start = performance.now();
  const cpu0 = machineCpu();
  await new Promise<void>((resolve) => {
    const pump = (): void => {
      while (sent - acked < WINDOW && sent < n) {
        const seq = ++sent;
        nc.publish('baseraw.c.n.logs', payloads[seq % payloads.length], { reply: `${inbox}.${seq}`, headers: exportHeaders(nodeId, 'logs', seq, '2024-01-02T03:04:05.123456Z') });
      }
    };
    nc.subscribe(`${inbox}.*`, {
      callback: () => {
        if (++acked === n) resolve();
        else pump();
      },
    });
    pump();
  });
  const perSec = n / ((performance.now() - start) / 1000);
  const cpu = phaseCpu(cpu0, machineCpu(), n);
  return { perSec, ...(cpu !== undefined ? { cpu } : {}) };
}

interface ExportRun {
  ackedPerSec: number;
  cpu?: PhaseCpu;
  client?: LoadClientRun;
  exportStats?: FeederStats['export'];
}

/** armorfeed serve --export fed unpaced by the Go producer, one loadclient connected; acks/s from /stats. */
async function armorfeedExport(peersBin: string, natsUrl: string, dir: string, n: number): Promise<ExportRun> {
  const socket = path.join(dir, `e1-${Date.now()}.sock`);
  const serve = await startServe(socket, natsUrl);
  try {
    const client = runLoadClient(peersBin, repoRoot, { addr: serve.grpc, clients: 1, expect: n, streams: 'both', durationS: 120 });
    await sleep(500);
    const producer = runProducer(peersBin, repoRoot, { socket, rate: 0, count: n, alertEvery: 0, per: 64 }, 120_000);
    let first: { t: number; acked: number; cpu?: MachineCpu } | undefined;
    let last: { t: number; acked: number; cpu?: MachineCpu } = { t: performance.now(), acked: 0 };
    const deadline = Date.now() + 180_000;
    for (;;) {
      const x = (await stats(serve.metrics)).export;
      const now = performance.now();
      const cpu = machineCpu();
      const acked = x?.acked ?? 0;
      if (first === undefined && acked > 0) first = { t: now, acked, cpu };
      if (acked > last.acked) last = { t: now, acked, cpu };
      if ((x !== undefined && x.acked >= n) || Date.now() > deadline) break;
      await sleep(50);
    }
    await producer;
    const report = await client;
    const x = (await stats(serve.metrics)).export;
    const ackedPerSec = first !== undefined && last.t > first.t ? (last.acked - first.acked) / ((last.t - first.t) / 1000) : 0;
    const cpu = first !== undefined ? phaseCpu(first.cpu, last.cpu, last.acked - first.acked) : undefined;
    return { ackedPerSec, client: report, exportStats: x, ...(cpu !== undefined ? { cpu } : {}) };
  } finally {
    await stopChild(serve.proc, 10_000);
  }
}

interface LatencyRun {
  p99Us: number;
  p50Us: number;
  received: number;
  expected: number;
  exported?: FeederStats['export'];
}

/** 20,000 events/s for `seconds` through the socket source, one loadclient: its p99. */
async function clientLatency(peersBin: string, exportTo: string, dir: string, seconds: number, nats?: TrackedChild): Promise<LatencyRun> {
  const socket = path.join(dir, `e2-${Date.now()}.sock`);
  const serve = await startServe(socket, exportTo);
  const rate = 20_000;
  const n = rate * seconds;
  try {
    const client = runLoadClient(peersBin, repoRoot, { addr: serve.grpc, clients: 1, expect: n, streams: 'both', durationS: seconds + 30 });
    await sleep(500);
    const producer = runProducer(peersBin, repoRoot, { socket, rate, count: n, alertEvery: 0, per: 64 }, (seconds + 30) * 1000);
    if (nats !== undefined) {
      // Stopped for 3 s in the middle of the run.
      await sleep(((seconds - 3) / 2) * 1000);
      nats.child.kill('SIGSTOP');
      await sleep(3000);
      nats.child.kill('SIGCONT');
    }
    await producer;
    const report = (await client).report;
    const exported = exportTo === '' ? undefined : (await stats(serve.metrics)).export;
    return { p99Us: report?.latencyUs.p99 ?? NaN, p50Us: report?.latencyUs.p50 ?? NaN, received: report?.received ?? 0, expected: n, exported };
  } finally {
    await stopChild(serve.proc, 15_000);
  }
}

async function main(): Promise<void> {
  const events = Number(flag('events', '150000'));
  const seconds = Number(flag('seconds', '8'));
  const peersBin = findPeersBin(repoRoot, process.argv.includes('--bin') ? flag('bin', '') : undefined);
  const m = machineInfo(repoRoot);
  const pkg = (name: string): string => (JSON.parse(fs.readFileSync(path.join(repoRoot, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
  process.stdout.write(`bench:export\n${formatMachine(m)}\n`);
  process.stdout.write(`nats:     @nats-io/transport-node ${pkg('@nats-io/transport-node')}, @nats-io/jetstream ${pkg('@nats-io/jetstream')}\n`);

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'armorfeed-bench-export-'));
  const port = await freePort();
  const nats = await startNats(port, path.join(dir, 'store'));
  const versionProc = spawnTracked(fs.existsSync('/usr/sbin/nats-server') ? '/usr/sbin/nats-server' : 'nats-server', ['--version'], repoRoot);
  await versionProc.exited;
  process.stdout.write(`server:   ${versionProc.stdout().trim()} (file storage, one server on loopback)\n\n`);
  const url = `nats://127.0.0.1:${port}`;
  const forgetCleanup = onBenchExit(() => fs.rmSync(dir, { recursive: true, force: true }));
  try {
    const nc = await connect({ servers: url });
    const payloads = sampleLogs(512);
    const avg = payloads.reduce((a, p) => a + p.length, 0) / payloads.length;
    process.stdout.write(`E1  acked events/s into JetStream, window ${WINDOW}, ${events} events of ~${avg.toFixed(0)} B (+ ~150 B of headers)\n`);
    const js = await baselineJsPublish(nc, payloads, events);
    process.stdout.write(`    minimal publisher, js.publish():            ${js.toFixed(0).padStart(7)} events/s\n`);
    const rawRun = await baselineRaw(nc, payloads, events);
    const raw = rawRun.perSec;
    process.stdout.write(`    minimal publisher, raw PublishAsync style:  ${raw.toFixed(0).padStart(7)} events/s${cpuText(rawRun.cpu)}\n`);
    await nc.close();
    const af = await armorfeedExport(peersBin, url, dir, events);
    const c = af.client?.report;
    process.stdout.write(`    armorfeed serve --export (+1 gRPC client):  ${af.ackedPerSec.toFixed(0).padStart(7)} events/s  (client got ${c?.received ?? '?'} of ${events}; export acked ${af.exportStats?.acked ?? '?'}, dropped ${JSON.stringify(af.exportStats?.dropped ?? {})})${cpuText(af.cpu)}\n`);
    process.stdout.write(`    ratio armorfeed / js.publish: ${(af.ackedPerSec / js).toFixed(2)}x; / raw: ${(af.ackedPerSec / raw).toFixed(2)}x   (target >= 0.8x)\n`);
    if (rawRun.cpu !== undefined && af.cpu !== undefined && rawRun.cpu.busy > 0.8 && af.cpu.busy > 0.8) {
      // Both phases used the whole machine: the rates are its cores over each one's CPU per event.
      process.stdout.write(`    both phases used the machine's ${os.cpus().length} cores (nats-server on them too): armorfeed's path takes ${(af.cpu.usPerEvent / rawRun.cpu.usPerEvent).toFixed(2)}x the minimal publisher's CPU per acked event (ingest, encoding and the gRPC client besides the publish)\n`);
    }
    process.stdout.write('\n');

    process.stdout.write(`E2  gRPC client p99 at 20,000 events/s for ${seconds} s (Go producer -> socket -> armorfeed -> Go loadclient)\n`);
    const off = await clientLatency(peersBin, '', dir, seconds);
    const line = (name: string, r: LatencyRun): string =>
      `    ${name.padEnd(34)} p50 ${(r.p50Us / 1000).toFixed(2).padStart(7)} ms  p99 ${(r.p99Us / 1000).toFixed(2).padStart(7)} ms  received ${r.received}/${r.expected}${r.exported !== undefined ? `  export acked ${r.exported.acked}, buffer_full ${r.exported.dropped.export_buffer_full}` : ''}\n`;
    process.stdout.write(line('export off', off));
    const on = await clientLatency(peersBin, url, dir, seconds);
    process.stdout.write(line('export on', on));
    const stopped = await clientLatency(peersBin, url, dir, seconds, nats);
    process.stdout.write(line('export on, nats-server SIGSTOP 3 s', stopped));
    process.stdout.write(`    ratio on / off: ${(on.p99Us / off.p99Us).toFixed(2)}x (target <= 1.2x); stopped / off: ${(stopped.p99Us / off.p99Us).toFixed(2)}x (target <= 2x)\n`);
  } finally {
    await stopChild(nats, 5000);
    forgetCleanup();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:export: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
