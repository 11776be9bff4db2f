/**
 * `armorfeed log` against gofeeder, an independent Go feeder (../shared/peers): the
 * output is what karmor prints, whatever the server. Skips if gofeeder cannot be built.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { alertSpec, logSpec } from '../src/client';
import { exitWithin, freePort, gofeederPath, startGofeeder, startLog, stopChild } from './helpers/logCli';

const alertKeys = alertSpec.map((f) => f.key);
const logKeys = logSpec.map((f) => f.key);

/** True when `keys` appear in the same relative order as in `order` (omitted ones may be missing). */
function inOrder(keys: readonly string[], order: readonly string[]): boolean {
  let at = -1;
  for (const k of keys) {
    const i = order.indexOf(k);
    if (i <= at) return false;
    at = i;
  }
  return true;
}

async function withGofeeder(t: TestContext, fn: (port: number) => Promise<void>): Promise<void> {
  const { bin, why } = gofeederPath();
  if (bin === null) {
    t.skip(`gofeeder is not available: ${why}`);
    return;
  }
  const port = await freePort();
  let server: ChildProcess | undefined;
  try {
    server = await startGofeeder(bin, port);
    await fn(port);
  } finally {
    if (server !== undefined) await stopChild(server);
  }
}

test('gofeeder - --json --limit 50 --logFilter all prints 50 JSON lines per stream in Go struct order', { timeout: 60_000 }, async (t) => {
  await withGofeeder(t, async (port) => {
    const cli = startLog(['--gRPC', `127.0.0.1:${port}`, '--logFilter', 'all', '--json', '--limit', '50']);
    const { code } = await exitWithin(cli, 30_000);
    assert.equal(code, 0, cli.stderr());
    const lines = cli.stdout().trimEnd().split('\n');
    assert.equal(lines.length, 100);
    let nAlerts = 0;
    let nLogs = 0;
    for (const line of lines) {
      const obj = JSON.parse(line) as Record<string, unknown>;
      const keys = Object.keys(obj);
      if (obj.Type === 'MatchedPolicy') {
        nAlerts++;
        assert.ok(inOrder(keys, alertKeys), `alert keys out of order: ${keys.join(',')}`);
      } else {
        nLogs++;
        assert.equal(obj.Type, 'ContainerLog');
        assert.ok(inOrder(keys, logKeys), `log keys out of order: ${keys.join(',')}`);
      }
      assert.equal(typeof obj.Timestamp, 'number');
      assert.ok('PPID' in obj && 'UID' in obj);
      assert.ok(line.includes('"ExecEvent":{}'), 'gofeeder always sends an empty ExecEvent');
    }
    assert.equal(nAlerts, 50);
    assert.equal(nLogs, 50);
    assert.match(cli.stderr(), /Checked the liveness of the gRPC server/);
    assert.match(cli.stderr(), /summary: alerts received=\d+ printed=50 filtered=0; logs received=\d+ printed=50/);
  });
});

test('gofeeder - text mode prints karmor headers and the fixed key order', { timeout: 60_000 }, async (t) => {
  await withGofeeder(t, async (port) => {
    const cli = startLog(['--gRPC', String(port), '--logFilter', 'all', '--limit', '5']);
    const { code } = await exitWithin(cli, 30_000);
    assert.equal(code, 0, cli.stderr());
    const out = cli.stdout();
    const headers = out.split('\n').filter((l) => l.startsWith('== '));
    assert.equal(headers.length, 10);
    for (const h of headers) assert.match(h, /^== (Alert|Log) \/ \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6} ==$/);
    assert.equal(headers.filter((h) => h.startsWith('== Alert')).length, 5);
    // The first body lines follow the fixed order; ExecEvent is empty; PPID and UID are present.
    const firstAlert = out.slice(out.indexOf('== Alert')).split('\n').slice(1, 5);
    assert.deepEqual(firstAlert.map((l) => l.split(':')[0]), ['ClusterName', 'HostName', 'NamespaceName', 'PodName']);
    assert.match(out, /\nExecEvent: map\[\]\n/);
    assert.match(out, /\nOwner: map\[Name:\S+ Namespace:\S+ Ref:Deployment\]\n/);
    assert.match(out, /\nATags: \[NIST CIS\]\n/);
  });
});

test('gofeeder - client-side filters work against a server that ignores the filter metadata', { timeout: 60_000 }, async (t) => {
  await withGofeeder(t, async (port) => {
    const cli = startLog(['--gRPC', `127.0.0.1:${port}`, '--logFilter', 'all', '--json', '--limit', '20', '-n', 'DEFAULT', '--operation', 'PROCESS|file']);
    const { code } = await exitWithin(cli, 30_000);
    assert.equal(code, 0, cli.stderr());
    const lines = cli.stdout().trimEnd().split('\n');
    assert.equal(lines.length, 40);
    for (const line of lines) {
      const obj = JSON.parse(line) as Record<string, unknown>;
      assert.equal(obj.NamespaceName, 'default');
      // gofeeder's alerts are all Process and its logs File or Network.
      assert.equal(obj.Operation, obj.Type === 'MatchedPolicy' ? 'Process' : 'File');
    }
    const m = /alerts received=(\d+) printed=20 filtered=(\d+)/.exec(cli.stderr());
    assert.ok(m !== null, cli.stderr());
    assert.ok(Number(m[2]) > 0, 'gofeeder sent unfiltered events, so some were dropped here');
  });
});
