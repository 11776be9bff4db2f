/**
 * Child processes a test spawns itself (not through startServe): a bounded wait for
 * their exit, and createFeeder run in a child to see what a failed start leaves behind.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { repoRoot } from './repo';
import { delay } from './wait';

/** The exit code once `child` has closed; call right after spawn so an early exit is not missed. */
export function exitCodeOf(child: ChildProcess): Promise<number | null> {
  return new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
}

/** Awaits `exited` (from exitCodeOf), SIGKILLing `child` if it is still running after `killAfterMs`, so the wait is bounded. */
export async function awaitExit(child: ChildProcess, exited: Promise<number | null>, killAfterMs: number): Promise<number | null> {
  const timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
  const code = await exited;
  clearTimeout(timer);
  return code;
}

/**
 * Runs createFeeder in a child process with one of its ports already taken, and reports
 * how it failed and whether the process could then exit by itself (nothing left running).
 */
export async function startWithBusyPort(key: 'gRPCHealthPort' | 'metricsPort'): Promise<{ outcome: Record<string, unknown>; exitedByItself: boolean; stderr: string }> {
  const script = `
    const net = require('node:net');
    const { createFeeder } = require(${JSON.stringify(path.join(repoRoot, 'dist', 'src', 'feeder', 'index.js'))});
    const { ArmorfeedError } = require(${JSON.stringify(path.join(repoRoot, 'dist', 'src', 'errors.js'))});
    const blocker = net.createServer().listen(0, '127.0.0.1', () => {
      const port = blocker.address().port;
      const config = { gRPC: 0, bind: '127.0.0.1', gRPCHealthPort: -1, metricsPort: -1, metricsBind: '127.0.0.1', source: ['none'] };
      config[${JSON.stringify(key)}] = port;
      createFeeder(config).then(
        () => { process.stdout.write(JSON.stringify({ started: true }) + '\\n'); process.exit(4); },
        (err) => {
          process.stdout.write(JSON.stringify({ started: false, armorfeedError: err instanceof ArmorfeedError, code: err.code, message: err.message }) + '\\n');
          blocker.close();
        },
      );
    });`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const closed = new Promise<void>((resolve) => child.on('close', () => resolve()));
  // After the rejection nothing should keep the process alive; 4 s is generous for a clean exit.
  const exitedByItself = await Promise.race([closed.then(() => true), delay(4000).then(() => false)]);
  if (!exitedByItself) {
    child.kill('SIGKILL');
    await closed;
  }
  const line = stdout.split('\n').find((l) => l.startsWith('{'));
  assert.ok(line !== undefined, `no outcome line from the child; stderr:\n${stderr}`);
  return { outcome: JSON.parse(line) as Record<string, unknown>, exitedByItself, stderr };
}
