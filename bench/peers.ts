/**
 * armorfeed against the Go reference feeder (gofeeder, ../shared/peers), side by side
 * on this machine, with the same neutral Go loadclient, for the five targets of the
 * issue (synthetic sources) and the real-path targets R1-R5 (the Go producer writing
 * into each server's Unix socket). See bench/PEERS.md for what each row means.
 *
 *   npm run bench:peers                       # full run, about 16 minutes
 *   node dist/bench/peers.js --only 1,3,R2    # some targets
 *   node dist/bench/peers.js --quick          # smoke run, about two minutes, no verdicts
 *
 * Prints the machine, one table (armorfeed, gofeeder, ratio, goal, verdict), a markdown
 * copy of the table, and writes everything to bench/results/peers-<timestamp>.json.
 * Exit status: 0 when every run ran (whether or not the targets hold), 1 when a run
 * failed (RPC failure, server crash or hang), 2 on bad arguments or a missing build.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import type { Measurement } from './peers/measure';
import { findPeersBin } from './peers/children';
import { machineInfo, machineLines, markdownTable, textTable, type Row } from './peers/report';
import { REAL_TARGETS } from './peers/realtargets';
import { FULL_PLAN, QUICK_PLAN, TARGETS, type Plan, type TargetContext, type TargetResult } from './peers/targets';

const repoRoot = path.resolve(__dirname, '..', '..');

/** Every target in run order: the synthetic-source targets, then the real path. */
const ALL_TARGETS: Record<string, (ctx: TargetContext) => Promise<TargetResult>> = { ...TARGETS, ...REAL_TARGETS };
const TARGET_IDS = Object.keys(ALL_TARGETS);

const USAGE = `usage: node dist/bench/peers.js [--only 1,2,3,4,5,R1,R2,R3,R4,R5] [--quick] [--bin DIR] [--out DIR]

  --only LIST  targets to run, e.g. 1,3,R2 (default: all ten; R1-R5 are the real path)
  --quick      smoke run: small counts, about two minutes, prints "smoke" instead of verdicts
  --bin DIR    directory with gofeeder, loadclient and producer (default: PEERS_BIN, else
               ../shared/peers/build.sh path, else ~/.cache/feeder-peers/bin)
  --out DIR    where the JSON goes (default: bench/results)`;

function fail(message: string): never {
  process.stderr.write(`peers: ${message}\n${USAGE}\n`);
  process.exit(2);
}

/** "1, r2,3" -> ['1', '3', 'R2'] in run order; undefined when an id is unknown. */
function parseOnly(list: string): string[] | undefined {
  const ids = list.split(',').map((s) => s.trim().toUpperCase());
  if (ids.length === 0 || ids.some((id) => !TARGET_IDS.includes(id))) return undefined;
  return TARGET_IDS.filter((id) => ids.includes(id));
}

function options(): { only: string[]; plan: Plan; bin?: string; out: string } {
  let parsed;
  try {
    parsed = parseArgs({
      options: {
        only: { type: 'string' },
        quick: { type: 'boolean', default: false },
        bin: { type: 'string' },
        out: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
      allowPositionals: false,
    });
  } catch (err) {
    fail(err instanceof Error ? err.message : String(err));
  }
  const v = parsed.values;
  if (v.help === true) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const only = v.only === undefined ? TARGET_IDS : parseOnly(v.only);
  if (only === undefined) fail(`--only wants a comma-separated list of ${TARGET_IDS.join(', ')}, got "${v.only}"`);
  return {
    only,
    plan: v.quick === true ? QUICK_PLAN : FULL_PLAN,
    bin: v.bin,
    out: v.out ?? path.join(repoRoot, 'bench', 'results'),
  };
}

/** A measurement for the JSON file: without the 200 ms RSS samples (target 5 keeps its per-second series). */
function measurementJson(m: Measurement): Record<string, unknown> {
  const { server, loadclient, ...rest } = m;
  return {
    ...rest,
    loadclient: loadclient === undefined ? undefined : { ...loadclient, stderrTail: m.problems.length > 0 ? loadclient.stderrTail : undefined },
    server:
      server === undefined
        ? undefined
        : { ...server, samples: undefined, sampleCount: server.samples.length, stderrTail: m.problems.length > 0 ? server.stderrTail : undefined },
  };
}

async function main(): Promise<void> {
  const opts = options();
  const cliMain = path.join(repoRoot, 'dist', 'src', 'cli', 'main.js');
  if (!fs.existsSync(cliMain)) fail(`${cliMain} is missing: build first (npx tsc -p tsconfig.json)`);
  let found: string;
  try {
    found = findPeersBin(repoRoot, opts.bin);
  } catch (err) {
    fail((err as Error).message);
  }
  if (opts.only.some((id) => id.startsWith('R')) && !fs.existsSync(path.join(found, 'producer'))) {
    fail(`${found} has no producer, which targets R1-R5 need: run ../shared/peers/build.sh (or pass --bin)`);
  }
  const bin = { peersBin: found, repoRoot };
  const machine = machineInfo(repoRoot, bin.peersBin);
  const startedAt = new Date();
  const mode = opts.plan.quick ? 'quick (smoke: small counts, no verdicts)' : 'full';
  const header = [`armorfeed vs gofeeder, same loadclient, targets ${opts.only.join(',')}, ${mode}, started ${startedAt.toISOString()}`, ...machineLines(machine)];
  process.stdout.write(`${header.join('\n')}\n\n`);

  const log = (line: string): void => {
    process.stderr.write(`peers: ${line}\n`);
  };
  const results: TargetResult[] = [];
  const targetErrors: string[] = [];
  const memo = new Map<string, unknown>();
  for (const id of opts.only) {
    log(`target ${id} ...`);
    try {
      results.push(await ALL_TARGETS[id]({ bin, plan: opts.plan, log, memo }));
    } catch (err) {
      const message = `target ${id} aborted: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`;
      targetErrors.push(message);
      log(message);
    }
  }
  machine.loadavgEnd = os.loadavg();
  const elapsedS = (Date.now() - startedAt.getTime()) / 1000;

  const rows: Row[] = results.flatMap((r) => r.rows);
  const measurements = results.flatMap((r) => r.measurements);
  const failures = [
    ...targetErrors,
    ...measurements.flatMap((m) => m.problems.map((p) => `${m.system} ${m.label}: ${p}`)),
  ];
  const observations = measurements.flatMap((m) => m.observations);

  const out: string[] = [];
  out.push(textTable(rows), '');
  for (const r of results) {
    out.push(`${r.id}. ${r.title}`);
    for (const d of r.details) out.push(`   ${d}`);
  }
  out.push('', ...machineLines(machine), `elapsed ${elapsedS.toFixed(0)} s`);
  if (observations.length > 0) out.push('', 'observations (the run went through, but these look wrong):', ...observations.map((o) => `  - ${o}`));
  if (failures.length > 0) out.push('', 'FAILED RUNS:', ...failures.map((f) => `  - ${f}`));

  const md = [
    `Measured ${startedAt.toISOString().slice(0, 10)} with \`node dist/bench/peers.js${opts.only.length < TARGET_IDS.length ? ` --only ${opts.only.join(',')}` : ''}${opts.plan.quick ? ' --quick' : ''}\`:`,
    `${machine.cpuModel}, ${machine.cores} cores, ${machine.ramGiB.toFixed(0)} GiB, Linux ${machine.kernel}; node ${machine.node}, ${machine.go}, @grpc/grpc-js ${machine.grpcJs}; armorfeed ${machine.commit.slice(0, 12)}${machine.uncommittedFiles > 0 ? ' (with uncommitted changes)' : ''}; load average ${machine.loadavgStart[0].toFixed(2)} at start, ${machine.loadavgEnd[0].toFixed(2)} at end.`,
    '',
    markdownTable(rows),
  ].join('\n');
  out.push('', '---- markdown (for bench/README.md) ----', md, '---- end markdown ----');

  fs.mkdirSync(opts.out, { recursive: true });
  const file = path.join(opts.out, `peers-${startedAt.toISOString().replace(/[:.]/g, '-')}.json`);
  const json = {
    startedAt: startedAt.toISOString(),
    elapsedS,
    mode: opts.plan.quick ? 'quick' : 'full',
    // Numbers for 1-5 as before, strings for R1-R5.
    only: opts.only.map((id) => (/^\d+$/.test(id) ? Number(id) : id)),
    plan: opts.plan,
    machine,
    rows,
    targets: results.map((r) => ({ id: r.id, title: r.title, rows: r.rows, details: r.details, data: r.data, measurements: r.measurements.map(measurementJson) })),
    observations,
    failures,
    markdown: md,
  };
  fs.writeFileSync(file, `${JSON.stringify(json, null, 2)}\n`);
  out.push('', `results: ${path.relative(process.cwd(), file) || file}`);
  process.stdout.write(`${out.join('\n')}\n`);
  process.exitCode = failures.length > 0 ? 1 : 0;
}

main().catch((err: unknown) => {
  process.stderr.write(`peers: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
