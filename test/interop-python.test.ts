/**
 * interop - an independent client stack (Python grpcio + protoc-generated messages,
 * test/interop/feeder_client.py) talks to `armorfeed serve` over 127.0.0.1 and decodes
 * what it sends: the HealthCheck echo, alerts on WatchAlerts("policy"), logs on
 * WatchLogs("system"), and grpc.health.v1 on the separate health port.
 *
 * The same client and the same assertions also run against the Go reference feeder
 * (gofeeder from ../shared/peers, found through PEERS_BIN, which .ci/run exports), so
 * a failure against armorfeed can be told apart from a fault in the client itself.
 *
 * And through `armorfeed relay`, in both modes (--feeders in front of serve and of
 * gofeeder; --from a real nats-server that serve --export fills): the same client and
 * assertions, and `armorfeed log` as a karmor user runs it (text output), unchanged.
 */
import { after, before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { IngestEvent } from '../src/event';
import { seqLog } from './helpers/events';
import { describeRun, generatePythonStubs, isObject, runFeederClient, type ClientRun, type JsonObject } from './helpers/python';
import { fetchStats, freePort, startProcess, startServe, type ServeExit } from './helpers/serve';
import { HealthStatus, healthV1 } from './helpers/health';
import { exitWithin, startLog } from './helpers/logCli';
import { NatsServer } from './helpers/nats';
import { frameOf, sendAndEnd } from './helpers/tcp';
import { waitUntil } from './helpers/wait';

const ALERTS = 30;
const LOGS = 30;
/** The Python client's own deadline; the process is killed a little after it. */
const CLIENT_TIMEOUT_S = 20;
const UPDATED_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/;
const ALERT_TYPES = new Set(['MatchedPolicy', 'MatchedHostPolicy', 'SystemEvent']);
const SERVE_ARGS = [
  'serve', '--gRPC', '0', '--gRPCHealthPort', '0', '--metricsPort', '0',
  '--source', 'synthetic', '--rate', '2000', '--count', '0', '--alert-every', '3',
];

function str(o: JsonObject, key: string): string {
  const v = o[key];
  assert.equal(typeof v, 'string', `${key} is not a string: ${JSON.stringify(v)}`);
  return v as string;
}

function int(o: JsonObject, key: string): number {
  const v = o[key];
  assert.ok(typeof v === 'number' && Number.isInteger(v), `${key} is not an integer: ${JSON.stringify(v)}`);
  return v;
}

function obj(o: JsonObject, key: string): JsonObject {
  const v = o[key];
  assert.ok(isObject(v), `${key} is not an object: ${JSON.stringify(v)}`);
  return v;
}

function strings(o: JsonObject, key: string): string[] {
  const v = o[key];
  assert.ok(Array.isArray(v) && v.every((x) => typeof x === 'string'), `${key} is not a list of strings: ${JSON.stringify(v)}`);
  return v as string[];
}

/** Runs feeder_client.py to completion (bounded) and parses its JSON lines. */
function runClient(args: string[]): Promise<ClientRun> {
  return runFeederClient(args, CLIENT_TIMEOUT_S + 10);
}

/**
 * The assertions shared by every server: the echo, the counts, and per-event wire facts
 * from kubearmor-wire.md §2 and §6 (UpdatedTime format, ExecEvent always sent, ATags =
 * Tags split on commas, PPID decoded, Log type ContainerLog, no unknown field numbers).
 */
function assertDecodedFeed(run: ClientRun, expectHealth: boolean): void {
  const why = describeRun(run);
  assert.equal(run.code, 0, `feeder_client.py failed\n${why}`);
  const byKind = (kind: string): JsonObject[] => run.lines.filter((l) => l.kind === kind);

  const summary = byKind('summary');
  assert.equal(summary.length, 1, why);
  assert.deepEqual(summary[0].errors, [], why);

  const nonce = byKind('nonce');
  assert.equal(nonce.length, 1, `no HealthCheck result\n${why}`);
  assert.ok(int(nonce[0], 'sent') > 0);
  assert.equal(int(nonce[0], 'retval'), int(nonce[0], 'sent'), 'HealthCheck must echo the nonce');

  const health = byKind('grpc_health');
  if (expectHealth) {
    assert.deepEqual(
      health.map((h) => [h.service, h.status]),
      [['feeder.LogService', 'SERVING']],
      `grpc.health.v1 Check(feeder.LogService)\n${why}`,
    );
  } else {
    assert.equal(health.length, 0);
  }

  const alerts = byKind('alert');
  const logs = byKind('log');
  assert.equal(alerts.length, ALERTS, `alerts received\n${why}`);
  assert.equal(logs.length, LOGS, `logs received\n${why}`);

  for (const [kind, events] of [['alert', alerts], ['log', logs]] as const) {
    for (const line of events) {
      const msg = obj(line, 'msg');
      const at = `${kind} #${int(line, 'index')}: ${JSON.stringify(msg)}`;
      assert.ok(line.unknown_fields === null || line.unknown_fields === 0, `${at}\nhas unknown field numbers`);
      assert.ok(int(line, 'wire_bytes') > 0, at);

      const updated = str(msg, 'UpdatedTime');
      assert.match(updated, UPDATED_TIME, at);
      const seconds = Date.parse(updated) / 1000;
      const timestamp = int(msg, 'Timestamp');
      assert.ok(Math.abs(timestamp - seconds) <= 1, `${at}\nTimestamp ${timestamp} is not Unix seconds of UpdatedTime`);

      const present = strings(line, 'present');
      assert.ok(present.includes('ExecEvent'), `${at}\nExecEvent must always be sent, even empty`);
      obj(msg, 'ExecEvent');
      assert.ok(int(msg, 'PPID') >= 0 && int(msg, 'PID') >= 0 && int(msg, 'HostPID') >= 0, at);

      const owner = msg.Owner;
      if (present.includes('Owner')) {
        assert.ok(isObject(owner) && Object.values(owner).some((v) => v !== ''), `${at}\nOwner sent with every part empty`);
      }

      if (kind === 'alert') {
        assert.ok(ALERT_TYPES.has(str(msg, 'Type')), `${at}\nunexpected alert Type`);
        const tags = str(msg, 'Tags');
        assert.deepEqual(strings(msg, 'ATags'), tags === '' ? [] : tags.split(','), `${at}\nATags must be Tags split on ','`);
        assert.notEqual(str(msg, 'Severity'), '0', `${at}\nSeverity "0" is never sent`);
      } else {
        assert.equal(str(msg, 'Type'), 'ContainerLog', at);
      }
    }
  }
  // Non-default values prove decoding, not just defaults: the synthetic sources set these.
  assert.ok(alerts.some((l) => int(obj(l, 'msg'), 'PPID') > 0), 'no alert had a non-zero PPID');
  assert.ok(logs.some((l) => int(obj(l, 'msg'), 'PPID') > 0), 'no log had a non-zero PPID');
  assert.ok(alerts.some((l) => str(obj(l, 'msg'), 'Tags').includes(',')), 'no alert had two or more Tags');
}

/**
 * `armorfeed log --gRPC ADDRESS --logFilter all --limit 10`, karmor's text output: ten
 * alerts and ten logs, each of `host`, and exit 0.
 */
async function assertLogCliReads(address: string, host: string): Promise<void> {
  const cli = startLog(['--gRPC', address, '--logFilter', 'all', '--limit', '10']);
  const exit = await exitWithin(cli, 30_000);
  const out = cli.stdout();
  const why = `exit ${exit.code}\nstderr:\n${cli.stderr().slice(-2000)}\nstdout:\n${out.slice(0, 2000)}`;
  assert.equal(exit.code, 0, why);
  assert.equal(out.match(/^== Alert \/ \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6} ==$/gm)?.length, 10, `ten alerts in karmor's form\n${why}`);
  assert.equal(out.match(/^== Log \/ \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6} ==$/gm)?.length, 10, `ten logs in karmor's form\n${why}`);
  assert.equal(out.split('\n').filter((l) => l === `HostName: ${host}`).length, 20, `each from ${host}\n${why}`);
}

describe('interop - python grpcio client decodes alerts and logs', () => {
  let genDir = '';

  before(() => {
    genDir = generatePythonStubs();
  });

  after(() => {
    if (genDir !== '') fs.rmSync(genDir, { recursive: true, force: true });
  });

  test('interop - armorfeed serve: HealthCheck, WatchAlerts, WatchLogs and grpc.health.v1 decode in Python', { timeout: 90_000 }, async () => {
    const server = await startServe(SERVE_ARGS);
    let exit: ServeExit | undefined;
    try {
      const grpcPort = server.ports.grpc;
      const healthPort = server.ports.health;
      assert.ok(grpcPort > 0, `no grpc=HOST:PORT in the listening line: ${server.readyLine}`);
      assert.ok(healthPort > 0, `no health=HOST:PORT in the listening line: ${server.readyLine}`);
      assert.notEqual(grpcPort, healthPort, 'grpc.health.v1 must be on its own port');
      const run = await runClient([
        '--addr', `127.0.0.1:${grpcPort}`, '--health-addr', `127.0.0.1:${healthPort}`,
        '--gen-dir', genDir, '--alerts', String(ALERTS), '--logs', String(LOGS), '--timeout', String(CLIENT_TIMEOUT_S),
      ]);
      assertDecodedFeed(run, true);
    } finally {
      // Runs on failure too, so no server outlives the test; only a clean run checks how it exited.
      exit = await server.stop('SIGTERM');
    }
    assert.equal(exit.killed, false, `armorfeed did not exit within 10 s of SIGTERM\n${exit.stderr.slice(-2048)}`);
  });

  test('interop - integers out of range are refused at ingest, so the Python client decodes only the valid events, its stream intact', { timeout: 90_000 }, async () => {
    const server = await startServe(['serve', '--bind', '127.0.0.1', '--gRPC', '0', '--gRPCHealthPort', '0', '--metricsPort', '0', '--source', 'tcp', '--tcp', '127.0.0.1:0']);
    let exit: ServeExit | undefined;
    try {
      const metrics = server.addresses.metrics;
      const bad: Record<string, unknown>[] = [{ timestamp: 1e20 }, { timestamp: 1e300 }, { timestamp: -1e20 }, { timestamp: 2n ** 63n }, { pid: 2 ** 40 }, { uid: 2n ** 40n }, { timestamp: Number.NaN }];
      const run = runClient(['--addr', server.addresses.grpc, '--gen-dir', genDir, '--alerts', '0', '--logs', String(bad.length + 1), '--timeout', String(CLIENT_TIMEOUT_S)]);
      await waitUntil("the Python client's WatchLogs stream", async () => (await fetchStats(metrics)).clients.some((c) => c.open && c.stream === 'logs'), 15_000);
      // Valid events 1..8 (UpdatedTime derived from Timestamp), a bad one between each two:
      // a bad one that got through would take a valid one's place, or break the stream.
      const valid = (seq: number): IngestEvent => seqLog(seq, { timestamp: 1_700_000_000 + seq, updatedTime: undefined });
      const frames = [frameOf(valid(1))];
      bad.forEach((extra, i) => frames.push(frameOf({ ...valid(100 + i), ...extra }), frameOf(valid(i + 2))));
      await sendAndEnd(server.addresses.tcp, Buffer.concat(frames));
      const result = await run;
      assert.equal(result.code, 0, describeRun(result));
      const logs = result.lines.filter((l) => l.kind === 'log').map((l) => obj(l, 'msg'));
      assert.deepEqual(logs.map((m) => int(m, 'HostPID')), Array.from({ length: bad.length + 1 }, (_, i) => i + 1), describeRun(result));
      for (const m of logs) {
        assert.equal(int(m, 'Timestamp'), 1_700_000_000 + int(m, 'HostPID'));
        assert.equal(Date.parse(str(m, 'UpdatedTime')) / 1000, int(m, 'Timestamp'), 'UpdatedTime is derived from Timestamp');
      }
      await waitUntil('every bad event counted', async () => (await fetchStats(metrics)).ingest.tcp.dropped.malformed_input === bad.length, 5_000);
      const tcp = (await fetchStats(metrics)).ingest.tcp;
      assert.deepEqual(tcp.malformedByReason, { out_of_range: 6, wrong_type: 1 });
      assert.equal(tcp.events, bad.length + 1);
    } finally {
      exit = await server.stop('SIGTERM');
    }
    assert.equal(exit.killed, false, `armorfeed did not exit within 10 s of SIGTERM\n${exit.stderr.slice(-2048)}`);
  });

  test('interop - armorfeed relay in front of armorfeed serve: the same client and assertions hold, grpc.health.v1 included, and armorfeed log reads it unchanged', { timeout: 90_000 }, async () => {
    const node = await startServe([...SERVE_ARGS, '--host', 'interop-node']);
    let relay: Awaited<ReturnType<typeof startServe>> | undefined;
    try {
      relay = await startServe(['relay', '--bind', '127.0.0.1', '--gRPC', '0', '--gRPCHealthPort', '0', '--metricsPort', '0', '--feeders', node.addresses.grpc]);
      const metrics = relay.addresses.metrics;
      await waitUntil('the relay connected to the node', async () => (await fetchStats(metrics)).relay?.upstreams[0]?.connected === true, 15_000);
      const run = await runClient([
        '--addr', relay.addresses.grpc, '--health-addr', relay.addresses.health,
        '--gen-dir', genDir, '--alerts', String(ALERTS), '--logs', String(LOGS), '--timeout', String(CLIENT_TIMEOUT_S),
      ]);
      assertDecodedFeed(run, true);
      await assertLogCliReads(relay.addresses.grpc, 'interop-node');
    } finally {
      await relay?.stop('SIGTERM');
      await node.stop('SIGTERM');
    }
  });

  test('interop - armorfeed relay --from nats:// (JetStream) in front of armorfeed serve --export: the same client and assertions hold, and armorfeed log reads it unchanged', { timeout: 90_000 }, async () => {
    const nats = await NatsServer.start();
    let node: Awaited<ReturnType<typeof startServe>> | undefined;
    let relay: Awaited<ReturnType<typeof startServe>> | undefined;
    try {
      node = await startServe([...SERVE_ARGS, '--bind', '127.0.0.1', '--host', 'interop-js-node', '--export', nats.url]);
      relay = await startServe(['relay', '--bind', '127.0.0.1', '--gRPC', '0', '--gRPCHealthPort', '0', '--metricsPort', '0', '--from', nats.url]);
      const metrics = relay.addresses.metrics;
      // SERVING once the relay consumes the stream the node's export made.
      await waitUntil('the relay consuming JetStream', async () => (await healthV1(relay?.addresses.health ?? '', 'feeder.LogService')) === HealthStatus.SERVING, 15_000);
      const run = await runClient([
        '--addr', relay.addresses.grpc, '--health-addr', relay.addresses.health,
        '--gen-dir', genDir, '--alerts', String(ALERTS), '--logs', String(LOGS), '--timeout', String(CLIENT_TIMEOUT_S),
      ]);
      assertDecodedFeed(run, true);
      await assertLogCliReads(relay.addresses.grpc, 'interop-js-node');
      const s = await fetchStats(metrics);
      assert.equal(s.relay?.mode, 'jetstream');
      assert.ok((s.relay?.nodes['interop-js-node']?.alerts ?? 0) >= ALERTS, 'the events came through JetStream from the node');
      assert.equal(s.relay?.dropped.upstream_gap, 0);
    } finally {
      await relay?.stop('SIGTERM');
      await node?.stop('SIGTERM');
      await nats.stop();
    }
  });

  const peersBin = process.env.PEERS_BIN;
  test(
    'interop - the same client and assertions hold against the Go reference feeder',
    { timeout: 60_000, skip: peersBin === undefined || peersBin === '' ? 'PEERS_BIN is not set (.ci/run sets it)' : false },
    async () => {
      const gofeeder = path.join(peersBin ?? '', 'gofeeder');
      assert.ok(fs.existsSync(gofeeder), `PEERS_BIN=${peersBin} has no gofeeder; run ../shared/peers/build.sh path`);
      const port = await freePort();
      const server = await startProcess(
        gofeeder,
        ['--addr', `127.0.0.1:${port}`, '--rate', '2000', '--count', '0', '--alert-every', '3'],
        { readyPattern: /^gofeeder: listening on / },
      );
      try {
        const common = ['--addr', `127.0.0.1:${port}`, '--gen-dir', genDir, '--timeout', String(CLIENT_TIMEOUT_S)];
        assertDecodedFeed(await runClient([...common, '--alerts', String(ALERTS), '--logs', String(LOGS)]), false);

        // Through a relay in front of it: the relay's own grpc.health.v1 answers.
        const relay = await startServe(['relay', '--bind', '127.0.0.1', '--gRPC', '0', '--gRPCHealthPort', '0', '--metricsPort', '-1', '--feeders', `127.0.0.1:${port}`]);
        try {
          // NOT_SERVING until the relay has a stream open from gofeeder.
          await waitUntil('the relay SERVING', async () => (await healthV1(relay.addresses.health, 'feeder.LogService')) === HealthStatus.SERVING, 15_000);
          assertDecodedFeed(await runClient(['--addr', relay.addresses.grpc, '--health-addr', relay.addresses.health, '--gen-dir', genDir, '--timeout', String(CLIENT_TIMEOUT_S), '--alerts', String(ALERTS), '--logs', String(LOGS)]), true);
        } finally {
          await relay.stop('SIGTERM');
        }

        // The client must be able to fail: gofeeder has no grpc.health.v1 service.
        const noHealth = await runClient([...common, '--alerts', '0', '--logs', '0', '--health-addr', `127.0.0.1:${port}`]);
        assert.equal(noHealth.code, 1, describeRun(noHealth));
        assert.match(noHealth.stderr, /grpc\.health\.v1 Check\(feeder\.LogService\): UNIMPLEMENTED/);
      } finally {
        await server.stop('SIGTERM');
      }
    },
  );
});
