/**
 * WatchMessages carries the feeder's own log lines as upstream's pb.Message
 * (kubearmor-wire.md 2.7): Type "Message", a Level, ClusterName = config cluster,
 * HostName = config host, Timestamp/UpdatedTime taken together. And a malformed push()
 * (too deep, even cyclic, included) is refused with a coded InputError, counted as
 * malformed_input with its reason, and leaves a concurrent stream untouched.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Feeder } from '../src/feeder';
import { InputError } from '../src/errors';
import type { IngestEvent } from '../src/event';
import { connect, type TestClient } from './helpers/client';
import { openCount as openOn, startFeeder } from './helpers/feeder';
import { delay, until } from './helpers/wait';

const CLUSTER = 'msg-cluster';
const HOST = 'msg-host';

let feeder: Feeder;

const openCount = (stream: string): number => openOn(feeder, stream);

before(async () => {
  feeder = await startFeeder({ alertThrottling: false, cluster: CLUSTER, host: HOST });
});

after(async () => {
  await feeder.close();
});

const UPDATED_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/;

test('messages - WatchMessages gets an INFO "Added a new client" Message when a WatchAlerts stream opens', { timeout: 15_000 }, async () => {
  const tc: TestClient = connect(feeder.addresses.grpc);
  const messages = tc.watch('WatchMessages', '');
  try {
    await until('the messages stream to register', () => openCount('messages') === 1);
    const lo = Math.floor(Date.now() / 1000);
    const alerts = tc.watch('WatchAlerts', 'all');
    await until('the alert stream to register', () => openCount('alerts') === 1);
    const id = feeder.stats().clients.find((c) => c.open && c.stream === 'alerts')?.id ?? '<none>';
    const added = (m: Record<string, unknown>): boolean => String(m.Message).startsWith(`Added a new client (${id}, all) for WatchAlerts`);
    await until('the "Added a new client" message', () => messages.messages.some(added));
    const hi = Math.ceil(Date.now() / 1000);
    const found = messages.messages.filter(added);
    assert.equal(found.length, 1);
    const m = found[0];
    assert.equal(m.Type, 'Message');
    assert.equal(m.Level, 'INFO');
    assert.equal(m.ClusterName, CLUSTER);
    assert.equal(m.HostName, HOST);
    const ts = m.Timestamp as number;
    assert.equal(typeof ts, 'number');
    assert.ok(ts >= lo && ts <= hi, `Timestamp ${ts} is Unix seconds within [${lo}, ${hi}]`);
    assert.match(String(m.UpdatedTime), UPDATED_TIME);
    assert.equal(Math.floor(Date.parse(String(m.UpdatedTime)) / 1000), ts, 'Timestamp and UpdatedTime are taken together');

    // And when it goes away, WatchMessages says that too.
    alerts.cancel();
    await until('the "Deleted the client" message', () => messages.messages.some((x) => String(x.Message).startsWith(`Deleted the client (${id}) for WatchAlerts`)));
    const deleted = messages.messages.filter((x) => String(x.Message).startsWith(`Deleted the client (${id}) for WatchAlerts`));
    assert.equal(deleted.length, 1);
    assert.equal(deleted[0].Level, 'INFO');
    assert.equal(deleted[0].Type, 'Message');
  } finally {
    messages.cancel();
    tc.close();
    await until('every stream to be removed', () => feeder.stats().clients.every((c) => !c.open));
  }
});

test('messages - a malformed push throws a coded InputError, is counted, and does not disturb an alert stream', { timeout: 15_000 }, async () => {
  const tc = connect(feeder.addresses.grpc);
  const alerts = tc.watch('WatchAlerts', 'all');
  try {
    await until('the alert stream to register', () => openCount('alerts') === 1);
    const before = feeder.stats();
    const beforeEmbedded = before.ingest.embedded ?? { events: 0, dropped: { malformed_input: 0, ring_full: 0 }, malformedByReason: {} };
    const bad: [unknown, string, string][] = [
      [{ type: 'MatchedPolicy', source: '/bin/cat', bogusField: 1 }, 'ERR_INPUT_UNKNOWN_FIELD', 'unknown_field'],
      [{ type: 'MatchedPolicy', source: '/bin/cat', NamespaceName: 'prod' }, 'ERR_INPUT_UNKNOWN_FIELD', 'unknown_field'],
      [{ type: 'MatchedPolicy', source: '/bin/cat', pid: 'forty-two' }, 'ERR_INPUT_WRONG_TYPE', 'wrong_type'],
      [{ type: 'NotAType', source: '/bin/cat' }, 'ERR_INPUT_UNKNOWN_TYPE', 'unknown_type'],
      [['not', 'a', 'map'], 'ERR_INPUT_NOT_A_MAP', 'not_a_map'],
    ];
    const sent: string[] = [];
    for (let i = 0; i < 20; i++) {
      const resource = `/good/${i}`;
      feeder.push({ type: 'MatchedPolicy', operation: 'File', source: '/bin/cat', resource, policyName: 'p' });
      sent.push(resource);
      if (i % 4 === 1) {
        const [value, code] = bad[(i - 1) / 4];
        assert.throws(
          () => feeder.push(value as IngestEvent),
          (err: unknown) => err instanceof InputError && err.code === code,
          `push(${JSON.stringify(value)}) must throw InputError ${code}`,
        );
      }
    }
    await alerts.waitFor(sent.length, 5000);
    assert.deepEqual(alerts.messages.map((m) => m.Resource), sent, 'every good alert, in order');

    const s = feeder.stats();
    const embedded = s.ingest.embedded;
    assert.ok(embedded !== undefined, `stats().ingest has ${Object.keys(s.ingest).join(', ')}`);
    assert.equal(embedded.dropped.malformed_input - beforeEmbedded.dropped.malformed_input, 5);
    assert.equal(embedded.events - beforeEmbedded.events, 20, 'only good events enter the ring');
    const delta = (reason: string): number => (embedded.malformedByReason[reason] ?? 0) - ((beforeEmbedded.malformedByReason as Record<string, number>)[reason] ?? 0);
    assert.deepEqual(
      { unknown_field: delta('unknown_field'), wrong_type: delta('wrong_type'), unknown_type: delta('unknown_type'), not_a_map: delta('not_a_map') },
      { unknown_field: 2, wrong_type: 1, unknown_type: 1, not_a_map: 1 },
    );
    assert.equal(s.dropped.malformed_input - before.dropped.malformed_input, 5);
    const client = s.clients.find((c) => c.open && c.stream === 'alerts');
    assert.ok(client !== undefined);
    assert.deepEqual(client.dropped, { client_queue_full: 0, throttled: 0, filtered: 0, client_closed: 0, shutdown_grace_expired: 0 });
    // The stream is still open and still delivers.
    feeder.push({ type: 'MatchedPolicy', operation: 'File', source: '/bin/cat', resource: '/good/last' });
    await alerts.waitFor(sent.length + 1, 5000);
    assert.equal(alerts.messages[sent.length].Resource, '/good/last');
    const ended = await Promise.race([alerts.ended, delay(20).then(() => undefined)]);
    assert.equal(ended, undefined, `the alert stream ended: ${JSON.stringify(ended)}`);
  } finally {
    alerts.cancel();
    tc.close();
  }
});

/** `depth` objects nested through `key`, around an empty one. */
function nestedObjects(depth: number, key: string): Record<string, unknown> {
  let v: Record<string, unknown> = {};
  for (let i = 0; i < depth; i++) v = { [key]: v };
  return v;
}

test('messages - a push nested 50,000 levels deep, or cyclic, throws InputError ERR_INPUT_TOO_DEEP (not a stack overflow), is counted too_deep, and later pushes arrive', { timeout: 15_000 }, async () => {
  const tc = connect(feeder.addresses.grpc);
  const logs = tc.watch('WatchLogs', 'all');
  try {
    await until('the log stream to register', () => openCount('logs') === 1);
    const before = feeder.stats().ingest.embedded?.malformedByReason.too_deep ?? 0;
    const cyclic: Record<string, unknown> = { type: 'ContainerLog', source: '/bin/sh' };
    cyclic.owner = cyclic;
    let deepArray: unknown = [];
    for (let i = 0; i < 50_000; i++) deepArray = [deepArray];
    const bad: [string, unknown][] = [
      ['a field nested 50,000 objects deep', { type: 'ContainerLog', source: '/bin/sh', eventData: nestedObjects(50_000, 'k') }],
      ['an array nested 50,000 deep', deepArray],
      ['an event that contains itself', cyclic],
    ];
    for (const [what, value] of bad) {
      assert.throws(
        () => feeder.push(value as IngestEvent),
        (err: unknown) => err instanceof InputError && err.code === 'ERR_INPUT_TOO_DEEP',
        `${what} must throw InputError ERR_INPUT_TOO_DEEP`,
      );
    }
    feeder.push({ type: 'ContainerLog', operation: 'File', source: '/bin/sh', resource: '/after/deep' });
    await logs.waitFor(1, 5000);
    assert.equal(logs.messages[0].Resource, '/after/deep');
    assert.equal((feeder.stats().ingest.embedded?.malformedByReason.too_deep ?? 0) - before, bad.length);
  } finally {
    logs.cancel();
    tc.close();
  }
});

test('messages - a client whose queue overflowed is warned about once per crossing, not again after it recovered', { timeout: 40_000 }, async () => {
  const f = await startFeeder({ queueSize: 8 });
  const tc: TestClient = connect(f.addresses.grpc);
  const messages = tc.watch('WatchMessages', '');
  const logs = tc.watch('WatchLogs', 'system');
  const warnings = (): string[] => messages.messages.map((m) => String(m.Message)).filter((m) => m.startsWith('client queues full'));
  try {
    await until('both streams to register', () => openOn(f) === 2);
    logs.pause();
    // Enough to overflow an 8-event queue plus what grpc-js and the sockets hold.
    for (let i = 1; i <= 20_000; i++) f.push({ type: 'ContainerLog', source: '/bin/sh', operation: 'File', resource: `/etc/f-${i}`, hostPid: i });
    await until('a queue_full warning', () => warnings().length === 1, 15_000);
    logs.resume();
    // No new drops from here on: the next two reporting ticks (10 s apart at most) stay quiet.
    const dropped = f.stats().clients.find((c) => c.stream === 'logs')?.dropped.client_queue_full ?? 0;
    assert.ok(dropped > 0);
    await delay(12_000);
    assert.equal(f.stats().clients.find((c) => c.stream === 'logs')?.dropped.client_queue_full, dropped, 'no more drops after resuming');
    assert.equal(warnings().length, 1, `warned again about a client that recovered: ${JSON.stringify(warnings())}`);
  } finally {
    messages.cancel();
    logs.cancel();
    tc.close();
    await f.close();
  }
});
