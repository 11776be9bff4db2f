/**
 * relay - the cluster of issue 13, as the issue describes it: three `armorfeed serve`
 * nodes (distinct --host, socket sources), each fed by a producer at 10,000 ev/s (N
 * events each), exporting to one real `nats-server -js`; two `armorfeed relay --from` on
 * the stream; on each relay two subscribers: the Go loadclient (../shared/peers, the
 * neutral client of the benchmarks: HealthCheck, then WatchAlerts("policy") and
 * WatchLogs("system")) and a raw gRPC client of this process that keeps every message's
 * bytes.
 *
 * Every subscriber must get the union, exactly 3 x N events: loadclient counts them, the
 * raw client reads each event's HostName and HostPID (the node's own sequence number, put
 * there by the producer) and must see every node's 1..N exactly once, in order per
 * stream. Each relay's /stats must agree, per node, with what that node encoded and
 * exported (nothing dropped, nothing left in its export buffer, no upstream_gap).
 *
 * relay-jetstream.test.ts keeps the smaller two-node setup its replay, gap and NATS
 * restart tests build on; this file is the load-shaped test on its own NATS.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { findPeersBin } from '../bench/peers/children';
import { loadClientProblem, runLoadClient, type LoadClientRun } from '../bench/peers/loadclient';
import type { IngestEvent } from '../src/event';
import type { FeederStats } from '../src/feeder';
import type { NodeRunStats } from '../src/relay';
import { seqLog } from './helpers/events';
import { pacedSend, rawWatch, type RawWatcher } from './helpers/export';
import { NatsServer } from './helpers/nats';
import { repoRoot } from './helpers/repo';
import { fetchStats, startServe, type ServeProcess } from './helpers/serve';
import { delay, waitUntil } from './helpers/wait';
import { walk } from './helpers/wire';

const NODES = ['node-a', 'node-b', 'node-c'] as const;
/** Events per node: 2.1 s at 10,000 ev/s; a third of them alerts. */
const N = 21_000;
const RATE = 10_000;
const ALERTS = N / 3;
const LOGS = N - ALERTS;
/** Field numbers of Alert and Log (kubearmor.proto): HostName, HostPID. */
const FIELD_HOST_NAME = 4;
const FIELD_HOST_PID = 9;

/** Event `seq` of a node: an alert when seq % 3 === 0. HostName and the times are left to the node (its --host, ingest time). */
function clusterEvent(seq: number): IngestEvent {
  const e = seqLog(seq, seq % 3 === 0 ? { type: 'MatchedPolicy', policyName: 'block-cat', severity: '5', action: 'Block' } : {});
  delete e.hostName;
  delete e.timestamp;
  delete e.updatedTime;
  return e;
}

/** node -> HostPIDs, in arrival order, read from the raw bytes (no decoder of the code under test). */
function byNode(w: RawWatcher): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const raw of w.raw) {
    let host = '';
    let pid = 0;
    for (const f of walk(raw)) {
      if (f.field === FIELD_HOST_NAME && f.bytes !== undefined) host = f.bytes.toString('utf8');
      else if (f.field === FIELD_HOST_PID && f.varint !== undefined) pid = Number(f.varint);
    }
    const list = out.get(host) ?? [];
    list.push(pid);
    out.set(host, list);
  }
  return out;
}

function expected(alerts: boolean): number[] {
  const out: number[] = [];
  for (let s = 1; s <= N; s++) if ((s % 3 === 0) === alerts) out.push(s);
  return out;
}

/** The peers' bin directory, or why not (the test is skipped without loadclient). */
function peersBin(): { bin?: string; why: string } {
  try {
    return { bin: findPeersBin(repoRoot, undefined), why: '' };
  } catch (err) {
    return { why: `loadclient not available: ${(err as Error).message}` };
  }
}

const peers = peersBin();

describe('relay - the cluster of issue 13: three nodes at 10,000 ev/s each, one nats-server, two relays --from, a loadclient on each', { skip: peers.bin === undefined ? peers.why : false }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'relay-cluster-test-'));
  const nodes: { name: string; socket: string; proc: ServeProcess }[] = [];
  const relays: ServeProcess[] = [];
  const raw: { alerts: RawWatcher; logs: RawWatcher }[] = [];
  let nats: NatsServer;

  before(async () => {
    nats = await NatsServer.start();
    for (const name of NODES) {
      const socket = path.join(dir, `${name}.sock`);
      const proc = await startServe([
        'serve', '--bind', '127.0.0.1', '--gRPC', '0', '--gRPCHealthPort', '-1', '--metricsPort', '0', '--cluster', 'c1',
        '--host', name, '--source', 'socket', '--socket', socket, '--alertThrottling', 'false', '--encoderThreads', '1',
        '--export', nats.url,
      ]);
      nodes.push({ name, socket, proc });
    }
    for (const i of [0, 1]) {
      // A queue for the whole run: a relay held off the CPU of a busy machine gets every
      // node's backlog at once, and this test checks exact delivery, not overflow.
      relays.push(await startServe([
        'relay', '--bind', '127.0.0.1', '--gRPC', '0', '--gRPCHealthPort', '-1', '--metricsPort', '0', '--host', `relay-${i}`,
        '--from', nats.url, '--queueSize', String(3 * N),
      ]));
    }
    for (const r of relays) await waitUntil('the relay consumes the stream', async () => (await fetchStats(r.addresses.metrics, 5000)).relay?.jetstream?.serving === true, 15_000);
  });

  after(async () => {
    for (const r of raw) {
      r.alerts.close();
      r.logs.close();
    }
    await Promise.all(relays.map((r) => r.stop('SIGTERM')));
    await Promise.all(nodes.map((n) => n.proc.stop('SIGTERM')));
    await nats?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('relay - every subscriber of each relay gets exactly 3 x N events, each node\'s 1..N once and in order, and each relay\'s per-node /stats agree with what the node exported', { timeout: 150_000 }, async () => {
    const loadclients: Promise<LoadClientRun>[] = [];
    for (const r of relays) {
      raw.push({ alerts: rawWatch(r.addresses.grpc, 'WatchAlerts'), logs: rawWatch(r.addresses.grpc, 'WatchLogs') });
      // Bounded by its --duration (and killed 20 s after it); it stops at --expect.
      loadclients.push(runLoadClient(peers.bin ?? '', repoRoot, { addr: r.addresses.grpc, clients: 1, expect: 3 * N, streams: 'both', durationS: 90, idleS: 20 }));
    }
    for (const r of relays) {
      await waitUntil('four streams open on the relay (loadclient\'s two, the raw client\'s two)', async () => (await fetchStats(r.addresses.metrics, 5000)).clients.filter((c) => c.open).length === 4, 15_000);
    }

    const sent = await Promise.all(nodes.map((n) => pacedSend(n.socket, N, RATE, [], clusterEvent).done.then(() => n.name)));
    assert.deepEqual(sent, [...NODES]);

    const runs = await Promise.all(loadclients);
    for (const [i, run] of runs.entries()) {
      assert.equal(loadClientProblem(run), undefined, `loadclient on relay-${i}: ${run.stderrTail}`);
      const c = run.report?.clients[0];
      assert.ok(c !== undefined, `loadclient on relay-${i} reported no client`);
      assert.deepEqual({ received: c.received, alerts: c.alerts, logs: c.logs, missing: c.missing, stop: c.stop }, { received: 3 * N, alerts: 3 * ALERTS, logs: 3 * LOGS, missing: 0, stop: 'expect' }, `loadclient on relay-${i}`);
    }

    for (const r of raw) {
      await r.alerts.waitFor(3 * ALERTS, 30_000);
      await r.logs.waitFor(3 * LOGS, 30_000);
    }
    // Anything past the union would arrive now.
    await delay(500);
    for (const [i, r] of raw.entries()) {
      const alerts = byNode(r.alerts);
      const logs = byNode(r.logs);
      assert.deepEqual([...alerts.keys()].sort(), [...NODES], `relay-${i}: alerts of the three nodes, no other`);
      assert.deepEqual([...logs.keys()].sort(), [...NODES], `relay-${i}: logs of the three nodes, no other`);
      for (const name of NODES) {
        // deepEqual on 14,000 numbers prints them all on a failure: say where they first differ.
        for (const [kind, got, want] of [['alerts', alerts.get(name) ?? [], expected(true)], ['logs', logs.get(name) ?? [], expected(false)]] as const) {
          const at = want.findIndex((s, k) => got[k] !== s);
          assert.ok(got.length === want.length && at === -1, `relay-${i}: ${name}'s ${kind}: ${got.length} of ${want.length}, first difference at #${at}: got ${got[at]}, want ${want[at]}`);
        }
      }
      assert.equal(r.alerts.raw.length + r.logs.raw.length, 3 * N, `relay-${i}: exactly 3 x N`);
    }

    const nodeStats = new Map<string, FeederStats>();
    for (const n of nodes) {
      await waitUntil(`${n.name}'s export settled`, async () => {
        const x = (await fetchStats(n.proc.addresses.metrics, 5000)).export;
        return x !== undefined && x.buffered.events === 0 && x.inFlight === 0;
      }, 15_000);
      const s = await fetchStats(n.proc.addresses.metrics, 5000);
      nodeStats.set(n.name, s);
      assert.deepEqual({ alerts: s.encoded.alerts, logs: s.encoded.logs }, { alerts: ALERTS, logs: LOGS }, `${n.name} encoded N`);
      assert.deepEqual(s.export?.dropped, { export_buffer_full: 0, export_rejected: 0, export_timeout: 0, export_shutdown: 0 }, `${n.name}'s export dropped nothing`);
      assert.equal(s.export?.acked, s.export?.offered, `${n.name}: everything offered to the export was stored`);
    }
    for (const [i, r] of relays.entries()) {
      const s = await fetchStats(r.addresses.metrics, 5000);
      const js = s.relay?.jetstream;
      assert.ok(js !== undefined);
      for (const n of nodes) {
        const own = nodeStats.get(n.name);
        assert.ok(own !== undefined);
        // What the node encoded went, all of it, to its export (dropped nothing, acked = offered).
        assert.deepEqual({ alerts: s.relay?.nodes[n.name]?.alerts, logs: s.relay?.nodes[n.name]?.logs }, { alerts: own.encoded.alerts, logs: own.encoded.logs }, `relay-${i}'s /stats for ${n.name}`);
        const runsOf: NodeRunStats[] = Object.values(js.nodes).filter((x) => x.host === n.name);
        assert.equal(runsOf.length, 1, `relay-${i}: one run of ${n.name}`);
        const run = runsOf[0];
        // The node's own numbering (Armorfeed-Seq) ran 1..N per stream, and the relay saw every number.
        assert.deepEqual({ events: [run.events.alerts, run.events.logs], lastSeq: [run.lastSeq.alerts, run.lastSeq.logs], gaps: [run.gaps.alerts, run.gaps.logs] }, { events: [ALERTS, LOGS], lastSeq: [ALERTS, LOGS], gaps: [0, 0] }, `relay-${i}: ${n.name}'s sequence`);
      }
      assert.equal(s.relay?.dropped.upstream_gap, 0, `relay-${i}: no gap`);
      assert.equal(js.consumers[0]?.redelivered, 0);
      // loadclient has gone (it stopped at --expect); the raw client's two streams are still open.
      const open = s.clients.filter((c) => c.open).map((c) => [c.stream, c.delivered]);
      assert.deepEqual(open.sort(), [['alerts', 3 * ALERTS], ['logs', 3 * LOGS]], `relay-${i}: delivered to the raw client`);
      assert.ok(s.clients.every((c) => c.dropped.client_queue_full === 0), `relay-${i}: no client_queue_full: ${JSON.stringify(s.clients.map((c) => c.dropped))}`);
    }
  });
});
