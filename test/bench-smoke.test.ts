/**
 * The micro-benchmarks in --quick mode, as CI runs them: every stage must run against a
 * real worker thread and a real grpc-js server and client, finish, and print a numeric
 * ratio against its baseline. Speed is not judged here (CI machines vary); that the
 * benchmarks still work is.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { repoRoot } from './helpers/repo';

const BENCHMARKS = [
  'ring vs postMessage',
  'batch encode vs per-event encode',
  'batched framing vs per-message call.write()',
  'shared fan-out vs per-client copies',
  'scan-only vs msgpackr unpack',
  'socket ingest: frames to ring records',
];

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runMicro(args: string[], timeoutMs: number): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(repoRoot, 'dist', 'bench', 'micro.js'), ...args], { timeout: timeoutMs, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : null;
      resolve({ code, stdout, stderr: err !== null && err.killed ? `${stderr}\n(killed after ${timeoutMs} ms)` : stderr });
    });
  });
}

test('bench - micro --quick runs every stage and prints a numeric ratio for each', { timeout: 130_000 }, async () => {
  const resultsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'armorfeed-bench-'));
  try {
    const run = await runMicro(['--quick', '--results-dir', resultsDir], 120_000);
    assert.equal(run.code, 0, `micro.js --quick exited ${run.code}\nstdout:\n${run.stdout}\nstderr:\n${run.stderr}`);

    // The machine comes first, so a number is never read without it.
    assert.match(run.stdout, /^cpu: .+$/m);
    assert.match(run.stdout, /^node: +v\d+/m);
    assert.match(run.stdout, /^packages: .*@grpc\/grpc-js \d+\.\d+\.\d+.*tinybench \d+\.\d+\.\d+/m);

    for (const name of BENCHMARKS) {
      const row = run.stdout.split('\n').find((line) => line.startsWith(`| ${name} `));
      assert.ok(row !== undefined, `no table row for "${name}" in:\n${run.stdout}`);
      const cells = row.split('|').map((c) => c.trim());
      const ratio = /^(\d+(?:\.\d+)?)x$/.exec(cells[6]);
      assert.ok(ratio !== null, `"${name}": ratio cell "${cells[6]}" is not a number`);
      assert.ok(Number.isFinite(Number(ratio[1])) && Number(ratio[1]) > 0, `"${name}": ratio ${ratio[1]} is not a positive number`);
      assert.match(cells[4], /^[\d,.]+ \w+\/s$/, `"${name}": candidate rate "${cells[4]}"`);
      assert.match(cells[5], /^[\d,.]+ \w+\/s$/, `"${name}": baseline rate "${cells[5]}"`);
    }

    const files = fs.readdirSync(resultsDir).filter((f) => /^micro-quick-.*\.json$/.test(f));
    assert.equal(files.length, 1, `expected one results file in ${resultsDir}, got ${files.join(', ')}`);
    const saved = JSON.parse(fs.readFileSync(path.join(resultsDir, files[0]), 'utf8')) as { results: { benchmark: string; ratio: number }[] };
    for (const name of BENCHMARKS) {
      const r = saved.results.find((x) => x.benchmark === name);
      assert.ok(r !== undefined && Number.isFinite(r.ratio) && r.ratio > 0, `results JSON has no numeric ratio for "${name}"`);
    }
  } finally {
    fs.rmSync(resultsDir, { recursive: true, force: true });
  }
});

/** The row labels of every target, synthetic (1-5) and real path (R1-R5), in --quick. */
const PEER_TARGETS = [
  '1. 1 client, rate 0',
  '3. 4 clients @ 50k/s',
  '4. 1 client @ 1,000/s',
  '5. 8+8 stalled',
  'R1. socket, 1 client @ 1,000/s',
  'R2. socket, 1 client @ 50k/s',
  'R3. socket, 4 clients @ 50k/s',
  'R4. socket, unpaced --per 64',
  'R5. socket, memory',
  'R5. socket, 8+8 stalled',
];

test('bench - peers --quick runs armorfeed and gofeeder side by side and prints the table', { timeout: 320_000 }, async (t) => {
  const bin = process.env.PEERS_BIN;
  if (bin === undefined || !fs.existsSync(path.join(bin, 'gofeeder')) || !fs.existsSync(path.join(bin, 'producer'))) {
    t.skip('PEERS_BIN is not set (.ci/run builds ../shared/peers and sets it)');
    return;
  }
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'armorfeed-peers-'));
  try {
    const run = await new Promise<Run>((resolve) => {
      execFile(process.execPath, [path.join(repoRoot, 'dist', 'bench', 'peers.js'), '--quick', '--bin', bin, '--out', out], { timeout: 300_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
        resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : null, stdout, stderr });
      });
    });
    assert.equal(run.code, 0, `peers.js --quick exited ${run.code}\nstdout:\n${run.stdout.slice(-4000)}\nstderr:\n${run.stderr.slice(-4000)}`);
    for (const target of PEER_TARGETS) {
      assert.ok(run.stdout.includes(target), `no row for target "${target}" in:\n${run.stdout.slice(-4000)}`);
    }
    const files = fs.readdirSync(out).filter((f) => f.endsWith('.json'));
    assert.equal(files.length, 1, 'one JSON result file');
    const saved = JSON.parse(fs.readFileSync(path.join(out, files[0]), 'utf8')) as { targets: { id: number | string; measurements: { producer?: { report?: { sent: number } } }[] }[] };
    assert.deepEqual(saved.targets.map((x) => x.id), [1, 2, 3, 4, 5, 'R1', 'R2', 'R3', 'R4', 'R5'], 'every target in the JSON, in order');
    for (const target of saved.targets.filter((x) => typeof x.id === 'string')) {
      for (const m of target.measurements) assert.ok((m.producer?.report?.sent ?? 0) > 0, `${target.id}: a measurement without a producer report`);
    }
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});
