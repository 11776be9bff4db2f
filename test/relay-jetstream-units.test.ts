/**
 * relay --from, the parts that need no server: a replay filter narrowed to one stream's
 * subjects, the replay metadata, `armorfeed log --since`, per-node sequence gaps, and the
 * event batches the JetStream thread posts to the main thread.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { parseSince } from '../src/cli/log';
import { ConfigError, ReplayError } from '../src/errors';
import { filterForKind, parseReplayRequest } from '../src/relay';
import { isSubjectFilter } from '../src/relay/jetstream';
import { kindOfSubject } from '../src/relay/natsMsg';
import { NodeSequences } from '../src/relay/sequence';
import { EventBatchBuilder, forEachSequence, MAX_BATCH_EVENTS, readEventBatch } from '../src/relay/eventBatch';
import { splitFrames } from '../src/wire/framing';
import { feederTypes } from '../src/wire/proto';

const md = (entries: Record<string, string>): grpc.Metadata => {
  const m = new grpc.Metadata();
  for (const [k, v] of Object.entries(entries)) m.set(k, v);
  return m;
};

describe('relay --from - units', () => {
  test('filterForKind - narrows a filter to one stream\'s subjects, or says it holds none', () => {
    assert.equal(filterForKind('kubearmor.>', 1, 'alerts'), 'kubearmor.*.*.alerts');
    assert.equal(filterForKind('kubearmor.c1.>', 1, 'logs'), 'kubearmor.c1.*.logs');
    assert.equal(filterForKind('kubearmor.c1.node-a.>', 1, 'messages'), 'kubearmor.c1.node-a.messages');
    assert.equal(filterForKind('kubearmor.c1.node-a.*', 1, 'logs'), 'kubearmor.c1.node-a.logs');
    assert.equal(filterForKind('kubearmor.c1.node-a.alerts', 1, 'alerts'), 'kubearmor.c1.node-a.alerts');
    assert.equal(filterForKind('kubearmor.c1.node-a.alerts', 1, 'logs'), undefined);
    assert.equal(filterForKind('a.b.>', 2, 'logs'), 'a.b.*.*.logs');
    assert.equal(filterForKind('kubearmor.c1.node-a.logs.>', 1, 'logs'), undefined);
  });

  test('isSubjectFilter and kindOfSubject', () => {
    assert.ok(isSubjectFilter('kubearmor.>'));
    assert.ok(isSubjectFilter('kubearmor.*.node-a.*'));
    assert.ok(!isSubjectFilter('kubearmor.>.x'));
    assert.ok(!isSubjectFilter('kubearmor..x'));
    assert.ok(!isSubjectFilter('kubearmor.a*'));
    assert.equal(kindOfSubject('kubearmor.c1.n.alerts'), 'alerts');
    assert.equal(kindOfSubject('kubearmor.c1.n.other'), undefined);
    // Not a kind, whatever an object's prototype has.
    for (const token of ['constructor', '__proto__', 'toString', 'hasOwnProperty']) assert.equal(kindOfSubject(`kubearmor.c1.n.${token}`), undefined, token);
  });

  test('parseReplayRequest - since (RFC 3339), after-seq, neither; refuses both and bad values', () => {
    assert.equal(parseReplayRequest(md({})), undefined);
    assert.deepEqual(parseReplayRequest(md({ 'x-armorfeed-since': '2026-01-02T03:04:05+01:00' })), { at: 'time', time: '2026-01-02T02:04:05.000Z' });
    assert.deepEqual(parseReplayRequest(md({ 'x-armorfeed-after-seq': '41' })), { at: 'seq', seq: 42 });
    const refused = (m: grpc.Metadata): void => {
      assert.throws(() => parseReplayRequest(m), (err: unknown) => err instanceof ReplayError && err.code === 'ERR_REPLAY_INVALID');
    };
    refused(md({ 'x-armorfeed-since': '2026-01-02' }));
    refused(md({ 'x-armorfeed-since': '10m' }));
    refused(md({ 'x-armorfeed-after-seq': '-1' }));
    refused(md({ 'x-armorfeed-since': '2026-01-02T03:04:05Z', 'x-armorfeed-after-seq': '1' }));
  });

  test('parseSince - a duration back from now, or an RFC 3339 time', () => {
    const now = Date.parse('2026-01-02T12:00:00Z');
    assert.equal(parseSince('10m', now), '2026-01-02T11:50:00.000Z');
    assert.equal(parseSince('1h30m', now), '2026-01-02T10:30:00.000Z');
    assert.equal(parseSince('2d', now), '2025-12-31T12:00:00.000Z');
    assert.equal(parseSince('2026-01-02T11:00:00Z', now), '2026-01-02T11:00:00.000Z');
    assert.throws(() => parseSince('soon', now), ConfigError);
    assert.throws(() => parseSince('10', now), ConfigError);
  });

  test('NodeSequences - counts holes per run and stream; a new run starts a new sequence; repeats are counted', () => {
    const seq = new NodeSequences();
    for (const n of [5, 6, 7, 10, 11]) seq.observe('node-a@1-aaaa', 'logs', n);
    assert.equal(seq.runs.get('node-a@1-aaaa')?.gaps.logs, 2);
    seq.observe('node-a@1-aaaa', 'alerts', 1);
    seq.observe('node-a@1-aaaa', 'alerts', 3);
    // The node restarted: a new id, from 1, no gap.
    for (const n of [1, 2, 3]) seq.observe('node-a@2-bbbb', 'logs', n);
    seq.observe('node-a@2-bbbb', 'logs', 3);
    seq.observe('', 'logs', 1);
    seq.observe('node-b@1-cccc', 'logs', Number(''));
    assert.equal(seq.gapsTotal, 3);
    assert.deepEqual(seq.gapsByHost.get('node-a'), { alerts: 1, logs: 2, messages: 0 });
    assert.equal(seq.runs.get('node-a@2-bbbb')?.gaps.logs, 0);
    assert.equal(seq.runs.get('node-a@2-bbbb')?.repeats, 1);
    assert.equal(seq.unsequenced, 2);
  });

  test('event batches - grouped per node and kind in arrival order, framed, with attrs and the sequence entries in arrival order', () => {
    const t = feederTypes();
    const log = (host: string, pid: number, ns = 'default'): Buffer => Buffer.from(t.Log.encode({ HostName: host, NamespaceName: ns, Operation: 'Process', Type: 'HostLog', PID: pid }).finish());
    const alert = (host: string, pid: number): Buffer => Buffer.from(t.Alert.encode({ HostName: host, NamespaceName: 'kube-system', Operation: 'File', Type: 'MatchedPolicy', HostPID: pid }).finish());
    let wanted = true;
    const builder = new EventBatchBuilder(() => wanted);
    const arrivals: [('alerts' | 'logs' | 'messages'), Buffer][] = [
      ['logs', log('node-a', 1)], ['alerts', alert('node-b', 2)], ['logs', log('node-b', 3, 'prod')], ['logs', log('node-a', 4)],
      ['messages', Buffer.from(t.Message.encode({ HostName: 'node-a', Message: 'hello' }).finish())], ['alerts', alert('node-a', 6)],
    ];
    arrivals.forEach(([kind, bytes], i) => {
      assert.ok(builder.add(kind, bytes, 1000 + i));
      builder.addSequence(i === 2 ? '' : 'node-x@1-aaaa', kind, i === 2 ? Number.NaN : i + 1);
    });
    assert.equal(builder.add('logs', Buffer.from([0xff, 0xff]), 0), false, 'a malformed event is refused');
    wanted = false;
    const taken = builder.take();
    assert.ok(taken !== undefined);
    const { batch } = taken;
    assert.equal(builder.take(), undefined, 'the builder starts empty again');
    assert.deepEqual(taken.transfer, [batch.buffer], 'one ArrayBuffer crosses');
    assert.equal(batch.malformed, 1);
    assert.equal(batch.attrsValid, true, 'attrs as wanted at the batch\'s first event');
    const nodes = readEventBatch(batch);
    assert.deepEqual(nodes.map((n) => n.node), ['node-a', 'node-b']);
    const pids = (bytes: Uint8Array, kind: 'Log' | 'Alert'): number[] => [...splitFrames(bytes)].map((m) => {
      const o = t[kind].decode(m) as unknown as { PID?: number; HostPID?: number };
      return Number(kind === 'Log' ? o.PID : o.HostPID);
    });
    const [a, b] = nodes;
    assert.deepEqual(pids(a.logs.bytes, 'Log'), [1, 4]);
    assert.deepEqual(pids(a.alerts.bytes, 'Alert'), [6]);
    assert.deepEqual(pids(b.alerts.bytes, 'Alert'), [2]);
    assert.deepEqual(pids(b.logs.bytes, 'Log'), [3]);
    assert.deepEqual([...a.logs.ingestedUs], [1000, 1003]);
    assert.equal(a.logs.ends[a.logs.count - 1], a.logs.bytes.length, 'ends are from the stream\'s own start');
    assert.equal(a.messages.payloads.length, 1);
    assert.equal((t.Message.decode(a.messages.payloads[0]) as unknown as { Message: string }).Message, 'hello');
    assert.deepEqual([...b.logs.attrs].map((k) => batch.strings[k]), ['prod', 'Process', 'HostLog']);
    const seen: [string, string, number][] = [];
    forEachSequence(batch, (id, kind, seq) => seen.push([id, kind, seq]));
    assert.deepEqual(seen, arrivals.map(([kind], i) => [i === 2 ? '' : 'node-x@1-aaaa', kind, i === 2 ? Number.NaN : i + 1]));
  });

  test('event batches - a builder is full at MAX_BATCH_EVENTS events', () => {
    const builder = new EventBatchBuilder(() => false);
    const bytes = Buffer.from(feederTypes().Log.encode({ HostName: 'n', PID: 1 }).finish());
    for (let i = 0; i < MAX_BATCH_EVENTS - 1; i++) builder.add('logs', bytes, 0);
    assert.equal(builder.full, false);
    builder.add('logs', bytes, 0);
    assert.equal(builder.full, true);
    const taken = builder.take();
    assert.equal(taken?.batch.events, MAX_BATCH_EVENTS);
    assert.equal(readEventBatch(taken.batch)[0].logs.count, MAX_BATCH_EVENTS);
  });
});
