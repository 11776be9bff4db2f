/**
 * `armorfeed log` keeps going when the server goes away (karmor exits: upstream issue
 * 1331). The server is a real grpc-js LogService on 127.0.0.1 that the test kills and
 * starts again on the same port.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { exitWithin, freePort, startLog } from './helpers/logCli';
import { FakeLogService } from './helpers/fakeLogService';
import { delay, waitUntil } from './helpers/wait';

const fastBackoff = ['--backoff-initial', '50', '--backoff-max', '400'];

test('reconnect - a restarted server is picked up again and the summary counts the reconnect', { timeout: 60_000 }, async () => {
  const port = await freePort();
  let server = await FakeLogService.start(port);
  const cli = startLog(['--gRPC', `127.0.0.1:${port}`, '--json', ...fastBackoff]);
  try {
    await waitUntil('events before the restart', () => cli.stdoutLines.length >= 20, 15_000);
    server.kill();
    await waitUntil('the disconnect notice', () => /disconnected: .*reconnecting/.test(cli.stderr()), 10_000);
    await delay(300); // stay down across several backoff attempts
    const before = cli.stdoutLines.length;
    server = await FakeLogService.start(port);
    await waitUntil('the reconnect notice', () => /reconnected to 127\.0\.0\.1:\d+ after \d+\.\d\ds disconnected/.test(cli.stderr()), 15_000);
    await waitUntil('events after the restart', () => cli.stdoutLines.length >= before + 20, 15_000);
    cli.child.kill('SIGINT');
    const { code } = await exitWithin(cli, 10_000);
    assert.equal(code, 0, 'Ctrl-C exits 0');
    assert.match(cli.stderr(), /reconnects=1 disconnected=\d+\.\d\ds/);
    for (const line of cli.stdoutLines) JSON.parse(line);
  } finally {
    server.kill();
    cli.child.kill('SIGKILL');
  }
});

test('reconnect - the client waits for a server that is not up yet', { timeout: 60_000 }, async () => {
  const port = await freePort();
  const cli = startLog(['--gRPC', `127.0.0.1:${port}`, '--json', '--limit', '5', ...fastBackoff]);
  let server: FakeLogService | undefined;
  try {
    await waitUntil('a retry notice', () => /cannot reach the feeder/.test(cli.stderr()), 10_000);
    server = await FakeLogService.start(port);
    const { code } = await exitWithin(cli, 20_000);
    assert.equal(code, 0, cli.stderr());
    assert.equal(cli.stdoutLines.length, 5);
    assert.match(cli.stderr(), /failed_attempts=[1-9]/);
  } finally {
    server?.kill();
    cli.child.kill('SIGKILL');
  }
});

test('reconnect - --no-reconnect exits non-zero when the stream breaks, like karmor', { timeout: 60_000 }, async () => {
  const port = await freePort();
  const server = await FakeLogService.start(port);
  const cli = startLog(['--gRPC', `127.0.0.1:${port}`, '--json', '--no-reconnect']);
  try {
    await waitUntil('events', () => cli.stdoutLines.length >= 5, 15_000);
    server.kill();
    const { code } = await exitWithin(cli, 10_000);
    assert.equal(code, 1);
    assert.match(cli.stderr(), /ERR_STREAM_BROKEN: WatchAlerts .*--no-reconnect/);
  } finally {
    server.kill();
    cli.child.kill('SIGKILL');
  }
});

test('health - a server that does not echo the nonce is rejected with ERR_HEALTH_MISMATCH, no retry', { timeout: 30_000 }, async () => {
  const port = await freePort();
  const server = await FakeLogService.start(port, { healthReply: (n) => n + 1 });
  const cli = startLog(['--gRPC', `127.0.0.1:${port}`, '--json']);
  try {
    const { code } = await exitWithin(cli, 15_000);
    assert.equal(code, 1);
    assert.match(cli.stderr(), /ERR_HEALTH_MISMATCH: HealthCheck returned \d+ for nonce \d+/);
    assert.equal(cli.stdoutLines.length, 0);
  } finally {
    server.kill();
  }
});

test('rpc order - the Watch streams are opened before HealthCheck and carry the filter metadata', { timeout: 30_000 }, async () => {
  const port = await freePort();
  const server = await FakeLogService.start(port);
  const cli = startLog(['--gRPC', `127.0.0.1:${port}`, '--logFilter', 'all', '--msgPath', 'stdout', '--json', '--limit', '3',
    '-n', 'wordpress', '--operation', 'process', '--client-name', 'rpc-order-test']);
  try {
    const { code } = await exitWithin(cli, 15_000);
    assert.equal(code, 0, cli.stderr());
    // karmor's order: WatchMessages, WatchAlerts, WatchLogs, then HealthCheck.
    assert.deepEqual(server.watchMetadata.map((w) => w.rpc), ['WatchMessages', 'WatchAlerts', 'WatchLogs', 'HealthCheck']);
    const byRpc = new Map(server.watchMetadata.map((w) => [w.rpc, w.metadata]));
    for (const rpc of ['WatchAlerts', 'WatchLogs']) {
      assert.equal(byRpc.get(rpc)?.['x-armorfeed-namespace'], 'wordpress');
      assert.equal(byRpc.get(rpc)?.['x-armorfeed-operation'], 'process');
      assert.equal(byRpc.get(rpc)?.['x-armorfeed-client'], 'rpc-order-test');
    }
    assert.equal(byRpc.get('WatchMessages')?.['x-armorfeed-namespace'], undefined);
    // This server ignores the metadata, so the client filter did the work.
    for (const line of cli.stdoutLines) {
      const o = JSON.parse(line) as Record<string, unknown>;
      assert.equal(o.NamespaceName, 'wordpress-mysql');
      assert.equal(o.Operation, 'Process');
    }
  } finally {
    server.kill();
  }
});

test('log flags - a bad flag value exits 2 with a message naming the flag', { timeout: 30_000 }, async () => {
  const bad = startLog(['--gRPC', '127.0.0.1:1', '--logFilter', 'everything']);
  assert.equal((await exitWithin(bad, 10_000)).code, 2);
  assert.match(bad.stderr(), /--logFilter/);
  const badRe = startLog(['--gRPC', '127.0.0.1:1', '--namespace', '(']);
  assert.equal((await exitWithin(badRe, 10_000)).code, 2);
  assert.match(badRe.stderr(), /ERR_CONFIG_INVALID: --namespace/);
});
