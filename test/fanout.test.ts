/**
 * Fan-out: per-client bounded queues against real gRPC clients on 127.0.0.1. An
 * in-process feeder (createFeeder) takes events through push(); each event carries its
 * sequence number (1..N) in hostPid, so every test can say exactly which events a
 * client got, which it lost, and check that against the feeder's own drop counters.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ClientStats, Feeder } from '../src/feeder';
import type { IngestEvent } from '../src/event';
import { connect, type TestClient, type Watcher } from './helpers/client';
import { seqLog, seqs } from './helpers/events';
import { startFeeder as startInProcess } from './helpers/feeder';
import { delay, waitUntil, withTimeout } from './helpers/wait';

const CLIENT_NAME_KEY = 'x-armorfeed-client';

function tick(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** A numbered ContainerLog stamped now, with a container name, parent PID and syscall data. */
function logEvent(seq: number): IngestEvent {
  const now = Date.now();
  return seqLog(seq, {
    timestamp: Math.floor(now / 1000),
    updatedTime: new Date(now).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z'),
    containerName: 'nginx',
    hostPPid: 1,
    data: 'syscall=SYS_OPENAT fd=-100 flags=O_RDONLY',
  });
}

function alertEvent(seq: number): IngestEvent {
  return {
    ...logEvent(seq),
    type: 'MatchedPolicy',
    policyName: 'ksp-block-cat',
    severity: '5',
    action: 'Block',
    enforcer: 'BPFLSM',
    result: 'Permission denied',
  };
}

/** push() returns false on a full ring; wait a tick and offer the same event again, so nothing is lost there. */
async function pushAll(feeder: Feeder, events: IngestEvent[]): Promise<void> {
  for (const e of events) {
    const deadline = Date.now() + 10_000;
    while (!feeder.push(e)) {
      if (Date.now() > deadline) throw new Error('ring stayed full for 10 s');
      await tick();
    }
  }
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

function clientStats(feeder: Feeder, name: string): ClientStats {
  const found = feeder.stats().clients.filter((c) => c.name === name);
  assert.equal(found.length, 1, `one stats entry named ${name}: ${JSON.stringify(feeder.stats().clients)}`);
  return found[0];
}

async function waitRegistered(feeder: Feeder, names: string[]): Promise<void> {
  await waitUntil(`clients ${names.join(', ')} registered`, () => {
    const open = feeder.stats().clients.filter((c) => c.open).map((c) => c.name);
    return names.every((n) => open.includes(n));
  }, 10_000);
}

/** Waits until a client's stream has gone quiet: nothing queued or in flight on the server and no new message for 300 ms. */
async function waitQuiet(feeder: Feeder, name: string, w: Watcher, timeoutMs: number): Promise<void> {
  let seen = -1;
  let since = Date.now();
  await waitUntil(`${name} to go quiet`, () => {
    if (w.messages.length !== seen) {
      seen = w.messages.length;
      since = Date.now();
      return false;
    }
    const s = clientStats(feeder, name);
    return s.queueDepth === 0 && s.written === s.delivered && Date.now() - since >= 300;
  }, timeoutMs, () => JSON.stringify(clientStats(feeder, name)));
}

function startFeeder(queueSize: number): Promise<Feeder> {
  return startInProcess({ queueSize, alertThrottling: false });
}

async function cleanup(feeder: Feeder, clients: TestClient[]): Promise<void> {
  for (const c of clients) c.close();
  await feeder.close();
}

test('fan-out - a slow client loses events but the fast one loses none, and the drop counters equal exactly what the slow client missed', { timeout: 60_000 }, async (t) => {
  const N = 5000;
  const CHUNK = 25; // below queueSize, so a fast client that keeps up can never overflow
  const feeder = await startFeeder(50);
  const fastConn = connect(feeder.addresses.grpc);
  const slowConn = connect(feeder.addresses.grpc);
  try {
    const fast = fastConn.watch('WatchLogs', 'all', { [CLIENT_NAME_KEY]: 'fast' });
    const slow = slowConn.watch('WatchLogs', 'all', { [CLIENT_NAME_KEY]: 'slow' });
    slow.pause();
    await waitRegistered(feeder, ['fast', 'slow']);

    for (let from = 1; from <= N; from += CHUNK) {
      const to = Math.min(N, from + CHUNK - 1);
      await pushAll(feeder, range(from, to).map(logEvent));
      await fast.waitFor(to, 10_000);
    }
    await fast.waitFor(N, 10_000);
    slow.resume();
    await waitQuiet(feeder, 'slow', slow, 20_000);
    await delay(200);

    assert.deepEqual(seqs(fast), range(1, N), 'the fast client got every event, once, in order');
    const fastStats = clientStats(feeder, 'fast');
    assert.deepEqual(fastStats.dropped, { client_queue_full: 0, throttled: 0, filtered: 0, client_closed: 0, shutdown_grace_expired: 0 });
    assert.equal(fastStats.delivered, N);

    const slowStats = clientStats(feeder, 'slow');
    const got = seqs(slow);
    t.diagnostic(`slow client: received ${got.length}, stats ${JSON.stringify(slowStats.dropped)} delivered=${slowStats.delivered}`);
    assert.ok(got.length < N, `the slow client lost events (got ${got.length} of ${N})`);
    assert.ok(got.length > 0, 'the slow client got the events that fit its queue');
    assert.equal(got.length + slowStats.dropped.client_queue_full, N, `received ${got.length} + client_queue_full ${slowStats.dropped.client_queue_full} must be ${N}`);
    assert.deepEqual({ ...slowStats.dropped, client_queue_full: 0 }, { client_queue_full: 0, throttled: 0, filtered: 0, client_closed: 0, shutdown_grace_expired: 0 });
    assert.equal(slowStats.delivered, got.length, 'delivered counts exactly what the slow client received');
    // What it got is in order and without repeats; the gaps are exactly the counted drops.
    for (let i = 1; i < got.length; i++) assert.ok(got[i] > got[i - 1], `slow client order at ${i}: ${got[i - 1]} then ${got[i]}`);
    const received = new Set(got);
    const missed = range(1, N).filter((s) => !received.has(s));
    assert.equal(missed.length, slowStats.dropped.client_queue_full);
  } finally {
    await cleanup(feeder, [fastConn, slowConn]);
  }
});

test('fan-out - a stalled client does not slow the others or grow memory', { timeout: 60_000 }, async (t) => {
  const N = 20_000;
  const QUEUE = 1000;
  const CHUNK = 200;
  // The producer runs at most this far ahead of the reader, so the reader's queue can
  // never overflow and any loss on its side is a fan-out bug, not a slow test machine.
  const AHEAD = QUEUE / 2;
  const feeder = await startFeeder(QUEUE);
  const readerConn = connect(feeder.addresses.grpc);
  const stalledConn = connect(feeder.addresses.grpc);
  try {
    const reader = readerConn.watch('WatchLogs', 'all', { [CLIENT_NAME_KEY]: 'reader' });
    const stalled = stalledConn.watch('WatchLogs', 'all', { [CLIENT_NAME_KEY]: 'stalled' });
    stalled.pause();
    await waitRegistered(feeder, ['reader', 'stalled']);

    let maxDepth = 0;
    let samples = 0;
    const sample = (): void => {
      const s = clientStats(feeder, 'stalled');
      samples++;
      maxDepth = Math.max(maxDepth, s.queueDepth);
      assert.ok(s.queueDepth <= QUEUE, `stalled queueDepth ${s.queueDepth} exceeds queueSize ${QUEUE}`);
      assert.equal(s.queueCapacity, QUEUE);
    };
    const started = Date.now();
    for (let from = 1; from <= N; from += CHUNK) {
      const to = Math.min(N, from + CHUNK - 1);
      await pushAll(feeder, range(from, to).map(logEvent));
      sample();
      await reader.waitFor(to - AHEAD, 10_000);
      sample();
    }
    await reader.waitFor(N, 10_000);
    const elapsedMs = Date.now() - started;
    sample();

    assert.deepEqual(seqs(reader), range(1, N), 'the reader got every event, once, in order');
    assert.deepEqual(clientStats(feeder, 'reader').dropped, { client_queue_full: 0, throttled: 0, filtered: 0, client_closed: 0, shutdown_grace_expired: 0 });
    assert.ok(elapsedMs < 30_000, `the reader took ${elapsedMs} ms for ${N} events beside a stalled client`);

    const s = clientStats(feeder, 'stalled');
    t.diagnostic(`reader: ${N} events in ${elapsedMs} ms; stalled: ${samples} samples, max queueDepth ${maxDepth}, written=${s.written} delivered=${s.delivered} dropped=${JSON.stringify(s.dropped)}`);
    assert.equal(maxDepth, QUEUE, `the stalled client's queue filled up to its bound (max seen ${maxDepth} in ${samples} samples)`);
    assert.ok(s.dropped.client_queue_full > 0, 'the stalled client lost events');
    // Every event is accounted for: handed to gRPC, still queued, or dropped as queue full.
    assert.equal(s.written + s.queueDepth + s.dropped.client_queue_full, N, JSON.stringify(s));
    assert.equal(stalled.messages.length, 0, 'the stalled client read nothing');
  } finally {
    await cleanup(feeder, [readerConn, stalledConn]);
  }
});

test('fan-out - alerts and logs clients each get their stream', { timeout: 30_000 }, async () => {
  const N = 300;
  const feeder = await startFeeder(1000);
  const conn = connect(feeder.addresses.grpc);
  try {
    const alerts = conn.watch('WatchAlerts', 'policy', { [CLIENT_NAME_KEY]: 'alerts-policy' });
    const alertsAll = conn.watch('WatchAlerts', 'all', { [CLIENT_NAME_KEY]: 'alerts-all' });
    const logs = conn.watch('WatchLogs', 'system', { [CLIENT_NAME_KEY]: 'logs-system' });
    await waitRegistered(feeder, ['alerts-policy', 'alerts-all', 'logs-system']);

    const isAlert = (seq: number): boolean => seq % 3 === 0;
    await pushAll(feeder, range(1, N).map((s) => (isAlert(s) ? alertEvent(s) : logEvent(s))));
    const alertSeqs = range(1, N).filter(isAlert);
    const logSeqs = range(1, N).filter((s) => !isAlert(s));
    await alerts.waitFor(alertSeqs.length, 10_000);
    await alertsAll.waitFor(alertSeqs.length, 10_000);
    await logs.waitFor(logSeqs.length, 10_000);
    await delay(300);

    assert.deepEqual(seqs(alerts), alertSeqs);
    assert.deepEqual(seqs(alertsAll), alertSeqs, '"all" and "policy" receive the same alerts');
    assert.deepEqual(seqs(logs), logSeqs);
    for (const m of [...alerts.messages, ...alertsAll.messages]) {
      assert.equal(m.Type, 'MatchedPolicy');
      assert.equal(m.PolicyName, 'ksp-block-cat');
      assert.equal(m.Action, 'Block');
    }
    for (const m of logs.messages) {
      assert.equal(m.Type, 'ContainerLog');
      assert.equal(m.PolicyName, undefined, 'a Log carries no PolicyName');
    }
    const st = feeder.stats();
    assert.equal(st.encoded.alerts, alertSeqs.length);
    assert.equal(st.encoded.logs, logSeqs.length);
    for (const name of ['alerts-policy', 'alerts-all', 'logs-system']) {
      assert.deepEqual(clientStats(feeder, name).dropped, { client_queue_full: 0, throttled: 0, filtered: 0, client_closed: 0, shutdown_grace_expired: 0 }, name);
    }
  } finally {
    await cleanup(feeder, [conn]);
  }
});

test('fan-out - a client that disconnects mid-stream is counted (client_closed or delivered) and removed', { timeout: 30_000 }, async (t) => {
  const FIRST = 100; // read by the leaving client before it stops reading
  const SECOND = 2000; // pushed while it is paused: some queued, some in flight, some dropped
  const AFTER = 100; // pushed after it left
  const feeder = await startFeeder(500);
  const stayConn = connect(feeder.addresses.grpc);
  const leaveConn = connect(feeder.addresses.grpc);
  try {
    const stay = stayConn.watch('WatchLogs', 'all', { [CLIENT_NAME_KEY]: 'stays' });
    const leave = leaveConn.watch('WatchLogs', 'all', { [CLIENT_NAME_KEY]: 'leaves' });
    await waitRegistered(feeder, ['stays', 'leaves']);

    await pushAll(feeder, range(1, FIRST).map(logEvent));
    await leave.waitFor(FIRST, 10_000);
    leave.pause();
    for (let from = FIRST + 1; from <= FIRST + SECOND; from += 100) {
      await pushAll(feeder, range(from, from + 99).map(logEvent));
      await stay.waitFor(from + 99, 10_000);
    }
    await waitUntil('the leaving client to have everything queued, in flight or dropped', () => {
      const s = clientStats(feeder, 'leaves');
      return s.written + s.queueDepth + s.dropped.client_queue_full === FIRST + SECOND;
    }, 10_000, () => JSON.stringify(clientStats(feeder, 'leaves')));
    const before = clientStats(feeder, 'leaves');
    assert.ok(before.queueDepth > 0, `some events were still queued when it left: ${JSON.stringify(before)}`);

    leave.cancel();
    await withTimeout(leave.ended, 10_000, 'the cancelled stream to end');
    await waitUntil('the leaving client to be removed', () => !clientStats(feeder, 'leaves').open, 10_000);
    // Writes that were in flight are settled by grpc-js shortly after the cancel.
    await waitUntil('every event of the leaving client accounted for', () => {
      const s = clientStats(feeder, 'leaves');
      return s.delivered + s.dropped.client_queue_full + s.dropped.client_closed === FIRST + SECOND;
    }, 5_000, () => JSON.stringify(clientStats(feeder, 'leaves')));

    await pushAll(feeder, range(FIRST + SECOND + 1, FIRST + SECOND + AFTER).map(logEvent));
    await stay.waitFor(FIRST + SECOND + AFTER, 10_000);
    await delay(100);

    const gone = clientStats(feeder, 'leaves');
    t.diagnostic(`before leaving: ${JSON.stringify({ written: before.written, delivered: before.delivered, queueDepth: before.queueDepth, dropped: before.dropped })}; after: ${JSON.stringify({ written: gone.written, delivered: gone.delivered, dropped: gone.dropped })}`);
    assert.equal(gone.open, false);
    assert.equal(gone.queueDepth, 0);
    assert.ok(gone.dropped.client_closed >= before.queueDepth, `what was queued is counted client_closed: ${JSON.stringify(gone)}`);
    assert.equal(gone.delivered + gone.dropped.client_queue_full + gone.dropped.client_closed, FIRST + SECOND, `every event before it left is delivered or dropped, none after: ${JSON.stringify(gone)}`);
    assert.ok(gone.delivered >= FIRST);
    assert.equal(feeder.stats().clients.filter((c) => c.open && c.stream === 'logs').length, 1, 'only the staying client is still open');
    assert.deepEqual(seqs(stay), range(1, FIRST + SECOND + AFTER), 'the staying client is unaffected');
  } finally {
    await cleanup(feeder, [stayConn, leaveConn]);
  }
});
