/**
 * Shared pieces of the `armorfeed log` tests: free ports, a child-process wrapper for
 * the CLI and the gofeeder peer. The fake LogService they run against is in
 * fakeLogService.ts.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as net from 'node:net';
import * as path from 'node:path';
import { findPeersBin } from '../../bench/peers/children';
import { delay } from './wait';
import { repoRoot } from './repo';

export { freePort } from '../../bench/devkit';
export { repoRoot };

export const goldenDir = path.join(repoRoot, 'test', 'golden');

/** The command that runs `armorfeed log` (the built bin, dist/src/cli/main.js). */
export function logCommand(args: readonly string[]): { cmd: string; args: string[]; env: NodeJS.ProcessEnv } {
  return { cmd: process.execPath, args: [path.join(repoRoot, 'dist', 'src', 'cli', 'main.js'), 'log', ...args], env: { ...process.env } };
}

export interface RunningCli {
  child: ChildProcess;
  stdoutLines: string[];
  stdout: () => string;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts `armorfeed log ARGS` with stdout and stderr captured. */
export function startLog(args: readonly string[], extraEnv: NodeJS.ProcessEnv = {}): RunningCli {
  const { cmd, args: argv, env } = logCommand(args);
  const child = spawn(cmd, argv, { env: { ...env, ...extraEnv }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const stdoutLines: string[] = [];
  let partial = '';
  child.stdout?.setEncoding('utf8');
  child.stderr?.setEncoding('utf8');
  child.stdout?.on('data', (chunk: string) => {
    out += chunk;
    partial += chunk;
    const parts = partial.split('\n');
    partial = parts.pop() ?? '';
    stdoutLines.push(...parts);
  });
  child.stderr?.on('data', (chunk: string) => {
    err += chunk;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal }));
  });
  return { child, stdoutLines, stdout: () => out, stderr: () => err, exited };
}

/** Waits for exit; kills the child and rejects if it takes longer than `timeoutMs`. */
export async function exitWithin(cli: RunningCli, timeoutMs: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      cli.child.kill('SIGKILL');
      reject(new Error(`armorfeed log did not exit within ${timeoutMs} ms; stderr:\n${cli.stderr()}`));
    }, timeoutMs);
  });
  try {
    return await Promise.race([cli.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

// ---- gofeeder, the independent Go peer (../shared/peers) ----

let gofeederBin: string | null | undefined;
let gofeederWhyNot = '';

/** Path of the gofeeder binary, building it if needed; null (with a reason) if it cannot be built. */
export function gofeederPath(): { bin: string | null; why: string } {
  if (gofeederBin === undefined) {
    try {
      gofeederBin = path.join(findPeersBin(repoRoot, undefined), 'gofeeder');
    } catch (err) {
      gofeederBin = null;
      gofeederWhyNot = err instanceof Error ? err.message : String(err);
    }
  }
  return { bin: gofeederBin, why: gofeederWhyNot };
}

/** Starts gofeeder on 127.0.0.1:port and resolves once it accepts TCP connections. */
export async function startGofeeder(bin: string, port: number, extra: readonly string[] = []): Promise<ChildProcess> {
  const child = spawn(bin, ['--addr', `127.0.0.1:${port}`, '--rate', '2000', '--count', '0', '--alert-every', '3', ...extra], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  await waitForListen(port, 10_000);
  return child;
}

export async function waitForListen(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const sock = net.connect(port, '127.0.0.1');
      sock.once('connect', () => {
        sock.destroy();
        resolve(true);
      });
      sock.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listening on 127.0.0.1:${port} after ${timeoutMs} ms`);
    await delay(50);
  }
}

export function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('close', () => resolve());
    child.kill(signal);
  });
}
