/**
 * relay - `armorfeed relay --feeders FILE` in front of three `armorfeed serve` nodes
 * (socket sources, distinct --host), all real processes on 127.0.0.1, and a grpc-js
 * client on the relay. Events carry their node's sequence number in HostPID, so every
 * check is exact: the union, nothing twice, per-upstream counts against each node's own.
 *
 * Also: `armorfeed log --node`, a feeders-file change adding and removing an upstream
 * (a real LogService in this process whose WatchLogs fails once, to show WatchAlerts is
 * not torn down with it), and a node killed and started again.
 *
 * And what the relay says about upstreams that fail: a node that refuses for seconds, and
 * a LogService whose WatchLogs breaks on every attempt, each cost a few log lines, not
 * one per attempt, while /stats keeps counting the attempts and breaks.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { FeederStats } from '../src/feeder';
import { LINK_LINE_BURST, LINK_LINE_REFILL_MS, type UpstreamStats } from '../src/relay';
import { logServiceDefinition } from '../src/server';
import { feederTypes } from '../src/wire/proto';
import { connect, hostPidsByNode, openStreams, type OpenStreams } from './helpers/client';
import { seqLog } from './helpers/events';
import { HealthStatus, healthV1, watchHealth } from './helpers/health';
import { armorfeedMain, fetchStats, freePort, startServe, type ServeProcess } from './helpers/serve';
import { connectTo, frameOf, write } from './helpers/tcp';
import { delay, waitUntil, withTimeout } from './helpers/wait';

const NODES = ['node-a', 'node-b', 'node-c'] as const;
/** Events per node per burst: a third of them alerts. */
const BURST = 3000;

interface Node {
  name: string;
  port: number;
  socket: string;
  proc: ServeProcess;
  /** Next sequence number to send. */
  next: number;
}

function event(node: string, seq: number): Record<string, unknown> {
  const alert = seq % 3 === 0;
  return seqLog(seq, { hostName: node, ...(alert ? { type: 'MatchedPolicy', policyName: 'block-cat', severity: '5', action: 'Block' } : {}) }) as unknown as Record<string, unknown>;
}

function startNode(name: string, port: number, socket: string): Promise<ServeProcess> {
  return startServe([
    'serve', '--bind', '127.0.0.1', '--gRPC', String(port), '--gRPCHealthPort', '-1', '--metricsPort', '0',
    '--host', name, '--source', 'socket', '--socket', socket, '--alertThrottling', 'false', '--encoderThreads', '1',
  ]);
}

/** Sends `count` numbered events to a node's socket, 200 per write every 40 ms (about 5,000 ev/s). */
async function produce(node: Node, count: number): Promise<{ from: number; to: number }> {
  const from = node.next;
  const sock = await connectTo(node.socket);
  try {
    for (let sent = 0; sent < count; sent += 200) {
      const n = Math.min(200, count - sent);
      await write(sock, Buffer.concat(Array.from({ length: n }, (_, i) => frameOf(event(node.name, from + sent + i)))));
      await delay(40);
    }
  } finally {
    sock.end();
  }
  node.next = from + count;
  return { from, to: node.next };
}

function expected(from: number, to: number, alerts: boolean): number[] {
  const out: number[] = [];
  for (let s = from; s < to; s++) if ((s % 3 === 0) === alerts) out.push(s);
  return out;
}

function upstream(stats: FeederStats, id: string): UpstreamStats | undefined {
  return stats.relay?.upstreams.find((u) => u.id === id);
}

describe('relay - feeders mode against three armorfeed serve nodes', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'relay-test-'));
  const feedersFile = path.join(dir, 'feeders');
  const nodes: Node[] = [];
  let relay: ServeProcess;
  let client: OpenStreams;
  const relayStats = (): Promise<FeederStats> => fetchStats(relay.addresses.metrics, 5_000);
  const idOf = (n: Node): string => `127.0.0.1:${n.port}`;

  before(async () => {
    for (const name of NODES) {
      const port = await freePort();
      const socket = path.join(dir, `${name}.sock`);
      nodes.push({ name, port, socket, proc: await startNode(name, port, socket), next: 1 });
    }
    fs.writeFileSync(feedersFile, `# the cluster's feeders\n${nodes.map(idOf).join('\n')}\n`);
    relay = await startServe([
      'relay', '--bind', '127.0.0.1', '--gRPC', '0', '--gRPCHealthPort', '-1', '--metricsPort', '0',
      '--feeders', feedersFile, '--relayBackoffInitialMs', '100', '--relayBackoffMaxMs', '500', '--host', 'relay-0',
      // Room for a whole burst: a relay held off the CPU (a loaded test machine) receives
      // every node's backlog at once, and these tests check exact delivery, not overflow.
      '--queueSize', '20000',
    ]);
    await waitUntil('every upstream connected', async () => (await relayStats()).relay?.upstreams.every((u) => u.connected) === true, 15_000);
    client = openStreams(relay.addresses.grpc, [['WatchAlerts', 'policy'], ['WatchLogs', 'system']]);
    await waitUntil("the client's two streams on the relay", async () => (await relayStats()).clients.filter((c) => c.open).length === 2, 10_000);
  });

  after(async () => {
    client?.close();
    await relay?.stop('SIGTERM');
    await Promise.all(nodes.map((n) => n.proc.stop('SIGTERM')));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('relay - a client gets exactly the union of three nodes, and per-upstream counts in /stats agree with each node', { timeout: 60_000 }, async () => {
    const ranges = await Promise.all(nodes.map((n) => produce(n, BURST)));
    const [alerts, logs] = client.watchers;
    // On a timeout, say where events went: the nodes' counters for the relay and the relay's for the client.
    const where = async (): Promise<string> => {
      const nodeStats = await Promise.all(nodes.map(async (n) => ({ node: n.name, ingest: (await fetchStats(n.proc.addresses.metrics)).ingest, relayStreams: (await fetchStats(n.proc.addresses.metrics)).clients.map((c) => [c.name, c.stream, c.delivered, c.dropped]) })));
      const r = await relayStats();
      return JSON.stringify({ nodes: nodeStats, relayUpstreams: r.relay?.upstreams, relayClients: r.clients.map((c) => [c.name, c.stream, c.delivered, c.dropped]) });
    };
    try {
      await alerts.waitFor((BURST / 3) * NODES.length, 30_000);
      await logs.waitFor(((BURST * 2) / 3) * NODES.length, 30_000);
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${await where()}`, { cause: err });
    }
    await delay(200);
    const gotAlerts = hostPidsByNode(alerts);
    const gotLogs = hostPidsByNode(logs);
    nodes.forEach((n, i) => {
      assert.deepEqual(gotAlerts.get(n.name)?.sort((a, b) => a - b), expected(ranges[i].from, ranges[i].to, true), `${n.name} alerts`);
      assert.deepEqual(gotLogs.get(n.name)?.sort((a, b) => a - b), expected(ranges[i].from, ranges[i].to, false), `${n.name} logs`);
    });
    assert.equal(alerts.messages.length + logs.messages.length, BURST * NODES.length, 'nothing twice, nothing else');

    const stats = await relayStats();
    for (const n of nodes) {
      const own = await fetchStats(n.proc.addresses.metrics);
      const u = upstream(stats, idOf(n));
      assert.ok(u !== undefined);
      assert.equal(u.streams.alerts.events, own.encoded.alerts, `${n.name}: alerts the relay received = alerts the node encoded`);
      assert.equal(u.streams.logs.events, own.encoded.logs, `${n.name}: logs`);
      assert.equal(stats.relay?.nodes[n.name]?.alerts, own.encoded.alerts);
      const relayAsClient = own.clients.filter((c) => c.open && c.name.startsWith('armorfeed-relay@'));
      assert.equal(relayAsClient.length, 3, `${n.name} lists the relay's three streams by name`);
      assert.ok(relayAsClient.every((c) => c.dropped.client_queue_full === 0));
    }
    for (const c of stats.clients.filter((x) => x.open)) assert.equal(c.dropped.client_queue_full, 0);
  });

  test('relay - armorfeed log --node shows one node only; the relay counts the rest as filtered', { timeout: 60_000 }, async () => {
    const child = spawn(process.execPath, [armorfeedMain, 'log', '--gRPC', relay.addresses.grpc, '--logFilter', 'all', '--json', '--node', 'node-b', '--limit', '300', '--client-name', 'only-b'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    try {
      await waitUntil('the log client on the relay', async () => (await relayStats()).clients.filter((c) => c.open && c.name === 'only-b').length === 2, 10_000);
      await Promise.all(nodes.map((n) => produce(n, 1200)));
      assert.equal(await withTimeout(exited, 20_000, 'armorfeed log --limit'), 0);
    } finally {
      child.kill('SIGKILL');
    }
    const lines = out.trim().split('\n').map((l) => JSON.parse(l) as { HostName: string });
    assert.equal(lines.length, 600, 'the limit, per stream');
    assert.ok(lines.every((l) => l.HostName === 'node-b'), 'only node-b');
    const mine = (await relayStats()).clients.filter((c) => c.name === 'only-b');
    assert.ok(mine.every((c) => c.dropped.filtered > 0), `the relay filtered the other nodes: ${JSON.stringify(mine.map((c) => c.dropped))}`);
  });

  test('relay - a feeders file change adds an upstream; its broken WatchLogs is reopened alone while its WatchAlerts goes on; removing it stops it', { timeout: 60_000 }, async () => {
    // A real LogService on 127.0.0.1 whose first WatchLogs fails after 5 logs with UNAVAILABLE.
    const t = feederTypes();
    const frame = (type: typeof t.Alert, seq: number): Buffer => Buffer.from(type.encode({ HostName: 'flaky', HostPID: seq, Type: type === t.Alert ? 'MatchedPolicy' : 'ContainerLog' }).finish());
    let logCalls = 0;
    let alertCalls = 0;
    /** Streaming calls still running here, by their timer. */
    const running = new Set<NodeJS.Timeout>();
    const stream = (kind: 'alerts' | 'logs') => (call: grpc.ServerWritableStream<{ Filter: string }, Buffer>) => {
      const n = kind === 'logs' ? ++logCalls : ++alertCalls;
      let seq = 0;
      const timer = setInterval(() => {
        seq++;
        call.write(frame(kind === 'alerts' ? t.Alert : t.Log, seq));
        if (kind === 'logs' && n === 1 && seq === 5) {
          clearInterval(timer);
          running.delete(timer);
          call.emit('error', Object.assign(new Error('WatchLogs broke'), { code: grpc.status.UNAVAILABLE, details: 'WatchLogs broke' }));
        }
      }, 20);
      running.add(timer);
      call.on('cancelled', () => {
        clearInterval(timer);
        running.delete(timer);
      });
    };
    const server = new grpc.Server();
    server.addService(logServiceDefinition(), {
      HealthCheck: (call: grpc.ServerUnaryCall<{ nonce: number }, { Retval: number }>, cb: grpc.sendUnaryData<{ Retval: number }>) => cb(null, { Retval: call.request.nonce }),
      WatchAlerts: stream('alerts'),
      WatchLogs: stream('logs'),
      WatchMessages: () => undefined,
    });
    const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
    const flakyId = `127.0.0.1:${port}`;
    try {
      fs.appendFileSync(feedersFile, `${flakyId}\n`);
      await waitUntil('the flaky upstream added and its WatchLogs reopened', async () => {
        const u = upstream(await relayStats(), flakyId);
        return u !== undefined && u.streams.logs.reconnects === 1 && u.streams.logs.state === 'open' && u.streams.logs.events > 10;
      }, 15_000);
      const [alerts] = client.watchers;
      const before = alerts.messages.filter((m) => m.HostName === 'flaky').length;
      await delay(300);
      const u = upstream(await relayStats(), flakyId);
      assert.ok(u !== undefined);
      assert.equal(u.streams.alerts.reconnects, 0, 'WatchAlerts was never reopened');
      assert.equal(alertCalls, 1, 'one WatchAlerts call on the upstream for the whole time');
      assert.equal(logCalls, 2, 'WatchLogs was opened again, once');
      assert.match(u.streams.logs.lastError, /UNAVAILABLE: WatchLogs broke/);
      const flakyAlerts = alerts.messages.filter((m) => m.HostName === 'flaky').map((m) => Number(m.HostPID));
      assert.ok(flakyAlerts.length > before, 'alerts kept coming');
      assert.deepEqual(flakyAlerts, Array.from({ length: flakyAlerts.length }, (_, i) => i + 1), 'one unbroken alert sequence');

      fs.writeFileSync(feedersFile, nodes.map(idOf).join('\n'));
      await waitUntil('the flaky upstream removed', async () => upstream(await relayStats(), flakyId) === undefined, 10_000);
      await waitUntil('its streams cancelled by the relay', () => running.size === 0, 5_000);
    } finally {
      for (const x of running) clearInterval(x);
      server.forceShutdown();
    }
  });

  test('relay - a node killed and started again: its streams reopen, the others never break, and the gap shows as time disconnected', { timeout: 60_000 }, async () => {
    const b = nodes[1];
    const others = [nodes[0], nodes[2]];
    const [alerts, logs] = client.watchers;
    await b.proc.stop('SIGKILL');
    await waitUntil("node-b's streams down at the relay", async () => upstream(await relayStats(), idOf(b))?.streams.alerts.state !== 'open', 10_000);
    const during = await Promise.all(others.map((n) => produce(n, 600)));
    await delay(500);
    // Started again on the same gRPC port (a fresh socket path: SIGKILL left the old file).
    b.socket = path.join(dir, 'node-b-2.sock');
    b.proc = await startNode(b.name, b.port, b.socket);
    b.next = 1_000_000;
    await waitUntil("node-b's three streams reopened", async () => upstream(await relayStats(), idOf(b))?.connected === true, 15_000);
    const after = await produce(b, 600);
    await waitUntil('node-b events after the restart', () => (hostPidsByNode(logs).get('node-b') ?? []).filter((s) => s >= after.from).length === 400, 10_000);

    const stats = await relayStats();
    const ub = upstream(stats, idOf(b));
    assert.ok(ub !== undefined);
    for (const k of ['alerts', 'logs', 'messages'] as const) {
      assert.ok(ub.streams[k].reconnects >= 1, `node-b ${k} reconnected`);
      assert.ok(ub.streams[k].disconnectedSec >= 0.5, `node-b ${k} disconnected for ${ub.streams[k].disconnectedSec}s`);
    }
    for (const n of others) {
      const u = upstream(stats, idOf(n));
      assert.ok(u !== undefined && u.connected, `${n.name} connected`);
      for (const k of ['alerts', 'logs', 'messages'] as const) assert.equal(u.streams[k].reconnects, 0, `${n.name} ${k} never broke`);
    }
    // The other nodes' events sent while node-b was down all arrived.
    others.forEach((n, i) => {
      const got = (hostPidsByNode(alerts).get(n.name) ?? []).filter((s) => s >= during[i].from && s < during[i].to).sort((a, b) => a - b);
      assert.deepEqual(got, expected(during[i].from, during[i].to, true), `${n.name} alerts while node-b was down`);
    });
    assert.equal(await Promise.race([alerts.ended.then(() => 'ended'), delay(10).then(() => 'open')]), 'open', "the relay's client stream never ended");
  });
});

describe('relay - feeders mode: an upstream that is not there, then is; one whose WatchLogs breaks on every attempt', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'relay-down-test-'));
  const feedersFile = path.join(dir, 'feeders');
  let relay: ServeProcess;
  let port = 0;
  let refusingId = '';
  let node: ServeProcess | undefined;
  const relayStats = (): Promise<FeederStats> => fetchStats(relay.addresses.metrics, 5_000);
  /** The relay's log lines (stderr) about one upstream. */
  const linesAbout = (id: string): string[] => relay.stderr().split('\n').filter((l) => l.includes(`upstream ${id}`));
  const failedAttempts = async (id: string): Promise<number[]> => {
    const u = upstream(await relayStats(), id);
    return u === undefined ? [] : (['alerts', 'logs', 'messages'] as const).map((k) => u.streams[k].failedAttempts);
  };

  before(async () => {
    // A free port nobody listens on: every HealthCheck is refused until a node starts there.
    port = await freePort();
    refusingId = `127.0.0.1:${port}`;
    fs.writeFileSync(feedersFile, `${refusingId}\n`);
    relay = await startServe([
      'relay', '--bind', '127.0.0.1', '--gRPC', '0', '--gRPCHealthPort', '0', '--metricsPort', '0', '--host', 'relay-down',
      '--feeders', feedersFile, '--relayBackoffInitialMs', '50', '--relayBackoffMaxMs', '200',
    ]);
  });

  after(async () => {
    await relay?.stop('SIGTERM');
    await node?.stop('SIGTERM');
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('relay - while no upstream is reachable grpc.health.v1 says NOT_SERVING on both ports, and HealthCheck still echoes the nonce', { timeout: 30_000 }, async () => {
    await waitUntil('a few failed attempts on every stream', async () => (await failedAttempts(refusingId)).every((n) => n >= 3), 15_000);
    assert.equal(await healthV1(relay.addresses.health, 'feeder.LogService'), HealthStatus.NOT_SERVING);
    assert.equal(await healthV1(relay.addresses.health, ''), HealthStatus.NOT_SERVING);
    assert.equal(await healthV1(relay.addresses.grpc, 'feeder.LogService'), HealthStatus.NOT_SERVING, 'the gRPC port\'s own grpc.health.v1 too');
    // karmor and upstream's relay abort on a HealthCheck that does not echo: it stays a liveness check.
    const tc = connect(relay.addresses.grpc);
    try {
      assert.equal(await withTimeout(tc.health(123_456_789), 5_000, 'HealthCheck'), 123_456_789);
    } finally {
      tc.close();
    }
    const s = await relayStats();
    assert.equal(s.relay?.serving, false);
    const metrics = await (await fetch(`http://${relay.addresses.metrics}/metrics`)).text();
    assert.match(metrics, /^armorfeed_relay_serving 0$/m);
  });

  test('relay - an upstream that refuses for seconds costs one warning, not one per attempt, while /stats keeps counting the attempts', { timeout: 40_000 }, async () => {
    // 12 attempts per stream at 50-200 ms each: without a limit, 36 lines.
    await waitUntil('a dozen failed attempts on every stream', async () => (await failedAttempts(refusingId)).every((n) => n >= 12), 20_000, async () => JSON.stringify(upstream(await relayStats(), refusingId)));
    const first = await failedAttempts(refusingId);
    await waitUntil('more failed attempts', async () => (await failedAttempts(refusingId)).every((n, i) => n >= first[i] + 5), 10_000);
    const lines = linesAbout(refusingId);
    const warnings = lines.filter((l) => l.includes('[WARN]'));
    assert.equal(warnings.length, 1, `one warning for the whole outage:\n${lines.join('\n')}`);
    assert.match(warnings[0], /down: no stream open/);
    assert.match(warnings[0], /HealthCheck failed \(UNAVAILABLE/, 'the warning says why');
    assert.ok(lines.length <= 2, `added and down, nothing else:\n${lines.join('\n')}`);
    const s = upstream(await relayStats(), refusingId);
    assert.ok(s !== undefined && !s.connected);
    assert.match(s.streams.logs.lastError, /HealthCheck failed \(UNAVAILABLE/);

    // The node starts: one more line, that it is connected.
    node = await startServe(['serve', '--bind', '127.0.0.1', '--gRPC', String(port), '--gRPCHealthPort', '-1', '--metricsPort', '-1', '--host', 'late-node']);
    await waitUntil('the upstream connected', async () => upstream(await relayStats(), refusingId)?.connected === true, 15_000);
    await waitUntil('a line saying it is connected', () => linesAbout(refusingId).some((l) => /\[INFO\].* connected: /.test(l)), 5_000, () => linesAbout(refusingId).join('\n'));
    assert.ok(linesAbout(refusingId).length <= 3, linesAbout(refusingId).join('\n'));
  });

  test('relay - health is SERVING once an upstream is connected, and NOT_SERVING again when the only one goes away', { timeout: 30_000 }, async () => {
    const health = watchHealth(relay.addresses.health, 'feeder.LogService');
    try {
      await waitUntil('SERVING with the node connected', () => health.statuses.at(-1) === HealthStatus.SERVING, 5_000, () => JSON.stringify(health.statuses));
      assert.equal(await healthV1(relay.addresses.grpc, ''), HealthStatus.SERVING);
      assert.equal((await relayStats()).relay?.serving, true);
      await node?.stop('SIGKILL');
      await waitUntil('NOT_SERVING with the node gone', () => health.statuses.at(-1) === HealthStatus.NOT_SERVING, 10_000, () => JSON.stringify(health.statuses));
      assert.equal(await healthV1(relay.addresses.grpc, 'feeder.LogService'), HealthStatus.NOT_SERVING);
      assert.equal((await relayStats()).relay?.serving, false);
      assert.ok(relay.stderr().includes('no upstream has a stream open (1 listed): health NOT_SERVING'), relay.stderr().slice(-2000));
    } finally {
      health.close();
    }
  });

  test('relay - a stream that breaks on every attempt is told at most a few times, with how often it broke', { timeout: 40_000 }, async () => {
    // A real LogService whose WatchLogs fails at once, every time; WatchAlerts and WatchMessages stay open.
    let logCalls = 0;
    const server = new grpc.Server();
    server.addService(logServiceDefinition(), {
      HealthCheck: (call: grpc.ServerUnaryCall<{ nonce: number }, { Retval: number }>, cb: grpc.sendUnaryData<{ Retval: number }>) => cb(null, { Retval: call.request.nonce }),
      WatchAlerts: () => undefined,
      WatchLogs: (call: grpc.ServerWritableStream<{ Filter: string }, Buffer>) => {
        logCalls++;
        call.emit('error', Object.assign(new Error('WatchLogs refused'), { code: grpc.status.UNAVAILABLE, details: 'WatchLogs refused' }));
      },
      WatchMessages: () => undefined,
    });
    const flakyPort = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
    const flakyId = `127.0.0.1:${flakyPort}`;
    try {
      const added = Date.now();
      fs.writeFileSync(feedersFile, `${refusingId}\n${flakyId}\n`);
      // 15 breaks at 50-200 ms each: without a limit, 15 warnings.
      await waitUntil('WatchLogs broke 15 times', async () => (upstream(await relayStats(), flakyId)?.streams.logs.reconnects ?? 0) >= 15, 20_000, async () => JSON.stringify(upstream(await relayStats(), flakyId)));
      const u = upstream(await relayStats(), flakyId);
      assert.ok(u !== undefined);
      assert.equal(u.streams.alerts.reconnects, 0, 'WatchAlerts stayed open');
      assert.ok(logCalls >= 15);
      const lines = linesAbout(flakyId);
      // added, then the burst the limit allows at once, and one more per refill period gone by (none, unless the machine is slow).
      const allowed = 1 + LINK_LINE_BURST + Math.floor((Date.now() - added) / LINK_LINE_REFILL_MS);
      assert.ok(lines.length <= allowed, `at most ${allowed} lines for ${u.streams.logs.reconnects} breaks:\n${lines.join('\n')}`);
      assert.ok(lines.some((l) => /WatchLogs/.test(l) && /UNAVAILABLE: WatchLogs refused/.test(l)), `a line names the stream and why:\n${lines.join('\n')}`);
      // Partly connected is still relaying (its alerts): SERVING, though the other upstream is down.
      assert.equal(await healthV1(relay.addresses.health, 'feeder.LogService'), HealthStatus.SERVING);
    } finally {
      fs.writeFileSync(feedersFile, `${refusingId}\n`);
      server.forceShutdown();
    }
  });

  test('relay - a node that comes back reopens its three streams together, whatever their backoff: one "connected" line, no "partly connected" one', { timeout: 40_000 }, async () => {
    // Each stream waits 2-4 s (jittered) after a failed attempt: left to their own timers,
    // the three would reopen up to 2 s apart, with a "partly connected" line in between.
    const backPort = await freePort();
    const backId = `127.0.0.1:${backPort}`;
    const slow = await startServe([
      'relay', '--bind', '127.0.0.1', '--gRPC', '0', '--gRPCHealthPort', '-1', '--metricsPort', '0', '--host', 'relay-slow',
      '--feeders', backId, '--relayBackoffInitialMs', '4000', '--relayBackoffMaxMs', '4000',
    ]);
    const server = new grpc.Server();
    try {
      const stats = async (): Promise<UpstreamStats | undefined> => upstream(await fetchStats(slow.addresses.metrics, 5_000), backId);
      await waitUntil('a failed attempt on every stream', async () => {
        const u = await stats();
        return u !== undefined && (['alerts', 'logs', 'messages'] as const).every((k) => u.streams[k].failedAttempts >= 1);
      }, 10_000);
      // The node comes back: a real LogService on that port whose streams stay open.
      server.addService(logServiceDefinition(), {
        HealthCheck: (call: grpc.ServerUnaryCall<{ nonce: number }, { Retval: number }>, cb: grpc.sendUnaryData<{ Retval: number }>) => cb(null, { Retval: call.request.nonce }),
        WatchAlerts: () => undefined,
        WatchLogs: () => undefined,
        WatchMessages: () => undefined,
      });
      await new Promise<number>((resolve, reject) => server.bindAsync(backId, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
      await waitUntil('a stream open', async () => Object.values((await stats())?.streams ?? {}).some((x) => x.state === 'open'), 10_000);
      const firstOpen = Date.now();
      await waitUntil('all three open', async () => (await stats())?.connected === true, 10_000, async () => JSON.stringify(await stats()));
      assert.ok(Date.now() - firstOpen < 1500, `the other two followed the first within ${Date.now() - firstOpen} ms, not on their own timers`);
      const lineOf = (): string[] => slow.stderr().split('\n').filter((l) => l.includes(`upstream ${backId}`));
      await waitUntil('the connected line', () => lineOf().some((l) => l.includes(' connected: ')), 5_000, () => lineOf().join('\n'));
      assert.deepEqual(lineOf().map((l) => /\] relay: upstream \S+ (\S+)/.exec(l)?.[1]), ['added', 'down:', 'connected:'], lineOf().join('\n'));
    } finally {
      server.forceShutdown();
      await slow.stop('SIGTERM');
    }
  });
});

describe('relay - command line', () => {
  const run = (args: string[]): { status: number | null; stderr: string } => {
    const r = spawnSync(process.execPath, [armorfeedMain, 'relay', ...args], { encoding: 'utf8', timeout: 20_000 });
    return { status: r.status, stderr: r.stderr };
  };

  test('relay - without --feeders (or --from), or with a bad entry, exits 2 with a coded error', () => {
    const none = run(['--gRPC', '0', '--metricsPort', '-1']);
    assert.equal(none.status, 2, none.stderr);
    assert.match(none.stderr, /ERR_CONFIG_INVALID: from: is required, or --feeders/);
    const missing = run(['--feeders', '/nonexistent/feeders', '--gRPC', '0', '--metricsPort', '-1']);
    assert.equal(missing.status, 2, missing.stderr);
    assert.match(missing.stderr, /ERR_CONFIG_FILE: feeders: .* is neither HOST:PORT/);
  });

  test('relay - a serve-only option is not a relay flag (exit 2)', () => {
    const r = run(['--feeders', '127.0.0.1:1', '--source', 'socket']);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /unknown option '--source'/);
  });
});
