import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { Packr, unpack } from 'msgpackr';
import { buildEvent, kindOfSeq, LoadFrames } from '../src/load/events';
import { LatencyRecorder, percentileCurveX } from '../src/load/latency';
import { makeEventPeeker } from '../src/load/peek';
import { SequenceTracker } from '../src/load/sequence';
import { feederTypes } from '../src/wire/proto';
import { formatUpdatedTime, parseUpdatedTime } from '../src/wire/time';

test('load sequence - missing events are reported by number, as ranges of the client\'s own kinds', () => {
  const t = new SequenceTracker();
  for (let seq = 1; seq <= 100; seq++) if (seq < 20 || seq > 30 || seq === 25) t.add(seq);
  // Only alerts (every 5th) are expected by this client: 20 and 30 are missing, 25 arrived.
  const alertsOnly = (seq: number): boolean => kindOfSeq(seq, 5) === 'alert';
  const r = t.missing(1, 100, alertsOnly, [1, 51]);
  assert.equal(r.missing, 2);
  assert.deepEqual(r.ranges, [[20, 20], [30, 30]]);
  assert.deepEqual(r.bySecond, [2, 0]);
  const all = t.missing(1, 100, () => true, [1]);
  assert.equal(all.missing, 10);
  assert.deepEqual(all.ranges, [[20, 24], [26, 30]]);
});

test('load sequence - duplicates and reordering are counted, not mistaken for new events', () => {
  const t = new SequenceTracker();
  for (const seq of [1, 2, 5, 3, 5, 70000]) t.add(seq);
  assert.equal(t.distinct, 5);
  assert.equal(t.duplicates, 1);
  assert.equal(t.outOfOrder, 1);
  assert.equal(t.has(70000), true);
  assert.equal(t.has(4), false);
});

test('load peek - reads the sequence number and UpdatedTime from protobuf Alert and Log bytes', () => {
  const { Alert, Log } = feederTypes();
  const micros = 1_760_000_000_123_456;
  const updated = formatUpdatedTime(micros);
  const alertBytes = Buffer.from(Alert.encode(Alert.fromObject({ UpdatedTime: updated, HostPID: 4242, Data: 'seq=4242', ATags: ['a'], ExecEvent: {} })).finish());
  const a = makeEventPeeker('alert')(alertBytes);
  assert.equal(a.seq, 4242);
  assert.equal(a.updatedMicros, micros);
  assert.equal(a.bytes, alertBytes.length);
  // Without HostPID, the EventData map entry Seq is used.
  const logBytes = Buffer.from(Log.encode(Log.fromObject({ UpdatedTime: updated, EventData: { Seq: '77', Syscall: 'SYS_OPENAT' } })).finish());
  const l = makeEventPeeker('log')(logBytes);
  assert.equal(l.seq, 77);
  assert.equal(l.updatedMicros, parseUpdatedTime(updated));
  // In place, inside a larger buffer (a gRPC chunk), and across a change of second.
  const peekAlert = makeEventPeeker('alert');
  const later = Buffer.from(Alert.encode(Alert.fromObject({ UpdatedTime: formatUpdatedTime(micros + 1_000_001), HostPID: 4243 })).finish());
  const chunk = Buffer.concat([Buffer.from([1, 2, 3]), alertBytes, later]);
  assert.deepEqual(peekAlert(chunk, 3, 3 + alertBytes.length), { seq: 4242, updatedMicros: micros, bytes: alertBytes.length });
  assert.deepEqual(peekAlert(chunk, 3 + alertBytes.length, chunk.length), { seq: 4243, updatedMicros: micros + 1_000_001, bytes: later.length });
  // The walk stops once it has both: bytes past HostPID are not read (here, a wire
  // type protobuf does not have, which a full walk rejects).
  const tailed = Buffer.concat([alertBytes, Buffer.from([(15 << 3) | 7])]);
  assert.equal(makeEventPeeker('alert')(tailed).seq, 4242);
  assert.throws(() => makeEventPeeker('alert')(Buffer.concat([Buffer.from(Alert.encode(Alert.fromObject({ UpdatedTime: updated })).finish()), Buffer.from([(15 << 3) | 7])])), /wire type 7/);
  // Fields out of field order (HostPID first) are still both read.
  const reordered = Buffer.concat([Buffer.from(Alert.encode(Alert.fromObject({ HostPID: 9 })).finish()), Buffer.from(Alert.encode(Alert.fromObject({ UpdatedTime: updated })).finish())]);
  assert.deepEqual(makeEventPeeker('alert')(reordered), { seq: 9, updatedMicros: micros, bytes: reordered.length });
  // A time in another layout still parses (the slow path).
  const odd = Buffer.from(Log.encode(Log.fromObject({ UpdatedTime: '2025-10-09T08:53:20.5Z', HostPID: 1 })).finish());
  assert.equal(makeEventPeeker('log')(odd).updatedMicros, parseUpdatedTime('2025-10-09T08:53:20.5Z'));
});

test('load events - alerts and logs have the realistic sizes of the feeder\'s output', () => {
  const { Alert, Log } = feederTypes();
  for (let seq = 1; seq <= 30; seq++) {
    const ev = buildEvent(seq, kindOfSeq(seq, 5), 1_760_000_000_000_000);
    // Encode the way the broker will: the ingest keys mapped to the proto fields that matter for size.
    const common = {
      Timestamp: ev.timestamp, UpdatedTime: ev.updatedTime, ClusterName: ev.clusterName, HostName: ev.hostName,
      NamespaceName: ev.namespaceName, PodName: ev.podName, Labels: ev.labels, ContainerID: ev.containerID,
      ContainerName: ev.containerName, ContainerImage: ev.containerImage, HostPPID: ev.hostPPid, HostPID: ev.hostPid,
      PPID: ev.ppid, PID: ev.pid, UID: ev.uid, ParentProcessName: ev.parentProcessName, ProcessName: ev.processName,
      Type: ev.type, Source: ev.source, Operation: ev.operation, Resource: ev.resource, Data: ev.data, Result: ev.result,
      Cwd: ev.cwd, ExecEvent: {}, Owner: { Ref: ev.owner?.ref, Name: ev.owner?.name, Namespace: ev.owner?.namespace },
    };
    const size =
      ev.type === 'MatchedPolicy'
        ? Alert.encode(Alert.fromObject({ ...common, PolicyName: ev.policyName, Severity: ev.severity, Tags: ev.tags, ATags: ev.atags, Message: ev.message, Enforcer: ev.enforcer, Action: ev.action })).finish().length
        : Log.encode(Log.fromObject(common)).finish().length;
    if (ev.type === 'MatchedPolicy') assert.ok(size >= 540 && size <= 640, `alert ${seq} is ${size} bytes`);
    else assert.ok(size >= 380 && size <= 480, `log ${seq} is ${size} bytes`);
  }
});

test('load latency - the percentile curve rises with the percentile and stops where samples run out', () => {
  const r = new LatencyRecorder();
  for (let i = 1; i <= 1000; i++) r.record(i * 10);
  const s = r.summary();
  assert.equal(s.count, 1000);
  assert.ok(Math.abs(s.p50 - 5000) <= 10, `p50 ${s.p50}`);
  assert.ok(Math.abs(s.p99 - 9900) <= 10, `p99 ${s.p99}`);
  const curve = r.curve();
  assert.equal(curve.length, percentileCurveX.length);
  const defined = curve.filter((v): v is number => v !== null);
  assert.ok(defined.length > 30 && defined.length < curve.length);
  for (let i = 1; i < defined.length; i++) assert.ok(defined[i] >= defined[i - 1]);
});

test('load frames - pre-encoded frames decode to buildEvent\'s events, with the sequence number in hostPid and data', () => {
  const frames = new LoadFrames((v) => new Packr({ useRecords: false }).pack(v));
  const now = 1_760_000_000_123_456;
  for (const seq of [1, 2, 3, 5, 10, 29, 30, 65_537, 1_234_567]) {
    const kind = kindOfSeq(seq, 5);
    const bytes = frames.frame(seq, kind, now + seq);
    assert.equal(bytes.length, frames.size(seq, kind));
    const got = unpack(Buffer.from(bytes)) as Record<string, unknown>;
    const want = buildEvent(seq, kind, now + seq) as Record<string, unknown>;
    want.data = String(want.data).replace(/seq=\d+$/, `seq=${String(seq).padStart(10, '0')}`);
    assert.deepEqual(got, want, `seq ${seq}`);
  }
});
