/**
 * Y2: `armorfeed relay` in feeders mode, end to end on this machine.
 *
 *   3 x (Go producer --rate R --> armorfeed serve --source socket --host node-X --encoderThreads 1)
 *        --> armorfeed relay --feeders node-a,node-b,node-c --> loadclient --clients 2
 *   baseline, same run, same load: loadclient --clients 1 straight on node-a
 *
 * Latency is loadclient's: its receive time minus the event's UpdatedTime, which the node
 * stamps at ingest, so "via relay" is node -> relay -> client and the baseline node ->
 * client. Goal (issue 13): 0 missing, p99 <= 10 ms via the relay.
 *
 *   npm run bench:relay                          # 20,000 ev/s per node for 10 s
 *   node dist/bench/relay.js --rate 20000 --seconds 5 --per 10 --relay-queue 16000
 *   node dist/bench/relay.js --upstreams gofeeder   # the nodes are gofeeders (synthetic)
 *
 * With --upstreams gofeeder the three nodes are Go feeders generating their events (no
 * producers, no ingest): a stand-in for nodes on machines of their own, as in a cluster,
 * where the default puts three armorfeed nodes, their producers, the relay and the clients
 * on this machine's cores together. Latency is then from the gofeeder's UpdatedTime (its
 * generation) to the client.
 *
 * Prints the machine, the counts (producer sent, node encoded, relay received per
 * upstream, each client's received/missing), the latencies and the relay's CPU. Every
 * child is bounded (producers: schedule + 50% + 30 s; loadclient: --duration + 20 s;
 * servers: SIGTERM, SIGKILL after 10 s). Exit status 0 when the run ran (the goal may be
 * missed: that is the measurement), 1 when it failed, 2 on bad arguments.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { BROKER_NODE_FLAGS } from '../src/cli/nodeFlags';
import type { FeederStats } from '../src/feeder';
import { freePort } from './devkit';
import { findPeersBin, onBenchExit, ProcSampler, sleep, spawnTracked, stopChild, withTimeout, type TrackedChild } from './peers/children';
import { parseGofeederSummary } from './peers/servers';
import { runLoadClient, type LoadClientRun } from './peers/loadclient';
import { runProducer, producerCapMs, type ProducerRun } from './peers/producer';
import { machineInfo, machineLines } from './peers/report';

const repoRoot = path.resolve(__dirname, '..', '..');
const main = path.join(repoRoot, 'dist', 'src', 'cli', 'main.js');
const NODES = ['node-a', 'node-b', 'node-c'];
const GOAL_P99_US = 10_000;

interface Server {
  name: string;
  proc: TrackedChild;
  grpc: string;
  metrics: string;
}

type Upstreams = 'armorfeed' | 'gofeeder';

function options(): { rate: number; seconds: number; per: number; clients: number; queue: number; upstreams: Upstreams; bin?: string } {
  const { values } = parseArgs({
    options: {
      rate: { type: 'string', default: '20000' },
      seconds: { type: 'string', default: '10' },
      per: { type: 'string', default: '10' },
      clients: { type: 'string', default: '2' },
      'relay-queue': { type: 'string', default: '16000' },
      upstreams: { type: 'string', default: 'armorfeed' },
      bin: { type: 'string' },
    },
  });
  const int = (name: string, v: string, min: number, max: number): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) {
      process.stderr.write(`relay bench: --${name} must be an integer ${min}-${max}, got ${v}\n`);
      process.exit(2);
    }
    return n;
  };
  const upstreams = values.upstreams;
  if (upstreams !== 'armorfeed' && upstreams !== 'gofeeder') {
    process.stderr.write(`relay bench: --upstreams must be armorfeed or gofeeder, got ${upstreams}\n`);
    process.exit(2);
  }
  return { upstreams, rate: int('rate', values.rate, 1, 1_000_000), seconds: int('seconds', values.seconds, 1, 600), per: int('per', values.per, 1, 1000), clients: int('clients', values.clients, 1, 16), queue: int('relay-queue', values['relay-queue'], 1, 10_000_000), bin: values.bin };
}

/** Starts `armorfeed ARGS` and waits (20 s at most) for its listening line. */
async function startArmorfeed(name: string, args: string[]): Promise<Server> {
  const proc = spawnTracked(process.execPath, [...BROKER_NODE_FLAGS, main, ...args], repoRoot);
  const ready = new Promise<string>((resolve) => {
    proc.onLine((l) => {
      if (/^armorfeed: listening /.test(l.text)) resolve(l.text);
    });
  });
  const line = await withTimeout(Promise.race([ready, proc.exited.then(() => '')]), 20_000);
  if (line === undefined || line === '') {
    await stopChild(proc, 2_000, 'SIGKILL');
    throw new Error(`${name} did not start: ${proc.stderr().slice(-1500)}`);
  }
  const token = (key: string): string => /(?:^|\s)KEY=(\S+)/.source.replace('KEY', key);
  const grpc = new RegExp(token('grpc')).exec(line)?.[1] ?? '';
  const metrics = new RegExp(token('metrics')).exec(line)?.[1] ?? '';
  return { name, proc, grpc, metrics };
}

/**
 * A gofeeder generating `count` events at `rate` once `streams` Watch* streams are open;
 * resolves once it listens.
 */
async function startGofeeder(name: string, bin: string, rate: number, count: number, streams: number): Promise<Server> {
  const port = await freePort();
  const args = ['--addr', `127.0.0.1:${port}`, '--rate', String(rate), '--count', String(count), '--wait-clients', String(streams), '--start-after', '1s', '--queue', '100000'];
  const proc = spawnTracked(path.join(bin, 'gofeeder'), args, repoRoot);
  for (let i = 0; i < 400 && !proc.stderr().includes('listening'); i++) await sleep(25);
  if (!proc.stderr().includes('listening')) throw new Error(`gofeeder ${name} did not start: ${proc.stderr().slice(-500)}`);
  return { name, proc, grpc: `127.0.0.1:${port}`, metrics: '' };
}

async function stats(s: Server): Promise<FeederStats> {
  const res = await fetch(`http://${s.metrics}/stats`, { signal: AbortSignal.timeout(5_000) });
  return (await res.json()) as FeederStats;
}

async function waitFor(what: string, cond: () => Promise<boolean>, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

const us = (n: number | undefined): string => (n === undefined ? 'n/a' : n >= 10_000 ? `${(n / 1000).toFixed(1)} ms` : `${Math.round(n)} us`);

async function run(): Promise<number> {
  const o = options();
  const peersBin = findPeersBin(repoRoot, o.bin);
  const machine = machineInfo(repoRoot, peersBin);
  const count = o.rate * o.seconds;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-relay-'));
  const servers: Server[] = [];
  const cleanup = (): void => fs.rmSync(dir, { recursive: true, force: true });
  const unregister = onBenchExit(cleanup);
  const log = (line: string): void => void process.stdout.write(`${line}\n`);
  for (const l of machineLines(machine)) log(l);
  const gofeeders = o.upstreams === 'gofeeder';
  const source = gofeeders ? 'gofeeders generating' : `armorfeed serve, socket producers --per ${o.per}`;
  log(`Y2: 3 nodes x ${o.rate} ev/s x ${o.seconds} s (${source}) -> relay (--queueSize ${o.queue}) -> ${o.clients} loadclients; baseline: 1 loadclient on node-a directly`);
  let status = 0;
  try {
    for (const [i, name] of NODES.entries()) {
      if (gofeeders) {
        // The relay's three streams, and on node-a the baseline client's two.
        servers.push(await startGofeeder(name, peersBin, o.rate, count, i === 0 ? 5 : 3));
        continue;
      }
      const socket = path.join(dir, `${name}.sock`);
      // Three nodes share this machine's cores (a node has its own in a cluster): one encoder each.
      servers.push(await startArmorfeed(name, ['serve', '--bind', '127.0.0.1', '--gRPC', '0', '--gRPCHealthPort', '-1', '--metricsPort', '0', '--host', name, '--source', 'socket', '--socket', socket, '--encoderThreads', '1']));
    }
    const nodes = [...servers];
    const relay = await startArmorfeed('relay', ['relay', '--bind', '127.0.0.1', '--gRPC', '0', '--gRPCHealthPort', '-1', '--metricsPort', '0', '--queueSize', String(o.queue), '--feeders', nodes.map((n) => n.grpc).join(',')]);
    servers.push(relay);
    await waitFor('the relay connected to every node', async () => (await stats(relay)).relay?.upstreams.every((u) => u.connected) === true, 15_000);

    const durationS = o.seconds + 30;
    const viaRelay = runLoadClient(peersBin, repoRoot, { addr: relay.grpc, clients: o.clients, expect: 3 * count, streams: 'both', durationS, idleS: 5 });
    const direct = runLoadClient(peersBin, repoRoot, { addr: nodes[0].grpc, clients: 1, expect: count, streams: 'both', durationS, idleS: 5 });
    await waitFor("the loadclients' streams", async () => (await stats(relay)).clients.filter((c) => c.open).length >= 2 * o.clients && (gofeeders || (await stats(nodes[0])).clients.filter((c) => c.open).length >= 5), 15_000);

    const sampler = new ProcSampler(relay.proc.pid, relay.proc.spawnedAt).start();
    const cpu0 = sampler.sample()?.cpuSec ?? 0;
    const t0 = performance.now();
    const producers: ProducerRun[] = gofeeders
      ? []
      : await Promise.all(
          nodes.map((_, i) => {
            const p = { socket: path.join(dir, `${NODES[i]}.sock`), rate: o.rate, count, alertEvery: 5, per: o.per };
            return runProducer(peersBin, repoRoot, p, producerCapMs(p, 60));
          }),
        );
    const produceS = (performance.now() - t0) / 1000;
    const [lcRelay, lcDirect]: LoadClientRun[] = await Promise.all([viaRelay, direct]);
    const cpu1 = sampler.sample()?.cpuSec ?? cpu0;
    const runS = (performance.now() - t0) / 1000;
    sampler.stop();

    const relayStats = await stats(relay);
    const sent = producers.map((p) => p.report?.sent ?? 0);
    log('');
    if (gofeeders) {
      for (const n of nodes) {
        await stopChild(n.proc, 10_000);
        const rows = parseGofeederSummary(n.proc.stderr()).rows;
        const up = relayStats.relay?.upstreams.find((u) => u.id === n.grpc);
        log(`${n.name} (gofeeder): relay received ${(up?.streams.alerts.events ?? 0) + (up?.streams.logs.events ?? 0)} of ${count} (reconnects ${up === undefined ? 'n/a' : up.streams.alerts.reconnects + up.streams.logs.reconnects}); dropped at the node (all its streams): ${rows.reduce((sum, r) => sum + r.queueFull, 0)}`);
      }
    } else log(`producers: sent ${sent.join(' / ')} in ${produceS.toFixed(1)} s (blocked ${producers.map((p) => `${p.report?.blockedMs ?? 0} ms`).join(' / ')})`);
    for (const [i, n] of (gofeeders ? [] : nodes).entries()) {
      const s = await stats(n);
      const up = relayStats.relay?.upstreams.find((u) => u.id === n.grpc);
      const relayClient = s.clients.filter((c) => c.name.startsWith('armorfeed-relay@'));
      const nodeDrops = relayClient.reduce((sum, c) => sum + c.dropped.client_queue_full, 0);
      const nodeP99 = Math.max(...relayClient.filter((c) => c.stream !== 'messages').map((c) => c.latencyUs.p99));
      log(
        `${n.name}: ingested ${s.ingest.socket?.events ?? 0} of ${sent[i]}, encoded ${s.encoded.alerts + s.encoded.logs}; relay received ${(up?.streams.alerts.events ?? 0) + (up?.streams.logs.events ?? 0)}` +
          ` (reconnects ${up === undefined ? 'n/a' : up.streams.alerts.reconnects + up.streams.logs.reconnects}); dropped for the relay at the node: ${nodeDrops}; node's p99 to the relay (ingest -> write) ${us(nodeP99)}`,
      );
    }
    const relayDrops = relayStats.clients.reduce((sum, c) => sum + c.dropped.client_queue_full, 0);
    const relayCpu = cpu1 - cpu0;
    const relayP99 = Math.max(...relayStats.clients.filter((c) => c.stream !== 'messages').map((c) => c.latencyUs.p99));
    log(`relay's own p99 (arrival -> write to its clients): ${us(relayP99)}`);
    const spanS = gofeeders ? runS : produceS;
    log(`relay: CPU ${relayCpu.toFixed(1)} s over ${spanS.toFixed(1)} s (${((relayCpu / spanS) * 100).toFixed(0)}% of a core), max RSS ${(sampler.maxRssBytes() / 2 ** 20).toFixed(0)} MB, client_queue_full ${relayDrops}, batches ${relayStats.relay?.batches ?? 0}`);
    log('');
    log('                      received     missing   p50        p90        p99        p99.9      max');
    const row = (label: string, r: LoadClientRun): void => {
      const rep = r.report;
      if (rep === undefined) {
        log(`${label.padEnd(22)}no report (exit ${r.exitCode}${r.timedOut ? ', timed out' : ''}): ${r.stderrTail}`);
        status = 1;
        return;
      }
      const l = rep.latencyUs;
      log(`${label.padEnd(22)}${String(rep.received).padStart(9)}  ${String(rep.missing).padStart(9)}   ${[l.p50, l.p90, l.p99, l.p99_9, l.max].map((v) => us(v).padEnd(11)).join('')}`);
      if (rep.failures > 0) status = 1;
    };
    row(`via relay (${o.clients} clients)`, lcRelay);
    for (const c of lcRelay.report?.clients ?? []) log(`  client ${c.client}: received ${c.received}, missing ${c.missing}, p99 ${us(c.latencyUs.p99)}`);
    row('direct on node-a', lcDirect);
    const p99 = lcRelay.report?.latencyUs.p99;
    const base = lcDirect.report?.latencyUs.p99;
    const missing = lcRelay.report?.missing;
    log('');
    if (p99 !== undefined && base !== undefined && base > 0) log(`p99 via relay / direct: ${(p99 / base).toFixed(2)}x`);
    const holds = missing === 0 && p99 !== undefined && p99 <= GOAL_P99_US;
    log(`Y2 (0 missing, p99 <= ${GOAL_P99_US / 1000} ms via the relay): ${holds ? 'holds' : 'missed'} (missing ${missing ?? 'n/a'}, p99 ${us(p99)}; load average at the end ${os.loadavg().map((x) => x.toFixed(2)).join(' ')})`);
  } catch (err) {
    process.stderr.write(`relay bench: ${err instanceof Error ? err.message : String(err)}\n`);
    status = 1;
  } finally {
    await Promise.all(servers.reverse().map((s) => stopChild(s.proc, 10_000)));
    cleanup();
    unregister();
  }
  return status;
}

void run().then((code) => process.exit(code));
