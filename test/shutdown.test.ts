/**
 * Shutdown of a real `armorfeed serve`: SIGTERM stops ingest, lets client queues drain
 * within --gracePeriodMs, ends the streams with OK, prints one summary row per client
 * on stderr (rendered from the final stats, which --statsFile writes as JSON: the tests
 * read that) and exits 0. A client that never reads cannot hold it past the grace
 * period, and what it did not get is in its row. A synthetic --count run produces
 * exactly that many events.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ClientStats, FeederStats } from '../src/feeder';
import { connect, type TestClient, type Watcher } from './helpers/client';
import { seqLog } from './helpers/events';
import { serveSummary } from '../src/cli/summary';
import { exitStatsFile, fetchStats, startServe, type ServeExit, type ServeProcess } from './helpers/serve';
import { frameOf, sendAndEnd } from './helpers/tcp';
import { rawWatch } from './helpers/rawWatch';
import { delay, waitUntil, withTimeout } from './helpers/wait';

const LOOPBACK = ['--bind', '127.0.0.1', '--gRPC', '0', '--gRPCHealthPort', '0', '--metricsPort', '0'];
const CLIENT_NAME_KEY = 'x-armorfeed-client';

function stats(serve: ServeProcess): Promise<FeederStats> {
  return fetchStats(serve.addresses.metrics);
}

async function clientStats(serve: ServeProcess, name: string): Promise<ClientStats | undefined> {
  return (await stats(serve)).clients.find((c) => c.name === name);
}

/** Opens a named WatchLogs stream that does not read, and waits until the server has registered it. */
async function pausedClient(serve: ServeProcess, conn: TestClient, name: string): Promise<Watcher> {
  const w = conn.watch('WatchLogs', 'all', { [CLIENT_NAME_KEY]: name });
  w.pause();
  await waitUntil('the client registered', async () => (await clientStats(serve, name))?.open === true, 10_000);
  return w;
}

/** Sends events 1..n over one TCP connection to the tcp source and closes it. */
function sendOverTcp(address: string, n: number): Promise<void> {
  return sendAndEnd(address, Buffer.concat(Array.from({ length: n }, (_, i) => frameOf(seqLog(i + 1)))));
}

interface SummaryRow {
  client: string;
  stream: string;
  delivered: number;
  queueFull: number;
  throttled: number;
  filtered: number;
  closed: number;
  graceExpired: number;
}

/**
 * A client's counts in the final stats that serve wrote at exit (--statsFile), once it is
 * checked that the summary on stderr is rendered from that same object.
 */
function exitRow(exit: ServeExit, final: FeederStats, name: string): SummaryRow {
  assert.ok(exit.stderr.includes(serveSummary(final)), `the exit summary is rendered from the final stats:\n${exit.stderr.slice(-3000)}`);
  const rows = final.clients.filter((c) => c.name === name);
  assert.equal(rows.length, 1, `one client named ${name} in the final stats: ${JSON.stringify(final.clients)}`);
  const c = rows[0];
  return {
    client: c.name,
    stream: c.stream,
    delivered: c.delivered,
    queueFull: c.dropped.client_queue_full,
    throttled: c.dropped.throttled,
    filtered: c.dropped.filtered,
    closed: c.dropped.client_closed,
    graceExpired: c.dropped.shutdown_grace_expired,
  };
}

test('shutdown - SIGTERM delivers everything already queued and ends streams with OK', { timeout: 60_000 }, async () => {
  const N = 3000;
  const final = exitStatsFile();
  const serve = await startServe(['serve', ...LOOPBACK, '--source', 'tcp', '--tcp', '127.0.0.1:0', '--queueSize', '5000', '--gracePeriodMs', '5000', ...final.args]);
  const conn = connect(serve.addresses.grpc);
  try {
    const w = await pausedClient(serve, conn, 'drainer');
    await sendOverTcp(serve.addresses.tcp, N);
    // Everything is now on the server's side of the wire: queued, or handed to gRPC (in
    // flight: the paused client stopped the HTTP/2 window) or already confirmed.
    await waitUntil(`all ${N} events queued or written for the paused client`, async () => {
      const c = await clientStats(serve, 'drainer');
      return c !== undefined && c.queueDepth + c.written === N;
    }, 10_000, async () => JSON.stringify(await clientStats(serve, 'drainer')));
    const before = await clientStats(serve, 'drainer');
    assert.ok(before !== undefined && before.queueDepth > 0, `events were still queued at SIGTERM: ${JSON.stringify(before)}`);
    assert.deepEqual(before.dropped, { client_queue_full: 0, throttled: 0, filtered: 0, client_closed: 0, shutdown_grace_expired: 0 });

    serve.child.kill('SIGTERM');
    await waitUntil('the SIGTERM to be taken', () => /SIGTERM: stopping ingest/.test(serve.stderr()), 5_000, () => serve.stderr().slice(-1000));
    w.resume();
    const status = await withTimeout(w.ended, 15_000, 'the stream to end');
    // Not stop(): a second SIGTERM means "exit now without draining".
    const exit = await withTimeout(serve.exited, 15_000, 'the process to exit');

    assert.equal(w.messages.length, N, 'every queued event arrived');
    assert.deepEqual(w.messages.map((m) => Number(m.HostPID)), Array.from({ length: N }, (_, i) => i + 1), 'in order, each once');
    assert.equal(status.code, 0, `stream status ${JSON.stringify(status)}`);
    assert.equal(exit.code, 0, exit.stderr.slice(-2000));
    assert.equal(exit.killed, false);
    const row = exitRow(exit, final.read(), 'drainer');
    assert.deepEqual(row, { client: 'drainer', stream: 'logs', delivered: N, queueFull: 0, throttled: 0, filtered: 0, closed: 0, graceExpired: 0 });
  } finally {
    conn.close();
    await serve.stop('SIGKILL', 5_000);
  }
});

test('shutdown - a client that never reads does not hold shutdown past the grace period', { timeout: 60_000 }, async () => {
  // Far more events than the queue: the HTTP/2 stream takes whole batches before it pushes
  // back (one CI run wrote 1,644 of 3,000 to a client that read none), and the queue must
  // still be full at SIGTERM.
  const N = 12_000;
  const QUEUE = 1000;
  const final = exitStatsFile();
  const serve = await startServe(['serve', ...LOOPBACK, '--source', 'tcp', '--tcp', '127.0.0.1:0', '--queueSize', String(QUEUE), '--gracePeriodMs', '1000', ...final.args]);
  const conn = connect(serve.addresses.grpc);
  try {
    await pausedClient(serve, conn, 'stalled');
    await sendOverTcp(serve.addresses.tcp, N);
    await waitUntil(`all ${N} events queued, written or dropped for the stalled client`, async () => {
      const c = await clientStats(serve, 'stalled');
      return c !== undefined && c.queueDepth + c.written + c.dropped.client_queue_full === N;
    }, 10_000, async () => JSON.stringify(await clientStats(serve, 'stalled')));
    const before = (await clientStats(serve, 'stalled')) as ClientStats;
    assert.equal(before.queueDepth, QUEUE, `its queue is full at SIGTERM: ${JSON.stringify(before)}`);

    const started = Date.now();
    const exit = await serve.stop('SIGTERM', 10_000);
    const tookMs = Date.now() - started;

    assert.equal(exit.killed, false, 'it exited on its own');
    assert.equal(exit.code, 0, exit.stderr.slice(-2000));
    assert.ok(tookMs < 5_000, `exit took ${tookMs} ms with a 1000 ms grace period`);
    const row = exitRow(exit, final.read(), 'stalled');
    assert.equal(row.queueFull, before.dropped.client_queue_full, 'its queue_full drops are in the summary');
    assert.ok(row.queueFull > 0);
    // Every event it was offered is in the summary: delivered, or dropped for a named reason.
    assert.equal(row.delivered + row.queueFull + row.throttled + row.filtered + row.closed + row.graceExpired, N, `summary row ${JSON.stringify(row)} accounts for all ${N} events`);
  } finally {
    conn.close();
    await serve.stop('SIGKILL', 5_000);
  }
});

test('shutdown - synthetic --count run finishes', { timeout: 60_000 }, async () => {
  const COUNT = 2000;
  // queueSize above COUNT: this test is about the generator's count, not about a slow reader.
  const final = exitStatsFile();
  const serve = await startServe([
    'serve', ...LOOPBACK, '--source', 'synthetic', '--rate', '20000', '--count', String(COUNT), '--wait-clients', '1', '--alert-every', '0', '--queueSize', '5000', ...final.args,
  ]);
  const conn = connect(serve.addresses.grpc);
  try {
    const w = conn.watch('WatchLogs', 'all', { [CLIENT_NAME_KEY]: 'counter' });
    await w.waitFor(COUNT, 20_000);
    await waitUntil('the synthetic source to finish', async () => (await stats(serve)).ingest.synthetic?.finished === true, 10_000, async () => JSON.stringify((await stats(serve)).ingest));
    await delay(500);
    assert.equal(w.messages.length, COUNT, 'exactly --count events');
    const s = await stats(serve);
    assert.equal(s.ingest.synthetic.events, COUNT);
    assert.equal(s.encoded.logs, COUNT);
    assert.equal(s.encoded.alerts, 0, '--alert-every 0: logs only');
    assert.ok(w.messages.every((m) => m.Type === 'ContainerLog'), 'all logs');
    const c = s.clients.find((x) => x.name === 'counter') as ClientStats;
    assert.equal(c.delivered, COUNT);
    assert.deepEqual(c.dropped, { client_queue_full: 0, throttled: 0, filtered: 0, client_closed: 0, shutdown_grace_expired: 0 });

    const exit = await serve.stop('SIGTERM', 10_000);
    assert.equal(exit.code, 0, exit.stderr.slice(-2000));
    assert.equal(exitRow(exit, final.read(), 'counter').delivered, COUNT);
    assert.equal((await withTimeout(w.ended, 5_000, 'the stream to end')).code, 0);
  } finally {
    conn.close();
    await serve.stop('SIGKILL', 5_000);
  }
});

test('shutdown - a slow client cut off at the grace period gets UNAVAILABLE, and receives exactly what is counted delivered', { timeout: 60_000 }, async () => {
  const N = 20_000;
  const GRACE_MS = 2500;
  const final = exitStatsFile();
  const serve = await startServe(['serve', ...LOOPBACK, '--source', 'tcp', '--tcp', '127.0.0.1:0', '--queueSize', String(N), '--gracePeriodMs', String(GRACE_MS), ...final.args]);
  // ~500 KB/s: the two writes in flight at SIGTERM (up to 256 KiB each) arrive within the
  // grace period, and most of the queue does not.
  const w = rawWatch(serve.addresses.grpc, 'WatchLogs', 'all', { [CLIENT_NAME_KEY]: 'slow' }, 500_000);
  try {
    await waitUntil('the client registered', async () => (await clientStats(serve, 'slow'))?.open === true, 10_000);
    await sendOverTcp(serve.addresses.tcp, N);
    await waitUntil(`all ${N} events queued or written for the slow client`, async () => {
      const c = await clientStats(serve, 'slow');
      return c !== undefined && c.queueDepth + c.written === N;
    }, 10_000, async () => JSON.stringify(await clientStats(serve, 'slow')));

    serve.child.kill('SIGTERM');
    const status = await withTimeout(w.ended, 15_000, 'the stream to end');
    const exit = await withTimeout(serve.exited, 15_000, 'the process to exit');
    assert.equal(exit.code, 0, exit.stderr.slice(-2000));

    const row = exitRow(exit, final.read(), 'slow');
    assert.ok(row.graceExpired > 0, `the grace period cut it off: ${JSON.stringify(row)}`);
    assert.equal(row.delivered + row.graceExpired, N, `every event is delivered or counted shutdown_grace_expired: ${JSON.stringify(row)}`);
    assert.deepEqual([row.queueFull, row.throttled, row.filtered, row.closed], [0, 0, 0, 0], JSON.stringify(row));
    assert.equal(w.messages.length, row.delivered, `the client received what the server counted delivered: ${JSON.stringify(row)} ${JSON.stringify(status)}`);
    assert.equal(status.code, 14, `UNAVAILABLE: ${JSON.stringify(status)}`);
    assert.match(status.details, new RegExp(`^server shutting down: grace period expired with ${row.graceExpired} events queued`));
  } finally {
    w.close();
    await serve.stop('SIGKILL', 5_000);
  }
});
