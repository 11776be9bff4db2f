/**
 * Runs a feeder as a child process for tests that talk to it over real sockets.
 *
 * `startServe(args)` runs `node dist/src/cli/main.js serve ...`-style commands: the
 * server announces readiness on stderr with one line
 *
 *   armorfeed: listening grpc=127.0.0.1:40001 health=127.0.0.1:40002 metrics=127.0.0.1:40003 ...
 *
 * whose `key=value` tokens become `tokens`, and those whose value is HOST:PORT also
 * become `addresses` and `ports`. `startProcess` is the same machinery for any command
 * (e.g. the Go reference feeder) with its own ready pattern.
 *
 * Every wait is bounded: readiness by `readyTimeoutMs`, `stop()` by its timeout, after
 * which the child is SIGKILLed. Children still running when the test process exits are
 * SIGKILLed too, so a failed assertion never leaves a server behind.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { FeederStats } from '../../src/feeder';
import { repoRoot } from './repo';
import { BROKER_NODE_FLAGS } from '../../src/cli/nodeFlags';
import { settledWithin } from './wait';

export interface ServeOptions {
  /** Line (stdout or stderr) that means "ready". Default: the armorfeed listening line. */
  readyPattern?: RegExp;
  /** How long the process gets to print the ready line. Default 20 s. */
  readyTimeoutMs?: number;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
}

export interface ServeExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** True when the process had to be SIGKILLed because it ignored the stop signal. */
  killed: boolean;
  stdout: string;
  stderr: string;
}

export interface ServeProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  /** The ready line itself. */
  readonly readyLine: string;
  /** Every `key=value` token of the ready line. */
  readonly tokens: Readonly<Record<string, string>>;
  /** Tokens whose value is HOST:PORT, e.g. `{ grpc: '127.0.0.1:40001' }`. */
  readonly addresses: Readonly<Record<string, string>>;
  /** The port of each address token, e.g. `{ grpc: 40001 }`. */
  readonly ports: Readonly<Record<string, number>>;
  /** Output collected so far. */
  stdout(): string;
  stderr(): string;
  /** Resolves when the process exits on its own or is stopped. */
  readonly exited: Promise<ServeExit>;
  /** Sends `signal`, waits up to `timeoutMs` (default 10 s), then SIGKILLs and waits again. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<ServeExit>;
}

export const ARMORFEED_READY = /^armorfeed: listening\b/;
const DEFAULT_READY_TIMEOUT_MS = 20_000;
const DEFAULT_STOP_TIMEOUT_MS = 10_000;
/** After SIGKILL the kernel reaps at once; this only guards against a stuck pipe. */
const KILL_GRACE_MS = 5_000;

export const armorfeedMain = path.join(repoRoot, 'dist', 'src', 'cli', 'main.js');

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

/** Starts `node dist/src/cli/main.js ARGS...` and waits for its listening line. */
export function startServe(args: string[], opts: ServeOptions = {}): Promise<ServeProcess> {
  return startProcess(process.execPath, [...BROKER_NODE_FLAGS, armorfeedMain, ...args], opts);
}

/** GET /stats from the metrics server at `metrics` (HOST:PORT), asserting 200; `timeoutMs`, when given, bounds the request. */
export async function fetchStats(metrics: string, timeoutMs?: number): Promise<FeederStats> {
  const res = await fetch(`http://${metrics}/stats`, timeoutMs === undefined ? undefined : { signal: AbortSignal.timeout(timeoutMs) });
  assert.equal(res.status, 200);
  return (await res.json()) as FeederStats;
}

let statsDir: string | undefined;
let statsFiles = 0;

/**
 * `--statsFile` on a fresh path: pass `args` to serve or relay, and `read()` the final
 * stats once it has exited (the object /stats serves, as it was at the end of the drain).
 * The files are removed when the test process exits.
 */
export function exitStatsFile(): { args: string[]; read(): FeederStats } {
  if (statsDir === undefined) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'armorfeed-exit-stats-'));
    process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
    statsDir = dir;
  }
  const file = path.join(statsDir, `stats-${++statsFiles}.json`);
  return {
    args: ['--statsFile', file],
    read: () => JSON.parse(fs.readFileSync(file, 'utf8')) as FeederStats,
  };
}

/** Splits `HOST:PORT` (IPv6 hosts in brackets); undefined when `value` is not an address. */
export function splitHostPort(value: string): { host: string; port: number } | undefined {
  const m = /^(\[[0-9a-fA-F:.%\w]+\]|[^\s:[\]]+):(\d{1,5})$/.exec(value);
  if (m === null) return undefined;
  const port = Number(m[2]);
  if (port > 65535) return undefined;
  return { host: m[1].replace(/^\[(.*)\]$/, '$1'), port };
}

/** Parses the `key=value` tokens of a ready line (tokens without `=` are ignored). */
export function parseReadyLine(line: string): {
  tokens: Record<string, string>;
  addresses: Record<string, string>;
  ports: Record<string, number>;
} {
  const tokens: Record<string, string> = {};
  const addresses: Record<string, string> = {};
  const ports: Record<string, number> = {};
  for (const token of line.trim().split(/\s+/)) {
    const eq = token.indexOf('=');
    if (eq <= 0) continue;
    const key = token.slice(0, eq);
    const value = token.slice(eq + 1);
    tokens[key] = value;
    const hp = splitHostPort(value);
    if (hp !== undefined) {
      addresses[key] = value;
      ports[key] = hp.port;
    }
  }
  return { tokens, addresses, ports };
}

/** Starts any command and waits until a line of its stdout or stderr matches `readyPattern`. */
export function startProcess(command: string, args: string[], opts: ServeOptions = {}): Promise<ServeProcess> {
  const readyPattern = opts.readyPattern ?? ARMORFEED_READY;
  const readyTimeoutMs = opts.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS;
  const child = spawn(command, args, {
    cwd: opts.cwd ?? repoRoot,
    env: opts.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);

  let stdout = '';
  let stderr = '';
  let killed = false;
  const exited = new Promise<ServeExit>((resolve) => {
    // 'close' (not 'exit') so that all output has been read.
    child.on('close', (code, signal) => {
      live.delete(child);
      resolve({ code, signal, killed, stdout, stderr });
    });
  });

  const command0 = `${path.basename(command)} ${args.map((a) => path.basename(a)).join(' ')}`.slice(0, 200);
  const tail = (): string => `--- stderr (last 2 kB) ---\n${stderr.slice(-2048)}\n--- stdout (last 1 kB) ---\n${stdout.slice(-1024)}`;

  return new Promise<ServeProcess>((resolve, reject) => {
    let settled = false;
    const pending = { stdout: '', stderr: '' };

    const onLine = (line: string): void => {
      if (settled || !readyPattern.test(line)) return;
      settled = true;
      clearTimeout(timer);
      const parsed = parseReadyLine(line);
      resolve({
        child,
        pid: child.pid ?? -1,
        readyLine: line,
        ...parsed,
        stdout: () => stdout,
        stderr: () => stderr,
        exited,
        stop: (signal: NodeJS.Signals = 'SIGTERM', timeoutMs = DEFAULT_STOP_TIMEOUT_MS) => stop(signal, timeoutMs),
      });
    };
    const onData = (stream: 'stdout' | 'stderr') => (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      if (stream === 'stdout') stdout += text;
      else stderr += text;
      const lines = (pending[stream] + text).split('\n');
      pending[stream] = lines.pop() ?? '';
      for (const line of lines) onLine(line.replace(/\r$/, ''));
    };
    child.stdout?.on('data', onData('stdout'));
    child.stderr?.on('data', onData('stderr'));

    const timer = setTimeout(() => {
      if (settled) return;
      settled = true;
      void stop('SIGKILL', KILL_GRACE_MS).then(() =>
        reject(new Error(`${command0}: no line matching ${readyPattern} within ${readyTimeoutMs} ms\n${tail()}`)),
      );
    }, readyTimeoutMs);

    child.on('error', (err) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(new Error(`${command0}: failed to start: ${err.message}`));
    });
    void exited.then((exit) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(
        new Error(
          `${command0}: exited (code=${exit.code} signal=${exit.signal}) before printing a line matching ${readyPattern}\n${tail()}`,
        ),
      );
    });
  });

  async function stop(signal: NodeJS.Signals, timeoutMs: number): Promise<ServeExit> {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill(signal);
      const first = await settledWithin(exited, timeoutMs);
      if (first !== undefined) return first;
      killed = true;
      child.kill('SIGKILL');
    }
    const last = await settledWithin(exited, KILL_GRACE_MS);
    if (last === undefined) throw new Error(`${command0}: pid ${child.pid} did not exit after SIGKILL`);
    return last;
  }
}

export { freePort } from '../../bench/devkit';
