/**
 * Child processes of the peer benchmark, and what /proc says about them.
 *
 * Every server and load client is spawned directly (no shell, no launcher), so its
 * PID is the process whose /proc/PID/stat utime+stime and /proc/PID/status VmHWM we
 * read: for node that covers the main thread and every worker thread. All children
 * are tracked in one set and SIGKILLed when the benchmark exits for any reason,
 * including SIGINT, so an interrupted run never leaves a server listening.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as os from 'node:os';
import * as path from 'node:path';
import * as fs from 'node:fs';
import { readCpuSeconds, tcpSockets } from '../../src/load/proc-sampler';
import { sharedDir } from '../devkit';

const live = new Set<ChildProcess>();
const cleanups = new Set<() => void>();
let exitHooksInstalled = false;

/** Kills every child still running (SIGKILL) and runs the registered cleanups. */
export function killAllChildren(): void {
  for (const cleanup of cleanups) {
    try {
      cleanup();
    } catch {
      // Best effort on the way out.
    }
  }
  for (const child of live) child.kill('SIGKILL');
}

/** Cleanups (e.g. closing gRPC clients) that must also run on an interrupted exit. */
export function onBenchExit(cleanup: () => void): () => void {
  cleanups.add(cleanup);
  return () => cleanups.delete(cleanup);
}

function installExitHooks(): void {
  if (exitHooksInstalled) return;
  exitHooksInstalled = true;
  process.on('exit', killAllChildren);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      process.stderr.write(`\npeers: ${signal}: stopping ${live.size} child process(es) and exiting\n`);
      killAllChildren();
      process.exit(130);
    });
  }
}

export interface TimedLine {
  /** Milliseconds since the child was spawned. */
  atMs: number;
  stream: 'stdout' | 'stderr';
  text: string;
}

export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface TrackedChild {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly spawnedAt: number;
  readonly lines: TimedLine[];
  stdout(): string;
  stderr(): string;
  /** Resolves once the process has exited and its pipes are drained. */
  readonly exited: Promise<ChildExit>;
  /** True once the process has exited (before or after `exited` settles). */
  hasExited(): boolean;
  /** Calls `listener` for every complete line from now on. */
  onLine(listener: (line: TimedLine) => void): void;
}

/** Spawns `command args` directly (no shell), collecting output line by line. */
export function spawnTracked(command: string, args: string[], cwd: string): TrackedChild {
  installExitHooks();
  const child = spawn(command, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], env: process.env });
  const spawnedAt = performance.now();
  live.add(child);
  const lines: TimedLine[] = [];
  const listeners: ((line: TimedLine) => void)[] = [];
  const text = { stdout: '', stderr: '' };
  const pending = { stdout: '', stderr: '' };
  let done = false;

  const onData = (stream: 'stdout' | 'stderr') => (chunk: Buffer) => {
    const s = chunk.toString('utf8');
    text[stream] += s;
    const parts = (pending[stream] + s).split('\n');
    pending[stream] = parts.pop() ?? '';
    const atMs = performance.now() - spawnedAt;
    for (const part of parts) {
      const line: TimedLine = { atMs, stream, text: part.replace(/\r$/, '') };
      lines.push(line);
      for (const listener of listeners) listener(line);
    }
  };
  child.stdout?.on('data', onData('stdout'));
  child.stderr?.on('data', onData('stderr'));
  child.on('exit', () => {
    done = true;
  });
  const exited = new Promise<ChildExit>((resolve) => {
    child.on('error', (err) => {
      done = true;
      live.delete(child);
      text.stderr += `\n[spawn error] ${err.message}\n`;
      resolve({ code: null, signal: null });
    });
    // 'close', not 'exit': all output has been read by then.
    child.on('close', (code, signal) => {
      done = true;
      live.delete(child);
      resolve({ code, signal });
    });
  });
  return {
    child,
    pid: child.pid ?? -1,
    spawnedAt,
    lines,
    stdout: () => text.stdout,
    stderr: () => text.stderr,
    exited,
    hasExited: () => done || child.exitCode !== null || child.signalCode !== null,
    onLine: (listener) => listeners.push(listener),
  };
}

/** SIGTERM (or `signal`), then SIGKILL after `graceMs`. `killed` says whether SIGKILL was needed. */
export async function stopChild(
  tracked: TrackedChild,
  graceMs: number,
  signal: NodeJS.Signals = 'SIGTERM',
): Promise<ChildExit & { killed: boolean }> {
  if (!tracked.hasExited()) tracked.child.kill(signal);
  const first = await withTimeout(tracked.exited, graceMs);
  if (first !== undefined) return { ...first, killed: false };
  tracked.child.kill('SIGKILL');
  const last = await withTimeout(tracked.exited, 5_000);
  return { ...(last ?? { code: null, signal: 'SIGKILL' }), killed: true };
}

/** Resolves with the promise's value, or undefined once `ms` has passed. */
export function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  return new Promise<T | undefined>((resolve, reject) => {
    const timer = setTimeout(() => resolve(undefined), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---- /proc -------------------------------------------------------------------------

/** VmRSS and VmHWM (peak RSS) of `pid` in bytes, or undefined once it is gone. */
export function readMemory(pid: number): { rssBytes: number; hwmBytes: number } | undefined {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const rss = /^VmRSS:\s+(\d+) kB$/m.exec(status);
    const hwm = /^VmHWM:\s+(\d+) kB$/m.exec(status);
    if (rss === null || hwm === null) return undefined;
    return { rssBytes: Number(rss[1]) * 1024, hwmBytes: Number(hwm[1]) * 1024 };
  } catch {
    return undefined;
  }
}

export interface ProcSample {
  /** Milliseconds since the sampled process was spawned. */
  atMs: number;
  rssBytes: number;
  cpuSec: number;
}

/**
 * Samples a process's RSS and CPU every `intervalMs`. `last()` keeps the final reading
 * taken before the process exits, which is how a child's CPU time is known even when
 * it ends on its own (Node cannot report a reaped child's rusage).
 */
export class ProcSampler {
  readonly samples: ProcSample[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly pid: number,
    private readonly spawnedAt: number,
    private readonly intervalMs = 200,
  ) {}

  start(): this {
    this.sample();
    this.timer = setInterval(() => this.sample(), this.intervalMs);
    this.timer.unref();
    return this;
  }

  /** Takes one reading now; returns it, or undefined if the process is gone. */
  sample(): (ProcSample & { hwmBytes: number }) | undefined {
    const cpuSec = readCpuSeconds(this.pid);
    const mem = readMemory(this.pid);
    if (cpuSec === undefined || mem === undefined) return undefined;
    const s = { atMs: performance.now() - this.spawnedAt, rssBytes: mem.rssBytes, cpuSec };
    this.samples.push(s);
    return { ...s, hwmBytes: mem.hwmBytes };
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  last(): ProcSample | undefined {
    return this.samples[this.samples.length - 1];
  }

  maxRssBytes(): number {
    return this.samples.reduce((m, s) => Math.max(m, s.rssBytes), 0);
  }
}

/**
 * Local ports of this process's TCP connections to 127.0.0.1:`remotePort`: used to tell
 * which of a server's per-stream rows belong to the stalled clients run in-process.
 */
export function ownConnectionPorts(remotePort: number): Set<number> {
  const inodes = new Set<string>();
  try {
    for (const fd of fs.readdirSync('/proc/self/fd')) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/self/fd/${fd}`));
        if (m !== null) inodes.add(m[1]);
      } catch {
        // The fd closed while we looked.
      }
    }
  } catch {
    return new Set();
  }
  const ports = new Set<number>();
  for (const s of tcpSockets()) if (inodes.has(s.inode) && s.remotePort === remotePort) ports.add(s.localPort);
  return ports;
}

/** gofeeder and loadclient, from the shared peers folder's own build script when it is there. */
export function findPeersBin(repoRoot: string, explicit: string | undefined): string {
  const has = (dir: string): boolean => fs.existsSync(path.join(dir, 'gofeeder')) && fs.existsSync(path.join(dir, 'loadclient'));
  const chosen = explicit ?? process.env.PEERS_BIN;
  if (chosen !== undefined) {
    if (!has(chosen)) throw new Error(`${chosen} does not hold both gofeeder and loadclient`);
    return chosen;
  }
  const buildScript = path.join(sharedDir(repoRoot), 'peers', 'build.sh');
  if (fs.existsSync(buildScript)) {
    try {
      const out = execFileSync(buildScript, ['path'], { encoding: 'utf8', timeout: 600_000, stdio: ['ignore', 'pipe', 'inherit'] });
      const dir = out.trim().split('\n').pop() ?? '';
      if (has(dir)) return dir;
    } catch (err) {
      process.stderr.write(`peers: ${buildScript} path failed (${err instanceof Error ? err.message : String(err)}); trying the default cache\n`);
    }
  }
  const fallback = path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'feeder-peers', 'bin');
  if (!has(fallback)) throw new Error('gofeeder/loadclient not found: run ../shared/peers/build.sh or pass --bin');
  return fallback;
}


/** What runPeerTool returns: the parsed report (undefined if it printed none), exit and CPU. */
export interface PeerToolRun<R> {
  report: R | undefined;
  exitCode: number | null;
  timedOut: boolean;
  cpuSec: number;
  wallS: number;
  /** stderr, and stdout when it held no report: the last 2 kB. */
  stderrTail: string;
}

/**
 * Runs one of the Go peer tools (producer, loadclient) to its end, SIGKILLs it after
 * `capMs`, samples its CPU, and parses the report it prints on stdout with `parse`.
 */
export async function runPeerTool<R>(command: string, args: string[], cwd: string, capMs: number, parse: (stdout: string) => R): Promise<PeerToolRun<R>> {
  const started = performance.now();
  const proc = spawnTracked(command, args, cwd);
  const sampler = new ProcSampler(proc.pid, proc.spawnedAt).start();
  let exit = await withTimeout(proc.exited, capMs);
  let timedOut = false;
  if (exit === undefined) {
    timedOut = true;
    exit = await stopChild(proc, 2_000, 'SIGKILL');
  }
  sampler.stop();
  let report: R | undefined;
  try {
    report = parse(proc.stdout());
  } catch {
    report = undefined;
  }
  return {
    report,
    exitCode: exit.code,
    timedOut,
    cpuSec: sampler.last()?.cpuSec ?? 0,
    wallS: (performance.now() - started) / 1000,
    stderrTail: (proc.stderr() + (report === undefined ? proc.stdout() : '')).slice(-2000),
  };
}
