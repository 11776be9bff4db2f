/**
 * Starts `armorfeed serve` as a child process on ephemeral loopback ports, waits
 * for its `armorfeed: listening grpc=... tcp=...` line, and stops it with SIGTERM
 * (it drains and exits 0), escalating to SIGKILL if it does not. Used by `tune`
 * for every sweep point, and by the tests.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import type { HostPort } from './addresses';
import { BrokerStartError } from './errors';
import { BROKER_NODE_FLAGS } from '../cli/nodeFlags';

export interface BrokerFlags {
  queueSize?: number;
  encoderThreads?: number;
  batchSize?: number;
  ringSize?: number;
  /** Extra flags passed through as-is. */
  extra?: string[];
}

export interface BrokerAddresses {
  grpc: HostPort;
  health?: HostPort;
  metrics?: HostPort;
  tcp?: HostPort;
  socket?: string;
}

export interface RunningBroker {
  pid: number;
  addresses: BrokerAddresses;
  /** Everything the broker wrote to stderr so far. */
  stderr(): string;
  /** SIGTERM, wait; SIGKILL after `graceMs`. Resolves with the exit code (or signal name). */
  stop(graceMs?: number): Promise<number | string>;
}

/** The compiled CLI entry point (dist/src/cli/main.js), found relative to this file. */
export const cliMainPath = path.resolve(__dirname, '../cli/main.js');

/** A listener bound to every interface is reached on loopback. */
function toLoopback(value: string): HostPort {
  const i = value.lastIndexOf(':');
  let host = value.slice(0, i).replace(/^\[|\]$/g, '');
  if (host === '0.0.0.0' || host === '' || host === '::') host = '127.0.0.1';
  return { host, port: Number(value.slice(i + 1)) };
}

/** Parses `armorfeed: listening grpc=H:P health=H:P metrics=H:P tcp=H:P` (or socket=PATH). */
export function parseListeningLine(line: string): BrokerAddresses | undefined {
  const m = /armorfeed: listening (.*)$/.exec(line);
  if (m === null) return undefined;
  const kv = new Map<string, string>();
  for (const token of m[1].trim().split(/\s+/)) {
    const eq = token.indexOf('=');
    if (eq > 0) kv.set(token.slice(0, eq), token.slice(eq + 1));
  }
  const grpc = kv.get('grpc');
  if (grpc === undefined) return undefined;
  const opt = (k: string): HostPort | undefined => {
    const v = kv.get(k);
    return v === undefined ? undefined : toLoopback(v);
  };
  return { grpc: toLoopback(grpc), health: opt('health'), metrics: opt('metrics'), tcp: opt('tcp'), socket: kv.get('socket') };
}

export function brokerArgs(flags: BrokerFlags): string[] {
  const args = ['serve', '--gRPC', '0', '--gRPCHealthPort', '0', '--metricsPort', '0', '--source', 'tcp', '--tcp', '127.0.0.1:0'];
  if (flags.queueSize !== undefined) args.push('--queueSize', String(flags.queueSize));
  if (flags.encoderThreads !== undefined) args.push('--encoderThreads', String(flags.encoderThreads));
  if (flags.batchSize !== undefined) args.push('--batchSize', String(flags.batchSize));
  if (flags.ringSize !== undefined) args.push('--ringSize', String(flags.ringSize));
  args.push(...(flags.extra ?? []));
  return args;
}

export function startBroker(flags: BrokerFlags, opts: { startTimeoutMs?: number; main?: string } = {}): Promise<RunningBroker> {
  const child: ChildProcess = spawn(process.execPath, [...BROKER_NODE_FLAGS, opts.main ?? cliMainPath, ...brokerArgs(flags)], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  let exited: number | string | undefined;
  const exit = new Promise<number | string>((resolve) => {
    child.on('exit', (code, signal) => {
      exited = code ?? signal ?? 'unknown';
      resolve(exited);
    });
  });
  return new Promise<RunningBroker>((resolve, reject) => {
    let settled = false;
    const fail = (why: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(new BrokerStartError(`armorfeed serve ${why}; its stderr:\n${stderr.slice(-2000)}`));
    };
    const timer = setTimeout(() => fail(`printed no listening line within ${opts.startTimeoutMs ?? 15000} ms`), opts.startTimeoutMs ?? 15000);
    child.on('error', (err) => fail(`could not be started: ${err.message}`));
    child.on('exit', (code, signal) => fail(`exited (${code ?? signal}) before it was ready`));
    child.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (settled) return;
      for (const line of stderr.split('\n')) {
        const addresses = parseListeningLine(line);
        if (addresses === undefined) continue;
        settled = true;
        clearTimeout(timer);
        resolve({
          pid: child.pid as number,
          addresses,
          stderr: () => stderr,
          stop: async (graceMs = 10_000) => {
            if (exited !== undefined) return exited;
            child.kill('SIGTERM');
            const killer = setTimeout(() => child.kill('SIGKILL'), graceMs);
            const result = await exit;
            clearTimeout(killer);
            return result;
          },
        });
        return;
      }
    });
  });
}
