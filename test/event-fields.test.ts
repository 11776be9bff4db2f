/**
 * How an ingest event becomes a pb.Alert / pb.Log on the wire (kubearmor-wire.md 2.5,
 * 1.4, 6): Owner only when set, ExecEvent always (field 36 / 27, length 0 when empty),
 * Severity "0" never, ATags from Tags, EventData from Data (and Resource for Network),
 * Resource made valid UTF-8, upstream's timestamps, the NetworkFirewall rewrite,
 * cluster/host defaults and proto3 zero values. Field presence is checked on the raw
 * bytes with the tests' own protobuf wire walker (helpers/wire.ts), not with the code under test.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { isUtf8 } from 'node:buffer';
import { Packr } from 'msgpackr';
import type { Feeder } from '../src/feeder';
import type { IngestEvent } from '../src/event';
import type { Watcher } from './helpers/client';
import { startWatched, type WatchedFeeder } from './helpers/feeder';
import { sendAndEnd } from './helpers/tcp';
import { until } from './helpers/wait';
import { fieldsOf, walk } from './helpers/wire';

const CLUSTER = 'fields-cluster';
const HOST = 'fields-host';

let watched: WatchedFeeder;
let feeder: Feeder;
let alerts: Watcher;
let logs: Watcher;

before(async () => {
  watched = await startWatched(
    { alertThrottling: false, cluster: CLUSTER, host: HOST, machineIDPath: '/nonexistent/armorfeed-test/machine-id' },
    [['WatchAlerts', 'all'], ['WatchLogs', 'all']],
    'both streams to register',
  );
  ({ feeder, watchers: [alerts, logs] } = watched);
});

after(async () => {
  await watched?.close();
});

interface Received {
  msg: Record<string, unknown>;
  raw: Buffer;
}

/** Pushes events and returns what arrives for them, in order, on `w`. */
async function send(w: Watcher, ...events: IngestEvent[]): Promise<Received[]> {
  const n = w.messages.length;
  for (const e of events) feeder.push(e);
  await w.waitFor(n + events.length, 5000);
  return w.messages.slice(n).map((msg, i) => ({ msg, raw: w.raw[n + i] }));
}

const alert = (extra: IngestEvent = {}): IngestEvent => ({
  type: 'MatchedPolicy',
  operation: 'File',
  source: '/bin/cat',
  resource: '/etc/shadow',
  policyName: 'fields-policy',
  action: 'Block',
  enforcer: 'BPFLSM',
  ...extra,
});
const log = (extra: IngestEvent = {}): IngestEvent => ({ type: 'ContainerLog', operation: 'Process', source: '/bin/sh', resource: '/bin/ls', ...extra });

// Field numbers from kubearmor-wire.md 1.2.
const ALERT = { PPID: 10, PID: 11, UID: 12, HostPID: 9, Severity: 14, ATags: 30, Owner: 31, ExecEvent: 36, EventData: 43, HostPPID: 27 };
const LOG = { PPID: 10, PID: 11, UID: 12, HostPID: 9, Owner: 24, ExecEvent: 27, EventData: 33, HostPPID: 22 };

test('event fields - Owner only when at least one part is set', { timeout: 10_000 }, async () => {
  const got = await send(
    alerts,
    alert({ resource: '/o/none' }),
    alert({ resource: '/o/empty', owner: { ref: '', name: '', namespace: '' } }),
    alert({ resource: '/o/name', owner: { name: 'web' } }),
    alert({ resource: '/o/all', owner: { ref: 'Deployment', name: 'web', namespace: 'prod' } }),
  );
  assert.equal(got[0].msg.Owner, undefined);
  assert.equal(fieldsOf(got[0].raw, ALERT.Owner).length, 0);
  assert.equal(got[1].msg.Owner, undefined);
  assert.equal(fieldsOf(got[1].raw, ALERT.Owner).length, 0, 'an all-empty owner is not sent');
  assert.deepEqual(got[2].msg.Owner, { Name: 'web' });
  assert.equal(fieldsOf(got[2].raw, ALERT.Owner).length, 1);
  assert.deepEqual(got[3].msg.Owner, { Ref: 'Deployment', Name: 'web', Namespace: 'prod' });

  const lg = await send(logs, log({ owner: {} }), log({ owner: { namespace: 'prod' } }));
  assert.equal(fieldsOf(lg[0].raw, LOG.Owner).length, 0);
  assert.equal(lg[0].msg.Owner, undefined);
  assert.equal(fieldsOf(lg[1].raw, LOG.Owner).length, 1, 'Log carries Owner as field 24');
  assert.deepEqual(lg[1].msg.Owner, { Namespace: 'prod' });
});

test('event fields - ExecEvent is always on the wire, empty (length 0) when the event has none', { timeout: 10_000 }, async () => {
  const [none, empty, full] = await send(
    alerts,
    alert(),
    alert({ execEvent: { ExecID: '', ExecutableName: '' } }),
    alert({ execEvent: { ExecID: '9001', ExecutableName: '/usr/bin/curl' } }),
  );
  for (const [name, r] of [['no execEvent', none], ['empty execEvent', empty]] as const) {
    const f = fieldsOf(r.raw, ALERT.ExecEvent);
    assert.equal(f.length, 1, `${name}: Alert field 36 present once`);
    assert.equal(f[0].wireType, 2);
    assert.equal(f[0].bytes?.length, 0, `${name}: Alert field 36 has length 0`);
    assert.deepEqual(r.msg.ExecEvent, {});
  }
  assert.deepEqual(full.msg.ExecEvent, { ExecID: '9001', ExecutableName: '/usr/bin/curl' });
  assert.equal(fieldsOf(full.raw, ALERT.ExecEvent).length, 1);

  const [logNone, logFull] = await send(logs, log(), log({ execEvent: { ExecutableName: '/bin/ls' } }));
  const f = fieldsOf(logNone.raw, LOG.ExecEvent);
  assert.equal(f.length, 1, 'Log field 27 present once');
  assert.equal(f[0].wireType, 2);
  assert.equal(f[0].bytes?.length, 0, 'Log field 27 has length 0');
  assert.equal(fieldsOf(logNone.raw, 36).length, 0, 'a Log has no field 36');
  assert.deepEqual(logFull.msg.ExecEvent, { ExecutableName: '/bin/ls' });
});

test('event fields - Severity "0" is never sent, "5" is', { timeout: 10_000 }, async () => {
  const [zero, five, empty] = await send(alerts, alert({ severity: '0' }), alert({ severity: '5' }), alert({ severity: '' }));
  assert.equal(zero.msg.Severity, undefined);
  assert.equal(fieldsOf(zero.raw, ALERT.Severity).length, 0);
  assert.equal(five.msg.Severity, '5');
  assert.deepEqual(fieldsOf(five.raw, ALERT.Severity).map((f) => f.bytes?.toString()), ['5']);
  assert.equal(fieldsOf(empty.raw, ALERT.Severity).length, 0);
});

test('event fields - ATags is Tags split on ","', { timeout: 10_000 }, async () => {
  const [three, one, holes, none] = await send(
    alerts,
    alert({ tags: 'NIST,CIS,MITRE' }),
    alert({ tags: 'PCI_DSS' }),
    alert({ tags: 'a,,b' }),
    alert({ tags: '' }),
  );
  assert.equal(three.msg.Tags, 'NIST,CIS,MITRE');
  assert.deepEqual(three.msg.ATags, ['NIST', 'CIS', 'MITRE']);
  assert.deepEqual(fieldsOf(three.raw, ALERT.ATags).map((f) => f.bytes?.toString()), ['NIST', 'CIS', 'MITRE']);
  assert.deepEqual(one.msg.ATags, ['PCI_DSS']);
  // Go's strings.Split keeps empty elements.
  assert.deepEqual(fieldsOf(holes.raw, ALERT.ATags).map((f) => f.bytes?.toString()), ['a', '', 'b']);
  assert.equal(none.msg.Tags, undefined);
  assert.equal(fieldsOf(none.raw, ALERT.ATags).length, 0);
});

test('event fields - EventData derived from Data, merged with Resource for Network, explicit used as given', { timeout: 10_000 }, async () => {
  const [fromData, network, fileOp, noPairs, explicit, explicitEmpty] = await send(
    alerts,
    alert({ data: 'syscall=SYS_OPENAT fd=-100' }),
    alert({ operation: 'Network', data: 'syscall=SYS_CONNECT fd=3', resource: 'remoteip=10.0.0.1 port=80 protocol=TCP fd=7' }),
    alert({ operation: 'File', data: 'syscall=SYS_OPENAT', resource: 'fd=7 flags=O_RDONLY' }),
    alert({ data: 'no pairs here', resource: '/x' }),
    alert({ data: 'syscall=SYS_OPENAT fd=-100', eventData: { custom: 'value', Syscall: 'given' } }),
    alert({ data: 'syscall=SYS_OPENAT fd=-100', eventData: {} }),
  );
  assert.deepEqual(fromData.msg.EventData, { Syscall: 'SYS_OPENAT', Fd: '-100' });
  assert.equal(fromData.msg.Data, 'syscall=SYS_OPENAT fd=-100');
  assert.equal(fieldsOf(fromData.raw, ALERT.EventData).length, 2, 'one map entry per pair');
  assert.deepEqual(network.msg.EventData, { Syscall: 'SYS_CONNECT', Fd: '7', Remoteip: '10.0.0.1', Port: '80', Protocol: 'TCP' }, 'Resource overrides Data');
  assert.deepEqual(fileOp.msg.EventData, { Syscall: 'SYS_OPENAT' }, 'Resource pairs only for Operation Network');
  assert.equal(noPairs.msg.EventData, undefined);
  assert.equal(fieldsOf(noPairs.raw, ALERT.EventData).length, 0);
  assert.deepEqual(explicit.msg.EventData, { custom: 'value', Syscall: 'given' });
  assert.equal(explicitEmpty.msg.EventData, undefined, 'an explicit empty map sends none');
  assert.equal(fieldsOf(explicitEmpty.raw, ALERT.EventData).length, 0);

  const [logDerived] = await send(logs, log({ operation: 'Network', data: 'syscall=SYS_ACCEPT', resource: 'remoteip=10.1.1.1 port=443' }));
  assert.deepEqual(logDerived.msg.EventData, { Syscall: 'SYS_ACCEPT', Remoteip: '10.1.1.1', Port: '443' });
  assert.equal(fieldsOf(logDerived.raw, LOG.EventData).length, 3, 'Log carries EventData as field 33');
});

test('event fields - Resource with a lone surrogate arrives without it', { timeout: 10_000 }, async () => {
  const [high, low, pair] = await send(
    alerts,
    alert({ resource: '/tmp/a\uD800b' }),
    alert({ resource: '/tmp/c\uDC00d' }),
    alert({ resource: '/tmp/\u{1F600}e' }),
  );
  assert.equal(high.msg.Resource, '/tmp/ab');
  assert.equal(low.msg.Resource, '/tmp/cd');
  assert.equal(pair.msg.Resource, '/tmp/\u{1F600}e', 'a valid surrogate pair is kept');
  assert.deepEqual(fieldsOf(high.raw, 20).map((f) => f.bytes?.toString('hex')), [Buffer.from('/tmp/ab').toString('hex')]);
  const [lg] = await send(logs, log({ resource: '/var/x\uD83Dy' }));
  assert.equal(lg.msg.Resource, '/var/xy');
});

/** Alert fields that are sub-messages (Owner, ExecEvent, EventData entries); every other length-delimited Alert field is a string. */
const ALERT_SUBMESSAGES = new Set([ALERT.Owner, ALERT.ExecEvent, ALERT.EventData]);

/** Paths of length-delimited string fields whose bytes are not valid UTF-8 (Go's proto3 decoder rejects such messages). */
function invalidUtf8Fields(raw: Buffer): string[] {
  const bad: string[] = [];
  for (const f of walk(raw)) {
    if (f.wireType !== 2 || f.bytes === undefined) continue;
    if (ALERT_SUBMESSAGES.has(f.field)) {
      for (const inner of walk(f.bytes)) if (inner.bytes !== undefined && !isUtf8(inner.bytes)) bad.push(`${f.field}.${inner.field}=${inner.bytes.toString('hex')}`);
    } else if (!isUtf8(f.bytes)) bad.push(`${f.field}=${f.bytes.toString('hex')}`);
  }
  return bad;
}

test('event fields - invalid UTF-8 from a msgpack source: Resource is repaired, any other string rejects the event', { timeout: 15_000 }, async () => {
  const tcp = await startWatched({ source: ['tcp'], tcp: '127.0.0.1:0', alertThrottling: false }, [['WatchAlerts', 'all']], 'the alert stream to register');
  const { feeder: tcpFeeder, watchers: [w] } = tcp;
  try {
    // A producer (e.g. one in Go copying kernel bytes) may put invalid UTF-8 in msgpack strings:
    // encode placeholders, then turn each 'Q' into the byte 0xFF.
    const frameOf = (event: Record<string, unknown>): Buffer => {
      const payload = Buffer.from(new Packr({ useRecords: false }).pack(event));
      for (let i = 0; i < payload.length; i++) if (payload[i] === 0x51) payload[i] = 0xff;
      const frame = Buffer.alloc(4 + payload.length);
      frame.writeUInt32BE(payload.length, 0);
      payload.copy(frame, 4);
      return frame;
    };
    const badElsewhere = frameOf({ type: 'MatchedPolicy', operation: 'File', source: '/bin/caQ', resource: '/tmp/aQb', policyName: 'pQq' });
    const badResourceOnly = frameOf({
      type: 'MatchedPolicy',
      operation: 'File',
      source: '/bin/cat',
      resource: '/tmp/aQb',
      policyName: 'p',
      data: 'syscall=SYS_OPENAT path=/v',
      owner: { name: 'wb' },
    });
    const address = tcpFeeder.addresses.sources.tcp ?? '';
    assert.ok(/^(.*):(\d+)$/.test(address), `tcp source address ${tcpFeeder.addresses.sources.tcp}`);
    await sendAndEnd(address, Buffer.concat([badElsewhere, badResourceOnly]));
    await w.waitFor(1, 5000);
    await until('the rejection to be counted', () => (tcpFeeder.stats().ingest.tcp?.malformedByReason.invalid_utf8 ?? 0) === 1);
    assert.equal(w.messages.length, 1, 'only the event whose sole invalid string is Resource arrives');
    assert.equal(w.messages[0].Resource, '/tmp/ab', 'invalid bytes are deleted from Resource');
    assert.deepEqual(invalidUtf8Fields(w.raw[0]), [], `Alert ${w.raw[0].toString('hex')}`);
    assert.equal(tcpFeeder.stats().ingest.tcp?.dropped.malformed_input, 1);
  } finally {
    await tcp.close();
  }
});

const UPDATED_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/;

test('event fields - Timestamp is Unix seconds and UpdatedTime has 6 fractional digits', { timeout: 10_000 }, async () => {
  const lo = Math.floor(Date.now() / 1000);
  const [a] = await send(alerts, alert());
  const [l] = await send(logs, log());
  const hi = Math.ceil(Date.now() / 1000);
  for (const [name, m] of [['alert', a.msg], ['log', l.msg]] as const) {
    const ts = m.Timestamp as number;
    assert.equal(typeof ts, 'number', `${name} Timestamp`);
    assert.ok(ts >= lo && ts <= hi, `${name} Timestamp ${ts} not within [${lo}, ${hi}] (Unix seconds)`);
    assert.match(String(m.UpdatedTime), UPDATED_TIME, `${name} UpdatedTime`);
    // Both are taken together: UpdatedTime's second is Timestamp.
    assert.equal(Math.floor(Date.parse(String(m.UpdatedTime)) / 1000), ts, `${name}: ${m.UpdatedTime} vs ${ts}`);
  }
  const [given] = await send(alerts, alert({ timestamp: 1692813948, updatedTime: '2023-08-23T18:05:48.301798Z' }));
  assert.equal(given.msg.Timestamp, 1692813948);
  assert.equal(given.msg.UpdatedTime, '2023-08-23T18:05:48.301798Z');
  const [givenLog] = await send(logs, log({ timestamp: 1692813949, updatedTime: '2023-08-23T18:05:49.000001Z' }));
  assert.equal(givenLog.msg.Timestamp, 1692813949);
  assert.equal(givenLog.msg.UpdatedTime, '2023-08-23T18:05:49.000001Z');
});

test('event fields - a NetworkFirewall alert arrives as MatchedNetworkPolicy from NetworkPolicyEnforcer', { timeout: 10_000 }, async () => {
  const [fw, plain] = await send(
    alerts,
    alert({ operation: 'NetworkFirewall', enforcer: 'eBPF Monitor', resource: 'EGRESS' }),
    alert({ operation: 'Network', enforcer: 'eBPF Monitor', resource: 'remoteip=1.2.3.4' }),
  );
  assert.equal(fw.msg.Type, 'MatchedNetworkPolicy');
  assert.equal(fw.msg.Enforcer, 'NetworkPolicyEnforcer');
  assert.equal(fw.msg.Operation, 'NetworkFirewall');
  assert.equal(plain.msg.Type, 'MatchedPolicy', 'only NetworkFirewall is rewritten');
  assert.equal(plain.msg.Enforcer, 'eBPF Monitor');
});

test('event fields - ClusterName and HostName default from config cluster/host', { timeout: 10_000 }, async () => {
  const [a] = await send(alerts, alert());
  const [l] = await send(logs, log());
  for (const m of [a.msg, l.msg]) {
    assert.equal(m.ClusterName, CLUSTER);
    assert.equal(m.HostName, HOST);
    // No machine-id file: NodeID falls back to the host name, as upstream.
    assert.equal(m.NodeID, HOST);
  }
});

test('event fields - zero-valued ints are not on the wire', { timeout: 10_000 }, async () => {
  const [zeros, set] = await send(
    alerts,
    alert({ hostPid: 0, hostPPid: 0, pid: 0, ppid: 0, uid: 0 }),
    alert({ hostPid: 4000, hostPPid: 3999, pid: 12, ppid: 7, uid: -1 }),
  );
  for (const n of [ALERT.PPID, ALERT.PID, ALERT.UID, ALERT.HostPID, ALERT.HostPPID]) {
    assert.equal(fieldsOf(zeros.raw, n).length, 0, `Alert field ${n} with value 0 must not be on the wire`);
  }
  assert.deepEqual(fieldsOf(set.raw, ALERT.PPID).map((f) => f.varint), [7n]);
  assert.deepEqual(fieldsOf(set.raw, ALERT.HostPID).map((f) => f.varint), [4000n]);
  assert.deepEqual(fieldsOf(set.raw, ALERT.HostPPID).map((f) => f.varint), [3999n]);
  // int32 -1 is a 10-byte varint (sign-extended), as Go writes it.
  assert.deepEqual(fieldsOf(set.raw, ALERT.UID).map((f) => f.varint), [0xffffffffffffffffn]);
  assert.equal(set.msg.UID, -1);

  const [logZeros, logSet] = await send(logs, log({ ppid: 0, pid: 0, uid: 0 }), log({ ppid: 5, hostPPid: 6 }));
  assert.equal(fieldsOf(logZeros.raw, LOG.PPID).length, 0, 'Log field 10 (PPID) absent when 0');
  assert.equal(fieldsOf(logZeros.raw, LOG.UID).length, 0);
  assert.deepEqual(fieldsOf(logSet.raw, LOG.PPID).map((f) => f.varint), [5n]);
  assert.deepEqual(fieldsOf(logSet.raw, LOG.HostPPID).map((f) => f.varint), [6n], 'Log HostPPID is field 22');
});
