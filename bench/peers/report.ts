/**
 * What the peer benchmark prints: the machine and versions it ran on, and one table of
 * rows (target, measure, armorfeed, gofeeder, ratio, goal, verdict), as aligned text for
 * the terminal and as markdown for bench/README.md.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export type Verdict = 'holds' | 'missed' | 'failed run' | 'smoke' | '';

export interface Row {
  target: string;
  measure: string;
  armorfeed: string;
  gofeeder: string;
  /** armorfeed / gofeeder, as the goal states it. */
  ratio: string;
  goal: string;
  verdict: Verdict;
}

export interface MachineInfo {
  cpuModel: string;
  cores: number;
  ramGiB: number;
  kernel: string;
  os: string;
  node: string;
  go: string;
  grpcJs: string;
  commit: string;
  /** Tracked files with uncommitted changes when the run started (others edit src/). */
  uncommittedFiles: number;
  /** When dist/src was last compiled; the servers run that build, not necessarily `commit`. */
  distBuiltAt: string;
  /** src/**.ts files changed since that build (non-zero: the build is stale). */
  srcNewerThanDist: number;
  peersBin: string;
  loadavgStart: number[];
  loadavgEnd?: number[];
}

function run(cmd: string, args: string[], cwd: string): string | undefined {
  try {
    return execFileSync(cmd, args, { cwd, encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return undefined;
  }
}

function osName(): string {
  try {
    const m = /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(fs.readFileSync('/etc/os-release', 'utf8'));
    return m?.[1] ?? os.type();
  } catch {
    return os.type();
  }
}

/** mtime of the compiled CLI, and how many src/**.ts files are newer than it. */
function distFreshness(repoRoot: string): { builtAt: string; newer: number } {
  let built: number;
  try {
    built = fs.statSync(path.join(repoRoot, 'dist', 'src', 'cli', 'main.js')).mtimeMs;
  } catch {
    return { builtAt: 'not built', newer: 0 };
  }
  let newer = 0;
  const walk = (dir: string): void => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(p);
      else if (entry.name.endsWith('.ts') && fs.statSync(p).mtimeMs > built) newer++;
    }
  };
  try {
    walk(path.join(repoRoot, 'src'));
  } catch {
    // An unreadable src/ only loses the staleness hint.
  }
  return { builtAt: new Date(built).toISOString(), newer };
}

export function machineInfo(repoRoot: string, peersBin: string): MachineInfo {
  let cpuModel = os.cpus()[0]?.model ?? 'unknown';
  try {
    const m = /^model name\s*:\s*(.*)$/m.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'));
    if (m !== null) cpuModel = m[1].trim();
  } catch {
    // os.cpus() is the fallback.
  }
  let grpcJs = 'unknown';
  try {
    const pkg = JSON.parse(fs.readFileSync(path.join(repoRoot, 'node_modules', '@grpc', 'grpc-js', 'package.json'), 'utf8')) as { version?: unknown };
    if (typeof pkg.version === 'string') grpcJs = pkg.version;
  } catch {
    // stays unknown
  }
  const status = run('git', ['status', '--porcelain', '--untracked-files=no'], repoRoot);
  const fresh = distFreshness(repoRoot);
  return {
    cpuModel,
    cores: os.cpus().length,
    ramGiB: os.totalmem() / 2 ** 30,
    kernel: os.release(),
    os: osName(),
    node: process.version,
    go: (run('go', ['version'], repoRoot) ?? 'go: not found').replace(/^go version /, ''),
    grpcJs,
    commit: run('git', ['rev-parse', 'HEAD'], repoRoot) ?? 'unknown',
    uncommittedFiles: status === undefined || status === '' ? 0 : status.split('\n').length,
    distBuiltAt: fresh.builtAt,
    srcNewerThanDist: fresh.newer,
    peersBin,
    loadavgStart: os.loadavg(),
  };
}

const fmtLoad = (l: number[]): string => l.map((x) => x.toFixed(2)).join(' ');

export function machineLines(m: MachineInfo): string[] {
  const commit =
    `${m.commit.slice(0, 12)}${m.uncommittedFiles > 0 ? ` (+${m.uncommittedFiles} uncommitted tracked file(s))` : ''}` +
    `, dist built ${m.distBuiltAt}${m.srcNewerThanDist > 0 ? ` (STALE: ${m.srcNewerThanDist} src file(s) changed since)` : ''}`;
  return [
    `machine: ${m.cpuModel}, ${m.cores} cores, ${m.ramGiB.toFixed(1)} GiB RAM, kernel ${m.kernel} (${m.os})`,
    `versions: node ${m.node}, ${m.go} (gofeeder/loadclient), @grpc/grpc-js ${m.grpcJs}, armorfeed ${commit}`,
    `load average (1/5/15 min): start ${fmtLoad(m.loadavgStart)}${m.loadavgEnd === undefined ? '' : `, end ${fmtLoad(m.loadavgEnd)}`}`,
  ];
}

const HEADERS = ['target', 'measure', 'armorfeed', 'gofeeder', 'af/gf', 'goal', 'result'];

function cells(r: Row): string[] {
  return [r.target, r.measure, r.armorfeed, r.gofeeder, r.ratio, r.goal, r.verdict];
}

export function textTable(rows: Row[]): string {
  const all = [HEADERS, ...rows.map(cells)];
  const widths = HEADERS.map((_, i) => Math.max(...all.map((r) => r[i].length)));
  const numeric = new Set([2, 3, 4]);
  const line = (r: string[]): string =>
    r.map((c, i) => (numeric.has(i) ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ').trimEnd();
  const rule = widths.map((w) => '-'.repeat(w)).join('  ');
  const out = [line(HEADERS), rule];
  let previous = '';
  for (const r of rows) {
    if (previous !== '' && r.target !== previous) out.push('');
    out.push(line(cells(r)));
    previous = r.target;
  }
  return out.join('\n');
}

export function markdownTable(rows: Row[]): string {
  const esc = (s: string): string => s.replace(/\|/g, '\\|');
  const out = [`| ${HEADERS.join(' | ')} |`, '|---|---|--:|--:|--:|---|---|'];
  for (const r of rows) out.push(`| ${cells(r).map(esc).join(' | ')} |`);
  return out.join('\n');
}

// ---- number formatting ---------------------------------------------------------------

const NA = 'n/a';
export const int = (n: number): string => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : NA);
export const pct = (n: number): string => (Number.isFinite(n) ? `${n < 0.01 && n > 0 ? n.toFixed(3) : n.toFixed(2)}%` : NA);
export const mb = (bytes: number): string => (Number.isFinite(bytes) ? `${(bytes / 2 ** 20).toFixed(0)} MB` : NA);
export const ms = (us: number): string =>
  !Number.isFinite(us) ? NA : us >= 10_000 ? `${(us / 1000).toFixed(0)} ms` : `${(us / 1000).toFixed(2)} ms`;
export const us = (n: number): string => (Number.isFinite(n) ? `${int(n)} µs` : NA);

export function ratio(a: number | undefined, b: number | undefined): string {
  if (a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b === 0) return 'n/a';
  const r = a / b;
  return `${r >= 10 ? r.toFixed(1) : r.toFixed(2)}x`;
}

export function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}
