/**
 * Server-side filters are RE2, as karmor's Go regexps: matching takes linear time, so a
 * client's pattern cannot hold the main thread (and with it every other client) for
 * seconds, and a pattern RE2 refuses (a backreference, a lookahead) or one over the
 * size limits ends that client's stream with INVALID_ARGUMENT and a coded reason.
 *
 * Each test runs its own `armorfeed serve` in a child process, so a frozen broker fails
 * the test by its deadlines instead of freezing the test itself.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import type { IngestEvent } from '../src/event';
import { filterMetadataKeys } from '../src/wire/proto';
import { connect, type TestClient } from './helpers/client';
import { seqLog, seqs } from './helpers/events';
import { fetchStats, startServe, type ServeProcess } from './helpers/serve';
import { connectTo, frameOf, write } from './helpers/tcp';
import { delay, waitUntil, withTimeout } from './helpers/wait';

const SERVE_ARGS = ['serve', '--bind', '127.0.0.1', '--gRPC', '0', '--gRPCHealthPort', '0', '--metricsPort', '0', '--source', 'tcp', '--tcp', '127.0.0.1:0'];

/**
 * Nested quantifiers: a backtracking engine tries exponentially many ways to split a
 * string without an "x" (about 3 s for 14 characters and over 30 s for 16 on the 2-core
 * test machine, doubling with each character); RE2 answers in microseconds.
 */
const HOSTILE = '(.*.*)*x';

/** 20 to 24 characters each; two contain an x (one upper case: matching is case-insensitive). */
const NAMESPACES = [
  'kube-system-monitoring',
  'nginx-ingress-controller',
  'cert-manager-webhooks-a',
  'EXTERNAL-DNS-CONTROLLER',
  'observability-stack-01',
  'payments-prod-eu-west-1',
];
const EVENTS = 60;

function namespaceOf(seq: number): string {
  return NAMESPACES[seq % NAMESPACES.length];
}

function event(seq: number): IngestEvent {
  return seqLog(seq, { namespaceName: namespaceOf(seq) });
}

/** Sends events `from`..`to` (inclusive) as one write on a fresh producer connection. */
async function produce(tcp: string, from: number, to: number): Promise<void> {
  const sock = await connectTo(tcp);
  try {
    const frames: Buffer[] = [];
    for (let seq = from; seq <= to; seq++) frames.push(frameOf(event(seq)));
    await write(sock, Buffer.concat(frames));
  } finally {
    sock.end();
  }
}

/** Waits until the broker counts `open` registered streams and answers a HealthCheck. */
async function registered(serve: ServeProcess, tc: TestClient, open: number): Promise<void> {
  const clients = async (): Promise<string> => JSON.stringify((await fetchStats(serve.addresses.metrics)).clients);
  await waitUntil(`${open} open streams`, async () => (await fetchStats(serve.addresses.metrics)).clients.filter((c) => c.open).length === open, 10_000, clients);
  assert.equal(await withTimeout(tc.health(7), 5_000, 'HealthCheck'), 7);
}

test('server filter - a catastrophic-backtracking pattern costs its own client nothing extra and the others nothing at all', { timeout: 90_000 }, async () => {
  const serve = await startServe(SERVE_ARGS);
  const tc = connect(serve.addresses.grpc);
  try {
    const bystander = tc.watch('WatchLogs', 'all', { [filterMetadataKeys.clientName]: 'bystander' });
    const hostile = tc.watch('WatchLogs', 'all', { [filterMetadataKeys.clientName]: 'hostile', [filterMetadataKeys.namespace]: HOSTILE });
    await registered(serve, tc, 2);

    await produce(serve.addresses.tcp, 1, EVENTS);
    // A broker stuck in one regex match for tens of seconds misses this by far; RE2 meets it with seconds to spare.
    await bystander.waitFor(EVENTS, 15_000);
    assert.deepEqual(seqs(bystander), Array.from({ length: EVENTS }, (_, i) => i + 1), 'the bystander gets every event, in order');
    assert.equal(await withTimeout(tc.health(42), 5_000, 'HealthCheck after the events'), 42);

    // The hostile client's filter still means what it says: an x anywhere, any case.
    const want = Array.from({ length: EVENTS }, (_, i) => i + 1).filter((seq) => /x/i.test(namespaceOf(seq)));
    assert.equal(want.length, EVENTS / 3);
    await hostile.waitFor(want.length, 5_000);
    await delay(200);
    assert.deepEqual(seqs(hostile), want);
    const clients = (await fetchStats(serve.addresses.metrics)).clients;
    const hostileStats = clients.find((c) => c.name === 'hostile');
    assert.equal(hostileStats?.dropped.filtered, EVENTS - want.length, JSON.stringify(hostileStats));
    assert.equal(clients.find((c) => c.name === 'bystander')?.dropped.filtered, 0);
  } finally {
    tc.close();
    await serve.stop('SIGTERM', 5_000);
  }
});

test('server filter - a pattern RE2 refuses, or one over the size limits, ends that stream with INVALID_ARGUMENT and a coded reason', { timeout: 60_000 }, async () => {
  const serve = await startServe(SERVE_ARGS);
  const tc = connect(serve.addresses.grpc);
  try {
    const bystander = tc.watch('WatchLogs', 'all');
    // 256 characters: at the limit, accepted (an alternation whose first branch is "nginx").
    const longest = `nginx|${'z'.repeat(250)}`;
    assert.equal(longest.length, 256);
    const atLimit = tc.watch('WatchLogs', 'all', { [filterMetadataKeys.namespace]: longest });
    const refused: [string, string, string, string][] = [
      // [metadata key, pattern, error code, what the test shows]
      [filterMetadataKeys.namespace, '(a)\\1', 'ERR_FILTER_INVALID', 'a backreference'],
      [filterMetadataKeys.operation, '(?=File)File', 'ERR_FILTER_INVALID', 'a lookahead'],
      [filterMetadataKeys.logType, `${longest}z`, 'ERR_FILTER_TOO_COMPLEX', 'a pattern of 257 characters'],
      [filterMetadataKeys.namespace, '(ab){1000}', 'ERR_FILTER_TOO_COMPLEX', 'a short pattern of 4,000 instructions'],
    ];
    for (const [key, pattern, code, what] of refused) {
      const w = tc.watch('WatchLogs', 'all', { [key]: pattern });
      const status = await withTimeout(w.ended, 5_000, `the stream with ${what} to end`);
      assert.equal(status.code, grpc.status.INVALID_ARGUMENT, `${what}: ${JSON.stringify(status)}`);
      assert.match(status.details, new RegExp(`^${code}: ${key}: `), what);
    }
    await registered(serve, tc, 2);
    await produce(serve.addresses.tcp, 1, 12);
    await bystander.waitFor(12, 10_000);
    assert.deepEqual(seqs(bystander), Array.from({ length: 12 }, (_, i) => i + 1));
    const want = Array.from({ length: 12 }, (_, i) => i + 1).filter((seq) => namespaceOf(seq).includes('nginx'));
    await atLimit.waitFor(want.length, 5_000);
    await delay(200);
    assert.deepEqual(seqs(atLimit), want);
  } finally {
    tc.close();
    await serve.stop('SIGTERM', 5_000);
  }
});
