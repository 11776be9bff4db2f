/**
 * Server-side filtering: against armorfeed's own server, `-n/--operation/--logType` ride
 * as x-armorfeed-* metadata, so filtered events never cross the wire (the server counts
 * them as `filtered` for this client); with --no-server-filter the same flags filter
 * here instead. The output is the same either way.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { exitWithin, repoRoot, startLog, stopChild, type RunningCli } from './helpers/logCli';
import { waitUntil } from './helpers/wait';
import { fetchStats } from './helpers/serve';

interface StatsClient {
  name?: string;
  stream: string;
  delivered: number;
  dropped: { filtered: number };
}

interface Serve {
  child: ChildProcess;
  grpc: string;
  metrics: string;
}

const mainJs = path.join(repoRoot, 'dist', 'src', 'cli', 'main.js');

/** Starts `armorfeed serve` on free ports and reads its `armorfeed: listening ...` line. */
async function startServe(): Promise<Serve> {
  const child = spawn(process.execPath, [mainJs, 'serve', '--gRPC', '0', '--gRPCHealthPort', '0', '--metricsPort', '0',
    '--source', 'synthetic', '--rate', '2000', '--count', '0', '--alert-every', '3'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (c: string) => {
    err += c;
  });
  try {
    await waitUntil('the "armorfeed: listening" line of armorfeed serve', () => /armorfeed: listening .*\n/.test(err), 20_000);
  } catch (e) {
    await stopChild(child);
    throw new Error(`${(e as Error).message}; serve stderr:\n${err}`, { cause: e });
  }
  const line = /armorfeed: listening (.*)\n/.exec(err)?.[1] ?? '';
  const tokens = new Map(line.split(/\s+/).filter((t) => t.includes('=')).map((t) => t.split('=', 2) as [string, string]));
  // The server may listen on all interfaces; the tests stay on loopback.
  const loopback = (hp: string | undefined): string => (hp ?? '').replace(/^(0\.0\.0\.0|\[::\]|::):/, '127.0.0.1:');
  return { child, grpc: loopback(tokens.get('grpc')), metrics: loopback(tokens.get('metrics')) };
}

async function stats(metrics: string): Promise<StatsClient[]> {
  return (await fetchStats(metrics)).clients;
}

function summaryFiltered(cli: RunningCli, stream: 'alerts' | 'logs'): number {
  const m = new RegExp(`${stream} received=(\\d+) printed=(\\d+) filtered=(\\d+)`).exec(cli.stderr());
  assert.ok(m !== null, `no summary for ${stream} in:\n${cli.stderr()}`);
  return Number(m[3]);
}

test('server filter - filtered events never cross the wire, and --no-server-filter filters here instead', { timeout: 90_000 }, async () => {
  const serve = await startServe();
  const common = ['--gRPC', serve.grpc, '--logFilter', 'all', '--json', '--namespace', 'DEFAULT', '--operation', 'process|FILE'];
  const on = startLog([...common, '--client-name', 'sf-on']);
  const off = startLog([...common, '--client-name', 'sf-off', '--no-server-filter']);
  try {
    await waitUntil('100 events on each client', () => on.stdoutLines.length >= 100 && off.stdoutLines.length >= 100, 30_000);
    const clients = await stats(serve.metrics);
    const named = (name: string) => clients.filter((c) => c.name === name);
    assert.equal(named('sf-on').length, 2, JSON.stringify(clients));
    assert.equal(named('sf-off').length, 2, JSON.stringify(clients));
    for (const c of named('sf-on')) assert.ok(c.dropped.filtered > 0, `server filtered for ${c.stream}: ${JSON.stringify(c)}`);
    for (const c of named('sf-off')) assert.equal(c.dropped.filtered, 0, `server must not filter without the metadata: ${JSON.stringify(c)}`);

    on.child.kill('SIGINT');
    off.child.kill('SIGINT');
    assert.equal((await exitWithin(on, 10_000)).code, 0);
    assert.equal((await exitWithin(off, 10_000)).code, 0);
    for (const cli of [on, off]) {
      for (const line of cli.stdoutLines) {
        const o = JSON.parse(line) as Record<string, unknown>;
        assert.equal(o.NamespaceName, 'default');
        assert.match(String(o.Operation), /^(Process|File)$/);
      }
    }
    assert.equal(summaryFiltered(on, 'alerts') + summaryFiltered(on, 'logs'), 0, 'nothing to filter here when the server did it');
    assert.ok(summaryFiltered(off, 'alerts') > 0 && summaryFiltered(off, 'logs') > 0, 'without the extension this side filters');
  } finally {
    on.child.kill('SIGKILL');
    off.child.kill('SIGKILL');
    await stopChild(serve.child, 'SIGKILL');
  }
});
