/**
 * Where the time per event goes, from CPU profiles of a real run: armorfeed serve with
 * the synthetic source under the ../shared/peers loadclient, every thread profiled with
 * --cpu-prof, and each sample's top frame assigned to a pipeline stage by the file it
 * is in. Prints, per stage, CPU-microseconds per event and share of the busy time.
 *
 *   node dist/bench/profile.js [--rate 0] [--count 1000000] [--clients 1] [--streams logs] [-- SERVE FLAGS]
 *
 * Flags after `--` go to `armorfeed serve` as they are (e.g. `-- --outputSlabs 0`).
 *
 * Self time only: a stage's figure is the time spent in its own code, not in what it
 * calls in another stage. Samples in the piscina worker's wait loop, the synthetic
 * source's pacing sleep and (idle) are waiting, not work, and are left out.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { freePort } from './devkit';
import { findPeersBin, spawnTracked, stopChild } from './peers/children';
import { runLoadClient } from './peers/loadclient';
import { readThreadCpuSeconds } from '../src/load/proc-sampler';
import { BROKER_NODE_FLAGS } from '../src/cli/nodeFlags';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string };
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const stages = ['ingest', 'ring', 'encode', 'dispatch', 'fan-out', 'grpc write', 'gc', 'startup', 'other'] as const;
type Stage = (typeof stages)[number] | 'waiting';

/** Which stage a sample's top frame belongs to. */
export function stageOf(frame: ProfileNode['callFrame']): Stage {
  const { url, functionName } = frame;
  if (functionName === '(idle)' || functionName === 'atomicsWaitLoop' || (functionName === 'run' && url.includes('/ingest/source.worker'))) return 'waiting';
  if (functionName === '(garbage collector)') return 'gc';
  if (functionName === 'postMessage' || functionName === 'receiveMessageOnPort') return 'dispatch';
  if (url.includes('cjs/loader') || url.includes('bootstrap/') || url.includes('protobufjs') || ['internalModuleStat', 'lstat', 'readFileUtf8', 'realpathSync', 'compileFunction'].includes(functionName)) {
    return 'startup';
  }
  if (url.includes('/src/ingest/')) return 'ingest';
  if (url.includes('/src/ring/')) return 'ring';
  if (url.includes('/src/encode/') || url.includes('/src/event/')) return /\/encode\/(pool|pump|strategy|stage)\./.test(url) ? 'dispatch' : 'encode';
  if (url.includes('piscina')) return 'dispatch';
  if (url.includes('/src/fanout/') || url.includes('hdr-histogram')) return 'fan-out';
  if (url.includes('@grpc/grpc-js') || url.includes('http2') || url.includes('internal/streams') || url.includes('stream_base') || functionName === '(program)' || functionName === 'writeBuffer' || functionName === 'writev') {
    return 'grpc write';
  }
  return 'other';
}

function attribute(file: string): Map<Stage, number> {
  const p = JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const out = new Map<Stage, number>();
  p.samples.forEach((id, i) => {
    const node = byId.get(id);
    if (node === undefined) return;
    const stage = stageOf(node.callFrame);
    out.set(stage, (out.get(stage) ?? 0) + (p.timeDeltas[i] ?? 0));
  });
  return out;
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      rate: { type: 'string', default: '0' },
      count: { type: 'string', default: '1000000' },
      clients: { type: 'string', default: '1' },
      streams: { type: 'string', default: 'logs' },
      'alert-every': { type: 'string', default: '0' },
    },
  });
  const repoRoot = path.resolve(__dirname, '..', '..');
  const bin = findPeersBin(repoRoot, undefined);
  const count = Number(values.count);
  const clients = Number(values.clients);
  const streams = values.streams as 'logs' | 'alerts' | 'both';
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'armorfeed-prof-'));
  const port = await freePort();
  const server = spawnTracked(process.execPath, [
    ...BROKER_NODE_FLAGS,
    '--cpu-prof', '--cpu-prof-dir', dir,
    path.join(repoRoot, 'dist/src/cli/main.js'), 'serve', '--bind', '127.0.0.1', '--gRPC', String(port), '--gRPCHealthPort', '-1', '--metricsPort', '-1',
    '--source', 'synthetic', '--rate', String(values.rate), '--count', String(count), '--alert-every', String(values['alert-every']),
    '--wait-clients', String(streams === 'both' ? 2 * clients : clients),
    ...positionals,
  ], repoRoot);
  await new Promise<void>((resolve) => server.onLine((l) => l.text.includes('listening') && resolve()));
  const threadsBefore = readThreadCpuSeconds(server.pid);
  const run = await runLoadClient(bin, repoRoot, { addr: `127.0.0.1:${port}`, clients, expect: count, streams, durationS: 120 });
  const threadsAfter = readThreadCpuSeconds(server.pid);
  await stopChild(server, 20_000, 'SIGINT');
  const received = run.report?.received ?? 0;
  const totals = new Map<Stage, number>();
  for (const f of fs.readdirSync(dir).filter((x) => x.endsWith('.cpuprofile'))) {
    for (const [stage, us] of attribute(path.join(dir, f))) totals.set(stage, (totals.get(stage) ?? 0) + us);
  }
  fs.rmSync(dir, { recursive: true, force: true });
  const busy = stages.reduce((n, s) => n + (totals.get(s) ?? 0), 0);
  process.stdout.write(`armorfeed profile: rate ${values.rate}, ${count} events, ${clients} client(s) on ${streams}${positionals.length > 0 ? `, serve ${positionals.join(' ')}` : ''}; ` +
    `loadclient received ${received} (${run.report?.aggregateRateEps.toFixed(0) ?? '?'} ev/s); server busy ${(busy / 1e6).toFixed(2)} CPU-s in all threads\n\n`);
  process.stdout.write('| stage | CPU-us per event | share of busy time |\n|---|--:|--:|\n');
  for (const s of stages) {
    const us = totals.get(s) ?? 0;
    process.stdout.write(`| ${s} | ${(us / count).toFixed(2)} | ${((100 * us) / busy).toFixed(1)}% |\n`);
  }
  process.stdout.write(`| **all** | **${(busy / count).toFixed(2)}** | 100% |\n`);
  process.stdout.write('\nPer event generated (the loadclient runs beside it and is not included). "grpc write" includes node\'s native HTTP/2 and socket work ((program)).\n');
  process.stdout.write(`\n${threadTable(server.pid, threadsBefore, threadsAfter, count)}`);
}

/**
 * CPU per thread while the load ran, from /proc: it also counts what no JS profile
 * sees (V8's GC and compiler helper threads, libuv). Node does not name its threads, so
 * only the main thread is labelled; the JS threads (encoders, source) are among the busiest.
 */
function threadTable(pid: number, before: Map<number, number>, after: Map<number, number>, events: number): string {
  const used = [...after].map(([tid, s]) => ({ tid, s: s - (before.get(tid) ?? 0) })).filter((t) => t.s > 0.005);
  used.sort((a, b) => (a.tid === pid ? -1 : b.tid === pid ? 1 : b.s - a.s));
  const total = used.reduce((n, t) => n + t.s, 0);
  const rows = used.map((t) => `| ${t.tid === pid ? 'main' : `thread ${t.tid}`} | ${t.s.toFixed(2)} | ${((1e6 * t.s) / events).toFixed(2)} |`);
  return [
    `CPU by thread while the load ran (/proc/${pid}/task, utime+stime): ${total.toFixed(2)} CPU-s = ${((1e6 * total) / events).toFixed(2)} us per event`,
    '',
    '| thread | CPU-s | CPU-us per event |',
    '|---|--:|--:|',
    ...rows,
    '',
  ].join('\n');
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`profile: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
