/**
 * Shared pieces of the client tests: free ports, a child-process wrapper for the CLI,
 * the gofeeder peer, and a small real LogService server (grpc-js on 127.0.0.1) whose
 * lifetime a test controls. Not a test file; importing it has no side effects.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { Command, CommanderError } from 'commander';
import { ArmorfeedError } from '../src/errors';
import { registerLog } from '../src/cli/log';
import { feederTypes, rpcPath } from '../src/wire/proto';
import { findPeersBin } from '../bench/peers/children';
import { delay, pollUntil } from './helpers/wait';
import { repoRoot } from './helpers/repo';

export { freePort } from '../bench/devkit';
export { repoRoot };

export const goldenDir = path.join(repoRoot, 'test', 'golden');

export const sleep = delay;

/** Polls `cond` every 20 ms; rejects with `what` after `timeoutMs`. */
export function waitFor(what: string, cond: () => boolean, timeoutMs: number): Promise<void> {
  return pollUntil(what, cond, { timeoutMs, intervalMs: 20 });
}

/**
 * The command that runs `armorfeed log`: the real bin (dist/src/cli/main.js) once the
 * whole CLI builds; until src/cli/serve.ts exists, main.js cannot load, so this file
 * stands in with only the `log` command registered (same flags, same error mapping).
 */
export function logCommand(args: readonly string[]): { cmd: string; args: string[]; env: NodeJS.ProcessEnv } {
  const main = path.join(repoRoot, 'dist', 'src', 'cli', 'main.js');
  const serve = path.join(repoRoot, 'dist', 'src', 'cli', 'serve.js');
  if (fs.existsSync(serve)) return { cmd: process.execPath, args: [main, 'log', ...args], env: { ...process.env } };
  return { cmd: process.execPath, args: [__filename, 'log', ...args], env: { ...process.env, ARMORFEED_LOG_SHIM: '1' } };
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
    await sleep(50);
  }
}

export function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('close', () => resolve());
    child.kill(signal);
  });
}

// ---- a small real LogService server ----

export interface TestFeederOptions {
  /** What HealthCheck answers for a nonce; default echoes it. */
  healthReply?: (nonce: number) => number;
  /** Period of the alert/log generator, in ms. */
  intervalMs?: number;
}

type Rec = Record<string, unknown>;

/** A LogService on 127.0.0.1 that sends one Alert and one Log every `intervalMs` to each watcher. */
export class TestFeeder {
  /** Every call (HealthCheck and Watch*) with its metadata, in arrival order. */
  readonly watchMetadata: Array<{ rpc: string; metadata: Record<string, string> }> = [];
  private seq = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly alertCalls = new Set<grpc.ServerWritableStream<Rec, Rec>>();
  private readonly logCalls = new Set<grpc.ServerWritableStream<Rec, Rec>>();

  private constructor(
    private readonly server: grpc.Server,
    readonly port: number,
  ) {}

  static async start(port: number, opts: TestFeederOptions = {}): Promise<TestFeeder> {
    const t = feederTypes();
    const codec = (type: typeof t.Alert) => ({
      serialize: (v: Rec): Buffer => Buffer.from(type.encode(type.fromObject(v)).finish()),
      deserialize: (b: Buffer): Rec => type.toObject(type.decode(b), { longs: Number }),
    });
    const method = (p: string, req: typeof t.Alert, res: typeof t.Alert, stream: boolean): grpc.MethodDefinition<Rec, Rec> => ({
      path: p,
      requestStream: false,
      responseStream: stream,
      requestSerialize: codec(req).serialize,
      requestDeserialize: codec(req).deserialize,
      responseSerialize: codec(res).serialize,
      responseDeserialize: codec(res).deserialize,
    });
    const def: grpc.ServiceDefinition = {
      HealthCheck: method(rpcPath.HealthCheck, t.NonceMessage, t.ReplyMessage, false),
      WatchMessages: method(rpcPath.WatchMessages, t.RequestMessage, t.Message, true),
      WatchAlerts: method(rpcPath.WatchAlerts, t.RequestMessage, t.Alert, true),
      WatchLogs: method(rpcPath.WatchLogs, t.RequestMessage, t.Log, true),
    };
    const server = new grpc.Server();
    // The handlers are registered before the instance exists; they find it here.
    const holder: { feeder?: TestFeeder } = {};
    const watch = (rpc: string, set: () => Set<grpc.ServerWritableStream<Rec, Rec>> | undefined) =>
      (call: grpc.ServerWritableStream<Rec, Rec>): void => {
        const md: Record<string, string> = {};
        for (const [k, v] of Object.entries(call.metadata.getMap())) md[k] = String(v);
        holder.feeder?.watchMetadata.push({ rpc, metadata: md });
        const s = set();
        if (s === undefined) return; // messages: stay silent, like upstream without debug
        s.add(call);
        call.on('cancelled', () => s.delete(call));
        call.on('close', () => s.delete(call));
      };
    server.addService(def, {
      HealthCheck: (call: grpc.ServerUnaryCall<Rec, Rec>, cb: grpc.sendUnaryData<Rec>) => {
        holder.feeder?.watchMetadata.push({ rpc: 'HealthCheck', metadata: {} });
        const nonce = Number(call.request.nonce ?? 0);
        cb(null, { Retval: opts.healthReply ? opts.healthReply(nonce) : nonce });
      },
      WatchMessages: watch('WatchMessages', () => undefined),
      WatchAlerts: watch('WatchAlerts', () => holder.feeder?.alertCalls),
      WatchLogs: watch('WatchLogs', () => holder.feeder?.logCalls),
    });
    const bound = await new Promise<number>((resolve, reject) => {
      server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p)));
    });
    const feeder = new TestFeeder(server, bound);
    holder.feeder = feeder;
    feeder.timer = setInterval(() => feeder.tick(), opts.intervalMs ?? 10);
    return feeder;
  }

  private tick(): void {
    const i = this.seq++;
    const ns = i % 2 === 0 ? 'wordpress-mysql' : 'default';
    const common = {
      Timestamp: 1700000000 + i,
      UpdatedTime: '2023-11-14T22:13:20.000000Z',
      ClusterName: 'test',
      HostName: 'node-1',
      NamespaceName: ns,
      PodName: `pod-${i}`,
      Labels: 'app=test',
      Operation: i % 3 === 0 ? 'Process' : 'File',
      PID: i,
      ExecEvent: {},
    };
    for (const c of this.alertCalls) c.write({ ...common, Type: 'MatchedPolicy', PolicyName: 'p' });
    for (const c of this.logCalls) c.write({ ...common, Type: 'ContainerLog' });
  }

  /** Drops every connection at once, as a crashed server would. */
  kill(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.server.forceShutdown();
  }
}

// ---- stand-in CLI entry (see logCommand) ----

if (require.main === module && process.env.ARMORFEED_LOG_SHIM === '1') {
  const program = new Command('armorfeed').exitOverride();
  registerLog(program);
  program.parseAsync(process.argv.slice(2), { from: 'user' }).catch((err: unknown) => {
    if (err instanceof CommanderError) process.exit(err.exitCode === 0 ? 0 : 2);
    if (err instanceof ArmorfeedError) {
      process.stderr.write(`armorfeed: ${err.code}: ${err.message}\n`);
      process.exit(err.code.startsWith('ERR_CONFIG') ? 2 : 1);
    }
    process.stderr.write(`armorfeed: ${String(err)}\n`);
    process.exit(1);
  });
}
