/**
 * relay - `armorfeed relay --from` against a real nats-server: two `armorfeed serve`
 * nodes (socket sources, distinct --host) exporting to JetStream, two relays consuming the
 * stream, grpc-js clients on the relays. Events carry their node's sequence number in
 * HostPID, so every check is exact: each relay's client gets the union, nothing twice; a
 * replaying client gets history then live in order with no gap or duplicate at the seam;
 * a node whose export drops events (NATS stopped, a tiny export buffer) shows up as
 * upstream_gap equal to its export_buffer_full count.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { FeederStats } from '../src/feeder';
import type { NodeRunStats } from '../src/relay';
import { hostPidsByNode, openStreams, type OpenStreams } from './helpers/client';
import { seqLog } from './helpers/events';
import { healthV1, watchHealth } from './helpers/health';
import { freePorts, NatsServer } from './helpers/nats';
import { armorfeedMain, fetchStats, startServe, type ServeProcess } from './helpers/serve';
import { TEST_HOOK_CRASH_RELAY } from '../src/testHooks';
import { connectTo, frameOf, write } from './helpers/tcp';
import { delay, waitUntil, withTimeout } from './helpers/wait';

const NODES = ['node-a', 'node-b'] as const;
/** Events per node per burst: a third of them alerts. */
const BURST = 1500;
/** grpc.health.v1 ServingStatus. */
const SERVING = 1;
const NOT_SERVING = 2;

interface Node {
  name: string;
  socket: string;
  proc: ServeProcess;
  next: number;
}

function event(node: string, seq: number, alerts = true): Record<string, unknown> {
  const alert = alerts && seq % 3 === 0;
  return seqLog(seq, { hostName: node, ...(alert ? { type: 'MatchedPolicy', policyName: 'block-cat', severity: '5', action: 'Block' } : {}) }) as unknown as Record<string, unknown>;
}

function startNode(name: string, socket: string, nats: string, extra: string[] = []): Promise<ServeProcess> {
  return startServe([
    'serve', '--bind', '127.0.0.1', '--gRPC', '0', '--gRPCHealthPort', '-1', '--metricsPort', '0', '--cluster', 'c1',
    '--host', name, '--source', 'socket', '--socket', socket, '--alertThrottling', 'false', '--encoderThreads', '1',
    '--export', nats, ...extra,
  ]);
}

function startRelay(nats: string, extra: string[] = [], env?: NodeJS.ProcessEnv): Promise<ServeProcess> {
  return startServe([
    'relay', '--bind', '127.0.0.1', '--gRPC', '0', '--gRPCHealthPort', '0', '--metricsPort', '0', '--from', nats, '--host', 'relay',
    '--queueSize', '20000', ...extra,
  ], env !== undefined ? { env } : {});
}

/** Sends `count` numbered events to a node's socket, `perWrite` per write every 40 ms (200: about 5,000 ev/s). */
async function produce(node: Node, count: number, alerts = true, perWrite = 200): Promise<void> {
  const from = node.next;
  const sock = await connectTo(node.socket);
  try {
    for (let sent = 0; sent < count; sent += perWrite) {
      const n = Math.min(perWrite, count - sent);
      await write(sock, Buffer.concat(Array.from({ length: n }, (_, i) => frameOf(event(node.name, from + sent + i, alerts)))));
      await delay(40);
    }
  } finally {
    sock.end();
  }
  node.next = from + count;
}

function expected(from: number, to: number, alerts: boolean): number[] {
  const out: number[] = [];
  for (let s = from; s < to; s++) if ((s % 3 === 0) === alerts) out.push(s);
  return out;
}

const relayIsServing = async (relay: ServeProcess): Promise<boolean> => (await fetchStats(relay.addresses.metrics, 5000)).relay?.jetstream?.serving === true;

describe('relay - JetStream mode: two nodes, one nats-server, two relays', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'relay-js-test-'));
  const nodes: Node[] = [];
  const relays: ServeProcess[] = [];
  const clients: OpenStreams[] = [];
  let nats: NatsServer;
  /** Before the first burst: a replay from here holds every event the tests produce. */
  let startedAt = '';

  before(async () => {
    nats = await NatsServer.start();
    for (const name of NODES) {
      const socket = path.join(dir, `${name}.sock`);
      nodes.push({ name, socket, proc: await startNode(name, socket, nats.url), next: 1 });
    }
    // The stream exists once a node's export has checked it; relays wait for it otherwise.
    relays.push(await startRelay(nats.url), await startRelay(nats.url, ['--relayMaxReplays', '1']));
    for (const r of relays) await waitUntil('the relay consumes the stream', () => relayIsServing(r), 15_000);
    for (const r of relays) {
      clients.push(openStreams(r.addresses.grpc, [['WatchAlerts', 'policy'], ['WatchLogs', 'system']]));
      await waitUntil("the client's two streams on the relay", async () => (await fetchStats(r.addresses.metrics)).clients.filter((c) => c.open).length === 2, 10_000);
    }
    startedAt = new Date(Date.now() - 1000).toISOString();
  });

  after(async () => {
    for (const c of clients) c.close();
    await Promise.all(relays.map((r) => r.stop('SIGTERM')));
    await Promise.all(nodes.map((n) => n.proc.stop('SIGTERM')));
    await nats?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('relay - each relay\'s client gets exactly the union of both nodes, and per-node counts in /stats agree', { timeout: 40_000 }, async () => {
    // A client with a server-side filter on relay 0: while it is there the JetStream thread
    // fills the batches' attributes, without which every event would pass it.
    const filtered = openStreams(relays[0].addresses.grpc, [['WatchLogs', 'system', { 'x-armorfeed-operation': 'Process', 'x-armorfeed-client': 'only-process' }]]);
    await waitUntil('the filtered stream is open', async () => (await fetchStats(relays[0].addresses.metrics)).clients.filter((c) => c.open).length === 3, 10_000);
    await Promise.all(nodes.map((n) => produce(n, BURST)));
    for (const c of clients) {
      const [alerts, logs] = c.watchers;
      await alerts.waitFor((BURST / 3) * NODES.length, 20_000);
      await logs.waitFor(((BURST * 2) / 3) * NODES.length, 20_000);
      await delay(200);
      const a = hostPidsByNode(alerts);
      const l = hostPidsByNode(logs);
      for (const n of nodes) {
        assert.deepEqual(a.get(n.name), expected(1, n.next, true), `${n.name}'s alerts, each once, in order`);
        assert.deepEqual(l.get(n.name), expected(1, n.next, false), `${n.name}'s logs, each once, in order`);
      }
      assert.equal(alerts.messages.length + logs.messages.length, BURST * NODES.length, 'nothing else');
    }
    for (const r of relays) {
      const s = await fetchStats(r.addresses.metrics);
      const js = s.relay?.jetstream;
      assert.ok(js !== undefined);
      for (const n of nodes) {
        assert.equal(s.relay?.nodes[n.name]?.alerts, BURST / 3, `${n.name}'s alerts in /stats`);
        assert.equal(s.relay?.nodes[n.name]?.logs, (BURST * 2) / 3, `${n.name}'s logs in /stats`);
        const runs: NodeRunStats[] = Object.values(js.nodes).filter((r) => r.host === n.name);
        assert.equal(runs.length, 1, `one run of ${n.name}`);
        assert.deepEqual({ alerts: runs[0].events.alerts, logs: runs[0].events.logs }, { alerts: BURST / 3, logs: (BURST * 2) / 3 });
      }
      assert.equal(s.relay?.dropped.upstream_gap, 0, 'no gap');
      assert.equal(js.consumers.length, 1);
      assert.equal(js.consumers[0].state, 'consuming');
      assert.equal(js.consumers[0].redelivered, 0);
      assert.equal(await healthV1(r.addresses.health, 'feeder.LogService'), SERVING);
    }
    const only = (await fetchStats(relays[0].addresses.metrics)).clients.find((c) => c.name === 'only-process');
    assert.equal(filtered.watchers[0].messages.length, 0, 'no log of these is a Process log');
    assert.equal(only?.dropped.filtered, ((BURST * 2) / 3) * NODES.length, 'each filtered on the relay, counted');
    filtered.close();
  });

  test('relay - a replaying client gets the history from --since, then live events, with no gap or duplicate at the seam', { timeout: 40_000 }, async () => {
    const replay = openStreams(relays[0].addresses.grpc, [['WatchAlerts', 'policy', { 'x-armorfeed-since': startedAt }], ['WatchLogs', 'system', { 'x-armorfeed-since': startedAt }]]);
    try {
      const [alerts, logs] = replay.watchers;
      await logs.waitFor(1, 15_000);
      // Live while the history may still be arriving: the seam falls somewhere inside.
      await Promise.all(nodes.map((n) => produce(n, BURST)));
      const total = nodes.map((n) => n.next - 1).reduce((a, b) => a + b, 0);
      await alerts.waitFor(total / 3, 20_000);
      await logs.waitFor((total * 2) / 3, 20_000);
      await delay(200);
      const a = hostPidsByNode(alerts);
      const l = hostPidsByNode(logs);
      for (const n of nodes) {
        assert.deepEqual(a.get(n.name), expected(1, n.next, true), `${n.name}'s alerts: history then live, each once, in order`);
        assert.deepEqual(l.get(n.name), expected(1, n.next, false), `${n.name}'s logs: history then live, each once, in order`);
      }
      const s = await fetchStats(relays[0].addresses.metrics);
      assert.equal(s.relay?.jetstream?.replays.active, 2);
      // The shared clients got the live burst too, and only it.
      assert.equal(clients[0].watchers[1].messages.length, (total * 2) / 3);
    } finally {
      replay.close();
    }
    await waitUntil('the replays end with their streams', async () => (await fetchStats(relays[0].addresses.metrics)).relay?.jetstream?.replays.active === 0, 5000);
  });

  test('relay - armorfeed log --since --node replays one node\'s history through the relay', { timeout: 30_000 }, async () => {
    const want = expected(1, nodes[0].next, true);
    const child = spawn(process.execPath, [armorfeedMain, 'log', '--gRPC', relays[0].addresses.grpc, '--logFilter', 'policy', '--json', '--node', 'node-a', '--since', '10m', '--limit', String(want.length)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    const code = await withTimeout(new Promise<number | null>((resolve) => child.on('exit', resolve)), 20_000, 'armorfeed log --since to exit');
    assert.equal(code, 0, err);
    const events = out.trim().split('\n').map((line) => JSON.parse(line) as { HostName: string; HostPID: number });
    assert.ok(events.every((e) => e.HostName === 'node-a'), 'only node-a');
    assert.deepEqual(events.map((e) => e.HostPID), want);
  });

  test('relay - a replay of more history than the client\'s queue holds is paced to the client: all of it, none dropped', { timeout: 30_000 }, async () => {
    const small = await startRelay(nats.url, ['--queueSize', '300']);
    try {
      await waitUntil('the relay consumes the stream', () => relayIsServing(small), 15_000);
      const replay = openStreams(small.addresses.grpc, [['WatchLogs', 'system', { 'x-armorfeed-since': startedAt }]]);
      try {
        const [logs] = replay.watchers;
        const want = nodes.map((n) => n.next - 1).reduce((a, b) => a + b, 0);
        await logs.waitFor((want * 2) / 3, 20_000);
        await delay(200);
        const l = hostPidsByNode(logs);
        for (const n of nodes) assert.deepEqual(l.get(n.name), expected(1, n.next, false), `${n.name}'s logs, each once, in order`);
        const client = (await fetchStats(small.addresses.metrics)).clients.find((c) => c.open && c.stream === 'logs');
        assert.equal(client?.dropped.client_queue_full, 0, 'nothing dropped for want of room');
        // Shutdown stops the replay's consumers first: its stream ends OK, like a live client's.
        const stopped = small.stop('SIGTERM');
        const status = await withTimeout(logs.ended, 10_000, 'the replaying stream to end');
        assert.equal(status.code, grpc.status.OK, status.details);
        assert.equal((await stopped).code, 0);
      } finally {
        replay.close();
      }
    } finally {
      await small.stop('SIGTERM');
    }
  });

  test('relay - replays over relayMaxReplays are refused with RESOURCE_EXHAUSTED, a bad --since with INVALID_ARGUMENT', { timeout: 20_000 }, async () => {
    const one = openStreams(relays[1].addresses.grpc, [['WatchLogs', 'system', { 'x-armorfeed-since': startedAt }]]);
    try {
      await waitUntil('the first replay started', async () => (await fetchStats(relays[1].addresses.metrics)).relay?.jetstream?.replays.active === 1, 5000);
      const two = openStreams(relays[1].addresses.grpc, [['WatchLogs', 'system', { 'x-armorfeed-after-seq': '0' }], ['WatchAlerts', 'policy', { 'x-armorfeed-since': 'yesterday' }]]);
      try {
        const [over, bad] = await Promise.all(two.watchers.map((w) => withTimeout(w.ended, 5000, 'the refused stream to end')));
        assert.equal(over.code, grpc.status.RESOURCE_EXHAUSTED, over.details);
        assert.match(over.details, /ERR_REPLAY_LIMIT: 1 clients replay already \(relayMaxReplays=1\)/);
        assert.equal(bad.code, grpc.status.INVALID_ARGUMENT, bad.details);
        assert.match(bad.details, /ERR_REPLAY_INVALID: x-armorfeed-since/);
      } finally {
        two.close();
      }
      assert.equal((await fetchStats(relays[1].addresses.metrics)).relay?.jetstream?.replays.refused, 1);
    } finally {
      one.close();
    }
  });

  test('relay - a node whose export drops events while NATS is stopped shows them as upstream_gap, exactly its export_buffer_full', { timeout: 40_000 }, async () => {
    const name = 'node-small';
    const socket = path.join(dir, `${name}.sock`);
    // A buffer of 50 and acks that may take a minute: while NATS is stopped, every event past the 50 is export_buffer_full, none times out.
    const node: Node = { name, socket, next: 1, proc: await startNode(name, socket, nats.url, ['--exportBufferEvents', '50', '--exportInFlight', '10', '--exportAckTimeoutMs', '60000']) };
    try {
      const relay = relays[0];
      const run = async (): Promise<NonNullable<FeederStats['relay']>['jetstream']> => (await fetchStats(relay.addresses.metrics)).relay?.jetstream;
      const runOf = async () => Object.values((await run())?.nodes ?? {}).find((r) => r.host === name);
      // 10 per write: well within the export's 50 while NATS answers.
      await produce(node, 200, false, 10);
      await waitUntil('the relay saw the node\'s first logs', async () => (await runOf())?.lastSeq.logs === 200, 10_000, async () => JSON.stringify({ relay: await run(), node: (await fetchStats(node.proc.addresses.metrics)).export }));
      nats.signal('SIGSTOP');
      try {
        await produce(node, 1000, false);
        await delay(300);
      } finally {
        nats.signal('SIGCONT');
      }
      const metrics = node.proc.addresses.metrics;
      await waitUntil('the node\'s export settled', async () => {
        const x = (await fetchStats(metrics)).export;
        return x !== undefined && x.buffered.events === 0 && x.inFlight === 0;
      }, 20_000);
      // Events after the hole: a hole at the end of a sequence is only seen once the next number arrives.
      await produce(node, 10, false, 10);
      const x = (await fetchStats(metrics)).export;
      assert.ok(x !== undefined);
      assert.ok(x.dropped.export_buffer_full > 0, `the export dropped: ${JSON.stringify(x.dropped)}`);
      assert.deepEqual({ ...x.dropped, export_buffer_full: 0 }, { export_buffer_full: 0, export_rejected: 0, export_timeout: 0, export_shutdown: 0 });
      await waitUntil('the relay saw the last log', async () => (await runOf())?.lastSeq.logs === 1210, 10_000);
      const seen = await runOf();
      assert.ok(seen !== undefined);
      assert.equal(seen.events.logs + seen.gaps.logs, 1210, 'every logs number is either relayed or a gap');
      // A daemon message after the hole too (a client connecting is announced), so a hole in
      // the messages' sequence is seen as well.
      const lastMessage = seen.lastSeq.messages;
      const announce = openStreams(node.proc.addresses.grpc, [['WatchLogs', 'system']]);
      await waitUntil('the relay saw a later daemon message', async () => ((await runOf())?.lastSeq.messages ?? 0) > lastMessage, 10_000);
      announce.close();
      const final = await runOf();
      assert.ok(final !== undefined);
      const gaps = final.gaps.alerts + final.gaps.logs + final.gaps.messages;
      assert.ok(final.gaps.logs > 0 && final.gaps.logs <= x.dropped.export_buffer_full, `logs gap ${final.gaps.logs} of ${x.dropped.export_buffer_full} dropped`);
      assert.equal(gaps, x.dropped.export_buffer_full, `upstream_gap ${JSON.stringify(final.gaps)} = export_buffer_full ${x.dropped.export_buffer_full}`);
      const total = (await fetchStats(relay.addresses.metrics)).relay?.dropped.upstream_gap;
      assert.equal(total, gaps);
      const text = await (await fetch(`http://${relay.addresses.metrics}/metrics`)).text();
      assert.match(text, new RegExp(`armorfeed_relay_upstream_gap_total\\{node="${name}",stream="logs"\\} ${final.gaps.logs}\\b`));
    } finally {
      await node.proc.stop('SIGTERM');
    }
  });

  test('relay - a feeders-mode relay with --export puts a node without an export on JetStream, per node, for relay --from', { timeout: 30_000 }, async () => {
    const name = 'node-plain';
    const socket = path.join(dir, `${name}.sock`);
    const plain = await startServe([
      'serve', '--bind', '127.0.0.1', '--gRPC', '0', '--gRPCHealthPort', '-1', '--metricsPort', '0', '--host', name,
      '--source', 'socket', '--socket', socket, '--alertThrottling', 'false', '--encoderThreads', '1',
    ]);
    const node: Node = { name, socket, next: 1, proc: plain };
    let bridge: ServeProcess | undefined;
    try {
      bridge = await startServe([
        'relay', '--bind', '127.0.0.1', '--gRPC', '0', '--gRPCHealthPort', '-1', '--metricsPort', '0', '--host', 'bridge', '--cluster', 'c1',
        '--feeders', plain.addresses.grpc, '--export', nats.url,
      ]);
      const bridgeMetrics = bridge.addresses.metrics;
      await waitUntil('the bridge dials the node', async () => (await fetchStats(bridgeMetrics)).relay?.upstreams.every((u) => u.connected) === true, 10_000);
      await produce(node, 300);
      const downstream = relays[0].addresses.metrics;
      await waitUntil('relay --from got the node through the bridge', async () => {
        const c = (await fetchStats(downstream)).relay?.nodes[name];
        return c?.alerts === 100 && c.logs === 200;
      }, 15_000, async () => JSON.stringify((await fetchStats(bridgeMetrics)).relay?.exports));
      await waitUntil('the bridge\'s export of the node settled', async () => (await fetchStats(bridgeMetrics)).relay?.exports?.[name]?.buffered.events === 0, 5000);
      const exported = (await fetchStats(bridgeMetrics)).relay?.exports?.[name];
      // 300 events and the node's daemon messages (the bridge's streams announced), all acked.
      assert.ok(exported !== undefined && exported.acked >= 300, `the bridge exported the node's events under its name: ${JSON.stringify(exported)}`);
      assert.equal(exported.offered, exported.acked);
      assert.match(exported?.nodeId ?? '', new RegExp(`^${name}@`));
      const run = Object.values((await fetchStats(downstream)).relay?.jetstream?.nodes ?? {}).find((r) => r.host === name);
      assert.deepEqual(run?.gaps, { alerts: 0, logs: 0, messages: 0 });
      assert.deepEqual({ alerts: run?.lastSeq.alerts, logs: run?.lastSeq.logs }, { alerts: 100, logs: 200 });
    } finally {
      await bridge?.stop('SIGTERM');
      await plain.stop('SIGTERM');
    }
  });

  test('relay - a JetStream thread that dies is started again: NOT_SERVING meanwhile, counted, and its clients and replays get every event once, in order', { timeout: 40_000 }, async () => {
    const relay = await startRelay(nats.url, [], { ...process.env, ARMORFEED_TEST_HOOKS: '1' });
    const node = nodes[0];
    const live = openStreams(relay.addresses.grpc, [['WatchLogs', 'system']]);
    let replay: OpenStreams | undefined;
    // The main gRPC port's grpc.health.v1 sends every change as it happens.
    const health = watchHealth(relay.addresses.grpc, 'feeder.LogService');
    try {
      await waitUntil('the relay consumes the stream', () => relayIsServing(relay), 15_000);
      await waitUntil('the live stream is open', async () => (await fetchStats(relay.addresses.metrics)).clients.filter((c) => c.open).length === 1, 10_000);
      replay = openStreams(relay.addresses.grpc, [['WatchLogs', 'system', { 'x-armorfeed-since': startedAt }]]);
      const from = node.next;
      await produce(node, 300, false);
      // The hook event crashes the first thread before it posts the batch holding it
      // (src/testHooks.ts): the new thread reads it again, after the last event relayed.
      const sock = await connectTo(node.socket);
      await write(sock, frameOf({ ...event(node.name, node.next, false), resource: TEST_HOOK_CRASH_RELAY }));
      sock.end();
      node.next++;
      await waitUntil('the thread started again', async () => (await fetchStats(relay.addresses.metrics)).relay?.jetstream?.thread.restarts === 1, 15_000);
      await produce(node, 300, false);
      // Every event from `from` on is a log; before it, a third were alerts (the bursts above).
      const want = Array.from({ length: node.next - from }, (_, i) => from + i);
      const [logs] = live.watchers;
      await waitUntil('the live client got every log', () => (hostPidsByNode(logs).get(node.name)?.length ?? 0) >= want.length, 20_000, () => `${hostPidsByNode(logs).get(node.name)?.length ?? 0} of ${want.length}`);
      const history = [...expected(1, from, false), ...want];
      const [replayed] = replay.watchers;
      await waitUntil('the replay got the history and the live logs', () => (hostPidsByNode(replayed).get(node.name)?.length ?? 0) >= history.length, 20_000);
      await delay(200);
      assert.deepEqual(hostPidsByNode(logs).get(node.name), want, 'live: each log once, in order, across the restart');
      assert.deepEqual(hostPidsByNode(replayed).get(node.name), history, 'replay: each log once, in order, across the restart');
      const s = await fetchStats(relay.addresses.metrics);
      const js = s.relay?.jetstream;
      assert.deepEqual(js?.thread, { running: true, restarts: 1, failed: false });
      assert.equal(js?.serving, true);
      assert.equal(js?.replays.active, 1, 'the replay goes on');
      assert.equal(s.relay?.dropped.upstream_gap, 0, 'no gap: the new thread resumed after the last event relayed');
      const run = Object.values(js?.nodes ?? {}).find((r) => r.host === node.name);
      assert.equal(run?.repeats, 0, 'nothing relayed twice');
      assert.equal(run?.events.logs, want.length);
      assert.equal(s.relay?.nodes[node.name]?.logs, want.length);
      assert.match(relay.stderr(), /relay JetStream thread failed: .*starting it again/);
      assert.ok(health.statuses.indexOf(NOT_SERVING, health.statuses.indexOf(SERVING)) > 0, `NOT_SERVING while the thread was down: ${JSON.stringify(health.statuses)}`);
      assert.equal(health.statuses[health.statuses.length - 1], SERVING);
      const text = await (await fetch(`http://${relay.addresses.metrics}/metrics`)).text();
      assert.match(text, /armorfeed_relay_jetstream_thread_restarts_total 1\b/);
    } finally {
      health.close();
      replay?.close();
      live.close();
      await relay.stop('SIGTERM');
    }
  });

  test('relay - NATS killed and restarted: health goes NOT_SERVING and back, the consumers resume, nothing is lost or repeated', { timeout: 40_000 }, async () => {
    const relay = relays[0];
    const health = watchHealth(relay.addresses.health, 'feeder.LogService');
    try {
      const [alerts, logs] = clients[0].watchers;
      const counts = new Map(nodes.map((n) => [n.name, { alerts: hostPidsByNode(alerts).get(n.name)?.length ?? 0, logs: hostPidsByNode(logs).get(n.name)?.length ?? 0 }]));
      const gapsBefore = (await fetchStats(relay.addresses.metrics)).relay?.dropped.upstream_gap;
      const from = nodes.map((n) => n.next);
      await nats.kill();
      await waitUntil('NOT_SERVING while NATS is gone', () => health.statuses.includes(NOT_SERVING), 10_000);
      // The nodes' exports hold these until NATS is back.
      await Promise.all(nodes.map((n) => produce(n, 300)));
      await nats.restart();
      await waitUntil('SERVING again', () => health.statuses[health.statuses.length - 1] === SERVING, 15_000);
      for (const [i, n] of nodes.entries()) {
        const c = counts.get(n.name) ?? { alerts: 0, logs: 0 };
        await waitUntil(`${n.name}'s events after the restart`, () => (hostPidsByNode(logs).get(n.name)?.length ?? 0) >= c.logs + 200 && (hostPidsByNode(alerts).get(n.name)?.length ?? 0) >= c.alerts + 100, 20_000, async () => JSON.stringify({
          got: { alerts: (hostPidsByNode(alerts).get(n.name)?.length ?? 0) - c.alerts, logs: (hostPidsByNode(logs).get(n.name)?.length ?? 0) - c.logs },
          node: (await fetchStats(n.proc.addresses.metrics)).export,
          relay: (await fetchStats(relay.addresses.metrics)).relay?.jetstream,
        }));
        assert.deepEqual(hostPidsByNode(alerts).get(n.name)?.slice(c.alerts), expected(from[i], n.next, true), `${n.name}'s alerts across the restart`);
        assert.deepEqual(hostPidsByNode(logs).get(n.name)?.slice(c.logs), expected(from[i], n.next, false), `${n.name}'s logs across the restart`);
      }
      assert.equal((await fetchStats(relay.addresses.metrics)).relay?.dropped.upstream_gap, gapsBefore, 'no new gap');
    } finally {
      health.close();
    }
  });
});

describe('relay - JetStream mode without NATS, and the command line', () => {
  test('relay - health is NOT_SERVING while the relay cannot reach NATS', { timeout: 20_000 }, async () => {
    const [port] = await freePorts(1);
    const relay = await startRelay(`nats://127.0.0.1:${port}`);
    try {
      // The health port's thread picks the status up within one beat.
      await waitUntil('NOT_SERVING', async () => (await healthV1(relay.addresses.health, 'feeder.LogService')) === NOT_SERVING, 2000);
      assert.equal(await healthV1(relay.addresses.health, ''), NOT_SERVING);
      await delay(1500);
      assert.equal(await healthV1(relay.addresses.health, 'feeder.LogService'), NOT_SERVING, 'still NOT_SERVING while NATS is not there');
      const s = await fetchStats(relay.addresses.metrics);
      assert.equal(s.relay?.mode, 'jetstream');
      assert.equal(s.relay?.jetstream?.serving, false);
    } finally {
      await relay.stop('SIGTERM');
    }
  });

  const run = (cmd: string, args: string[]): { status: number | null; stderr: string } => {
    const r = spawnSync(process.execPath, [armorfeedMain, cmd, ...args], { encoding: 'utf8', timeout: 20_000 });
    return { status: r.status, stderr: r.stderr };
  };

  test('relay - --from and --feeders together, a bad --from or --subjects, and a bad log --since exit 2 with a coded error', () => {
    const base = ['--gRPC', '0', '--metricsPort', '-1', '--gRPCHealthPort', '-1'];
    const both = run('relay', [...base, '--from', 'nats://127.0.0.1:4222', '--feeders', '127.0.0.1:32767']);
    assert.equal(both.status, 2, both.stderr);
    assert.match(both.stderr, /ERR_CONFIG_INVALID: from: --from \(JetStream\) and --feeders .* are exclusive/);
    const url = run('relay', [...base, '--from', 'http://127.0.0.1:4222']);
    assert.equal(url.status, 2, url.stderr);
    assert.match(url.stderr, /ERR_CONFIG_INVALID: from: "http:\/\/127.0.0.1:4222": the scheme must be nats:\/\/ or tls:\/\//);
    const subjects = run('relay', [...base, '--from', 'nats://127.0.0.1:4222', '--subjects', 'kubearmor.>.x']);
    assert.equal(subjects.status, 2, subjects.stderr);
    assert.match(subjects.stderr, /ERR_CONFIG_INVALID: subjects: "kubearmor.>.x" is not a NATS subject filter/);
    const loop = run('relay', [...base, '--from', 'nats://127.0.0.1:4222', '--export', 'nats://127.0.0.1:4222']);
    assert.equal(loop.status, 2, loop.stderr);
    assert.match(loop.stderr, /ERR_CONFIG_INVALID: export: cannot be used with --from/);
    const since = run('log', ['--gRPC', '127.0.0.1:1', '--since', 'last tuesday']);
    assert.equal(since.status, 2, since.stderr);
    assert.match(since.stderr, /ERR_CONFIG_INVALID: --since: "last tuesday" is neither a duration/);
  });
});
