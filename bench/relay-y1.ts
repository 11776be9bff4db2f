/**
 * Y1: `armorfeed relay --from nats://` from JetStream to one client, against `armorfeed
 * serve` on the real path to one client, in the same run and with the same client.
 *
 *   baseline:  Go producer (unpaced) --socket--> armorfeed serve --> client
 *   relay:     the same N events, exported by a serve into a nats-server (JetStream, file
 *              storage, loopback) first; then armorfeed relay --from --> client, which asks
 *              for them from the stream's start (x-armorfeed-after-seq: 0: a replay, the
 *              only way a relay reads a stream faster than it is written)
 *
 * The client is the load tool's HTTP/2 reader (src/wire/h2-grpc.ts) in this process,
 * counting messages on WatchAlerts and WatchLogs without decoding them; delivered ev/s is
 * N over the time from its first event to its last. It samples its own CPU: a phase where
 * it was busy over 90% of the time is reported as client-limited. Goal (issue 13): the
 * relay delivers at least the baseline's rate, with 0 missing.
 *
 * It also reads the relay's CPU per thread over the replay (/proc): the main thread's, the
 * busiest other thread's (the JetStream thread, where the NATS client runs) and the rest's.
 *
 *   npm run bench:relay-y1                       # 300,000 events
 *   node dist/bench/relay-y1.js --count 100000 --bin DIR
 *   node dist/bench/relay-y1.js --cpu-prof DIR   # and a CPU profile of each relay thread in DIR
 *
 * Exit 0 when the run ran (the goal may be missed: that is the measurement), 1 when it
 * failed, 2 on bad arguments.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { BROKER_NODE_FLAGS } from '../src/cli/nodeFlags';
import type { FeederStats } from '../src/feeder';
import { FeederSession } from '../src/wire/h2-grpc';
import { readThreadCpuSeconds } from '../src/load/proc-sampler';
import { machineCpu, phaseCpu } from './machine';
import { feederTypes } from '../src/wire/proto';
import { findPeersBin, onBenchExit, sleep, spawnTracked, stopChild, withTimeout, type TrackedChild } from './peers/children';
import { producerCapMs, producerProblem, runProducer } from './peers/producer';
import { machineInfo, machineLines } from './peers/report';

const repoRoot = path.resolve(__dirname, '..', '..');
const main = path.join(repoRoot, 'dist', 'src', 'cli', 'main.js');
const CLIENT_LIMITED = 0.9;

interface Server {
  proc: TrackedChild;
  grpc: string;
  metrics: string;
}

async function startArmorfeed(args: string[], nodeFlags: string[] = []): Promise<Server> {
  const proc = spawnTracked(process.execPath, [...BROKER_NODE_FLAGS, ...nodeFlags, main, ...args], repoRoot);
  const ready = new Promise<string>((resolve) => proc.onLine((l) => /^armorfeed: listening /.test(l.text) && resolve(l.text)));
  const line = await withTimeout(Promise.race([ready, proc.exited.then(() => '')]), 20_000);
  if (line === undefined || line === '') {
    await stopChild(proc, 2_000, 'SIGKILL');
    throw new Error(`armorfeed ${args[0]} did not start: ${proc.stderr().slice(-1500)}`);
  }
  return { proc, grpc: /grpc=(\S+)/.exec(line)?.[1] ?? '', metrics: /metrics=(\S+)/.exec(line)?.[1] ?? '' };
}

async function stats(s: Server): Promise<FeederStats> {
  return (await (await fetch(`http://${s.metrics}/stats`, { signal: AbortSignal.timeout(5_000) })).json()) as FeederStats;
}

async function waitFor(what: string, cond: () => Promise<boolean>, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

interface Reading {
  received: number;
  /** First to last event, seconds. */
  spanS: number;
  /** This process's CPU over the span / the span. */
  busy: number;
  ended: string;
}

/**
 * Watches WatchAlerts and WatchLogs on `grpc` until `expect` events came (or `idleMs`
 * without one, once started); `start()` is called once both streams are open.
 */
async function watch(grpc: string, expect: number, metadata: Record<string, string>, idleMs: number, start: () => Promise<void>): Promise<Reading> {
  const request = feederTypes().RequestMessage.encode({ Filter: 'all' }).finish();
  const session = new FeederSession(grpc, { windowBytes: 4 * 1024 * 1024, metadata });
  let received = 0;
  let first = 0;
  let last = 0;
  let cpu0 = process.cpuUsage();
  let done!: (why: string) => void;
  const finished = new Promise<string>((resolve) => (done = resolve));
  const visit = (): boolean => {
    if (received === 0) {
      first = performance.now();
      cpu0 = process.cpuUsage();
    }
    received++;
    last = performance.now();
    if (received >= expect) done('expected count');
    return true;
  };
  const calls = ['WatchAlerts', 'WatchLogs'].map((rpc) => session.serverStream(`/feeder.LogService/${rpc}`, request, visit, (s) => done(`${rpc} ended: ${s.code} ${s.details}`)));
  await sleep(300);
  await start();
  const idle = setInterval(() => {
    if (received > 0 && performance.now() - last > idleMs) done(`idle ${idleMs} ms`);
  }, 100);
  const ended = await finished;
  const cpu = process.cpuUsage(cpu0);
  clearInterval(idle);
  for (const c of calls) c.cancel();
  session.close();
  const spanS = Math.max(1e-6, (last - first) / 1000);
  return { received, spanS, busy: received === 0 ? 0 : (cpu.user + cpu.system) / 1e6 / spanS, ended };
}

async function run(): Promise<number> {
  const { values } = parseArgs({ options: { count: { type: 'string', default: '300000' }, bin: { type: 'string' }, 'cpu-prof': { type: 'string' } } });
  const count = Number(values.count);
  if (!Number.isInteger(count) || count < 1000 || count > 10_000_000) {
    process.stderr.write(`relay-y1 bench: --count must be an integer 1000-10000000, got ${values.count}\n`);
    return 2;
  }
  const peersBin = findPeersBin(repoRoot, values.bin);
  const log = (line: string): void => void process.stdout.write(`${line}\n`);
  for (const l of machineLines(machineInfo(repoRoot, peersBin))) log(l);
  log(`Y1: ${count} events (Go producer, unpaced, --alert-every 5), one client (h2 reader, WatchAlerts + WatchLogs, no decode)`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-relay-y1-'));
  const unregister = onBenchExit(() => fs.rmSync(dir, { recursive: true, force: true }));
  const children: TrackedChild[] = [];
  let status = 0;
  try {
    const natsPort = 20000 + Math.floor(Math.random() * 20000);
    const nats = spawnTracked(fs.existsSync('/usr/sbin/nats-server') ? '/usr/sbin/nats-server' : 'nats-server', ['-js', '-sd', path.join(dir, 'js'), '-a', '127.0.0.1', '-p', String(natsPort)], repoRoot);
    children.push(nats);
    await waitFor('nats-server', () => Promise.resolve(/Server is ready/.test(nats.stderr()) || nats.hasExited()), 10_000);
    if (nats.hasExited()) throw new Error(`nats-server did not start: ${nats.stderr().slice(-800)}`);
    const natsUrl = `nats://127.0.0.1:${natsPort}`;
    const serveArgs = (socket: string, extra: string[]): string[] => ['serve', '--bind', '127.0.0.1', '--gRPC', '0', '--gRPCHealthPort', '-1', '--metricsPort', '0', '--source', 'socket', '--socket', socket, '--host', 'node-a', ...extra];
    const produce = async (socket: string): Promise<void> => {
      const p = { socket, rate: 0, count, alertEvery: 5, per: 64 };
      const problem = producerProblem(await runProducer(peersBin, repoRoot, p, producerCapMs(p, 120)), count);
      if (problem !== undefined) throw new Error(problem);
    };

    // Baseline: the real path, one client.
    const baseSocket = path.join(dir, 'base.sock');
    const base = await startArmorfeed(serveArgs(baseSocket, ['--queueSize', String(count)]));
    children.push(base.proc);
    const b = await watch(base.grpc, count, {}, 5000, () => { void produce(baseSocket); return Promise.resolve(); });
    await stopChild(base.proc, 10_000);

    // The same events into JetStream, through a node's export.
    const expSocket = path.join(dir, 'exp.sock');
    const node = await startArmorfeed(serveArgs(expSocket, ['--export', natsUrl, '--exportBufferEvents', String(count + 1000), '--exportBufferBytes', String(1024 * 1024 * 1024)]));
    children.push(node.proc);
    await produce(expSocket);
    await waitFor('the export acked every event', async () => {
      const x = (await stats(node)).export;
      return x !== undefined && x.buffered.events === 0 && x.acked >= count;
    }, 300_000);
    const exported = (await stats(node)).export;
    await stopChild(node.proc, 10_000);

    // The relay, replaying the stream from its start to one client.
    const profDir = values['cpu-prof'];
    const relay = await startArmorfeed(
      ['relay', '--bind', '127.0.0.1', '--gRPC', '0', '--gRPCHealthPort', '-1', '--metricsPort', '0', '--queueSize', '100000', '--from', natsUrl],
      profDir !== undefined ? ['--cpu-prof', '--cpu-prof-dir', path.resolve(profDir)] : [],
    );
    children.push(relay.proc);
    await waitFor('the relay serving from JetStream', async () => (await stats(relay)).relay?.jetstream?.serving === true, 20_000);
    const relayPid = relay.proc.child.pid ?? 0;
    const cpuBefore = readThreadCpuSeconds(relayPid);
    const natsBefore = sumCpu(readThreadCpuSeconds(nats.pid));
    const machineBefore = machineCpu();
    const r = await watch(relay.grpc, count, { 'x-armorfeed-after-seq': '0' }, 5000, () => Promise.resolve());
    const threadCpu = [...readThreadCpuSeconds(relayPid)].map(([tid, s]) => ({ tid, s: s - (cpuBefore.get(tid) ?? 0) }));
    const natsCpu = sumCpu(readThreadCpuSeconds(nats.pid)) - natsBefore;
    const machineBusy = phaseCpu(machineBefore, machineCpu(), r.received)?.busy ?? NaN;
    const relayStats = await stats(relay);
    await stopChild(relay.proc, 10_000);

    log('');
    log(`export into JetStream: acked ${exported?.acked ?? '?'}, dropped ${JSON.stringify(exported?.dropped ?? {})}`);
    const row = (label: string, x: Reading): void =>
      log(`${label.padEnd(34)} received ${String(x.received).padStart(8)} of ${count} (missing ${count - x.received})  ${(x.received / x.spanS).toFixed(0).padStart(7)} ev/s  client busy ${(x.busy * 100).toFixed(0)}%${x.busy >= CLIENT_LIMITED ? ' (client-limited)' : ''}  [${x.ended}]`);
    row('serve, socket producer unpaced', b);
    row('relay --from, replay from seq 0', r);
    const dropped = relayStats.clients.reduce((sum, c) => sum + c.dropped.client_queue_full, 0);
    log(`relay: client_queue_full ${dropped}`);
    const mainCpu = threadCpu.find((t) => t.tid === relayPid)?.s ?? 0;
    const others = threadCpu.filter((t) => t.tid !== relayPid).sort((a, b) => b.s - a.s);
    const busiest = others[0]?.s ?? 0;
    const rest = others.slice(1).reduce((sum, t) => sum + t.s, 0);
    log(
      `relay CPU over the replay: main thread ${mainCpu.toFixed(2)} s (${((mainCpu / Math.max(1, r.received)) * 1e6).toFixed(1)} us/event), busiest other thread (JetStream) ${busiest.toFixed(2)} s (${((busiest / Math.max(1, r.received)) * 1e6).toFixed(1)} us/event), the other threads ${rest.toFixed(2)} s`,
    );
    log(`nats-server CPU over the replay: ${natsCpu.toFixed(2)} s (${((natsCpu / Math.max(1, r.received)) * 1e6).toFixed(1)} us/event); the machine was ${(machineBusy * 100).toFixed(0)}% busy (${os.cpus().length} cores)`);
    if (profDir !== undefined) log(`CPU profiles of the relay's threads: ${path.resolve(profDir)}`);
    const ratio = r.received / r.spanS / (b.received / b.spanS);
    log('');
    log(`Y1 relay / serve delivered ev/s: ${ratio.toFixed(2)}x (goal >= 1.0x with 0 missing): ${ratio >= 1 && r.received === count ? 'holds' : 'missed'}${r.busy >= CLIENT_LIMITED || b.busy >= CLIENT_LIMITED ? '; the client was the limit in at least one phase: the ratio is the client\'s' : ''}; load average at the end ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  } catch (err) {
    process.stderr.write(`relay-y1 bench: ${err instanceof Error ? err.message : String(err)}\n`);
    status = 1;
  } finally {
    await Promise.all(children.reverse().map((c) => stopChild(c, 10_000)));
    unregister();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return status;
}

function sumCpu(threads: Map<number, number>): number {
  let sum = 0;
  for (const s of threads.values()) sum += s;
  return sum;
}

void run().then((code) => process.exit(code));
