/**
 * The export's parts without a server: option validation (coded errors naming the key),
 * subject tokens, the header block, UpdatedTime read from encoded bytes, the stream
 * subject check, the FIFO, and the buffer's accounting identity under every way out.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MsgHdrsImpl } from '@nats-io/transport-node';
import { defaultConfig, loadConfig, type FeederConfig } from '../src/config';
import { ConfigError } from '../src/errors';
import { ExportBuffer, exportDropReasons, type ExportEntry } from '../src/export/buffer';
import { Fifo } from '../src/export/fifo';
import { subjectCovers } from '../src/export/stream';
import { exportHeaders, makeNodeId, subjectsFor, subjectToken } from '../src/export/subjects';
import { readUpdatedTime } from '../src/export/updatedTime';
import { feederTypes } from '../src/wire/proto';

function configWith(flags: Partial<Record<keyof FeederConfig, unknown>>): FeederConfig {
  return loadConfig({ flags, env: {} });
}

function rejects(flags: Partial<Record<keyof FeederConfig, unknown>>, key: string, pattern: RegExp): void {
  assert.throws(
    () => configWith(flags),
    (err: unknown) => err instanceof ConfigError && err.code === 'ERR_CONFIG_INVALID' && err.key === key && pattern.test(err.message),
    `${JSON.stringify(flags)} is refused naming ${key}`,
  );
}

test('export options - off by default, and each bad value is refused with a coded error naming its key', () => {
  const d = defaultConfig();
  assert.equal(d.export, '');
  assert.equal(d.exportSubjectPrefix, 'kubearmor');
  assert.equal(d.exportStream, 'KUBEARMOR');
  assert.equal(d.exportMaxAgeSec, 86_400);
  const nats = 'nats://127.0.0.1:4222';
  assert.equal(configWith({ export: `${nats}, tls://nats.example:4443` }).export, `${nats}, tls://nats.example:4443`);
  rejects({ export: 'http://127.0.0.1:4222' }, 'export', /nats:\/\/ or tls:\/\//);
  rejects({ export: 'nats://user:secret@127.0.0.1:4222' }, 'export', /carries credentials; give them in a file/);
  rejects({ export: 'nats://:tok@127.0.0.1:4222' }, 'export', /carries credentials/);
  rejects({ export: ' , ' }, 'export', /at least one/);
  rejects({ export: 'not a url' }, 'export', /not a URL/);
  rejects({ export: nats, exportSubjectPrefix: 'kube.*' }, 'exportSubjectPrefix', /without \*/);
  rejects({ export: nats, exportSubjectPrefix: 'kube..armor' }, 'exportSubjectPrefix', /empty tokens/);
  rejects({ export: nats, exportStream: 'KUBE.ARMOR' }, 'exportStream', /stream name/);
  rejects({ export: nats, exportInFlight: '2000', exportBufferEvents: '1000' }, 'exportInFlight', /at most exportBufferEvents/);
  rejects({ export: nats, exportTokenFile: '/nonexistent/token' }, 'exportTokenFile', /cannot read/);
  rejects({ export: nats, exportTlsCertFile: __filename }, 'exportTlsKeyFile', /go together/);
  rejects({ export: nats, exportAckTimeoutMs: '10' }, 'exportAckTimeoutMs (flag --exportAckTimeoutMs)', /between 100 and/);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'armorfeed-export-opts-'));
  try {
    const token = path.join(dir, 'token');
    const user = path.join(dir, 'user');
    fs.writeFileSync(token, 's3cret\n');
    fs.writeFileSync(user, 'alice\n');
    rejects({ export: nats, exportTokenFile: token, exportUserFile: user }, 'exportTokenFile', /only one of.*also got exportUserFile/);
    rejects({ export: nats, exportUserFile: user }, 'exportUserFile', /password on its second/);
    assert.equal(configWith({ export: nats, exportTokenFile: token }).exportTokenFile, token);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  // Off: the export options are not checked at all.
  assert.equal(configWith({ exportStream: 'a.b' }).exportStream, 'a.b');
});

test('export subjects - cluster and node names become single tokens; the subjects sit under the prefix', () => {
  assert.equal(subjectToken('node-1'), 'node-1');
  assert.equal(subjectToken('ip-10-0-0-1.ec2.internal'), 'ip-10-0-0-1_ec2_internal');
  assert.equal(subjectToken('a*b>c d\te\n'), 'a_b_c_d_e_');
  assert.equal(subjectToken(''), '_');
  assert.deepEqual(subjectsFor('acme.kubearmor', 'prod.eu', 'node.a'), {
    alerts: 'acme.kubearmor.prod_eu.node_a.alerts',
    logs: 'acme.kubearmor.prod_eu.node_a.logs',
    messages: 'acme.kubearmor.prod_eu.node_a.messages',
  });
});

test('export headers - the block nats.js sends: Nats-Msg-Id = node id, stream, sequence; the sequence; UpdatedTime', () => {
  const nodeId = makeNodeId('node.a', 1_700_000_000_000);
  assert.match(nodeId, /^node_a@1700000000000-[0-9a-f]{4}$/);
  assert.notEqual(makeNodeId('node.a', 1_700_000_000_000), makeNodeId('node.a', 1_700_000_000_000).replace(/.{4}$/, 'zzzz'));
  const block = Buffer.from(exportHeaders(nodeId, 'alerts', 42, '2024-01-02T03:04:05.123456Z').encode()).toString();
  assert.equal(
    block,
    `NATS/1.0\r\nNats-Msg-Id: ${nodeId}.alerts.42\r\nArmorfeed-Node-Id: ${nodeId}\r\nArmorfeed-Seq: 42\r\nArmorfeed-Updated-Time: 2024-01-02T03:04:05.123456Z\r\n\r\n`,
  );
  // The block is what nats.js itself would encode for the same headers.
  const reference = new MsgHdrsImpl();
  reference.set('Nats-Msg-Id', `${nodeId}.alerts.42`);
  reference.set('Armorfeed-Node-Id', nodeId);
  reference.set('Armorfeed-Seq', '42');
  reference.set('Armorfeed-Updated-Time', '2024-01-02T03:04:05.123456Z');
  assert.equal(block, Buffer.from(reference.encode()).toString());
  assert.doesNotMatch(Buffer.from(exportHeaders(nodeId, 'logs', 1, '').encode()).toString(), /Updated-Time/, 'no UpdatedTime, no header');
  assert.doesNotMatch(Buffer.from(exportHeaders(nodeId, 'logs', 1, 'x\r\nEvil: 1').encode()).toString(), /Evil/, 'a value with CR/LF is left out');
});

test('export UpdatedTime - read from Alert, Log and Message bytes without decoding; absent or garbage gives ""', () => {
  const t = feederTypes();
  const when = '2024-05-06T07:08:09.101112Z';
  for (const type of [t.Alert, t.Log, t.Message]) {
    const bytes = type.encode({ Timestamp: 1_714_979_289, UpdatedTime: when, HostName: 'n', ClusterName: 'c' }).finish();
    const framed = Buffer.concat([Buffer.from([9, 9, 9]), bytes, Buffer.from([7])]);
    assert.equal(readUpdatedTime(framed, 3, 3 + bytes.length), when, type.name);
  }
  assert.equal(readUpdatedTime(t.Log.encode({ Timestamp: 5, HostName: 'n' }).finish(), 0, t.Log.encode({ Timestamp: 5, HostName: 'n' }).finish().length), '');
  assert.equal(readUpdatedTime(new Uint8Array([0x12, 0x50, 0x41]), 0, 3), '', 'a length past the end');
  assert.equal(readUpdatedTime(new Uint8Array([0xff, 0xff, 0xff]), 0, 3), '', 'a varint without end');
});

test('export stream - a stream takes our subjects when one of its subjects covers <prefix>.>', () => {
  assert.ok(subjectCovers('kubearmor.>', 'kubearmor.>'));
  assert.ok(subjectCovers('>', 'kubearmor.>'));
  assert.ok(subjectCovers('acme.>', 'acme.kubearmor.>'));
  assert.ok(subjectCovers('*.kubearmor.>', 'acme.kubearmor.>'));
  assert.ok(!subjectCovers('kubearmor.*', 'kubearmor.>'), 'one token is not every depth');
  assert.ok(!subjectCovers('kubearmor.prod.>', 'kubearmor.>'), 'a narrower stream');
  assert.ok(!subjectCovers('other.>', 'kubearmor.>'));
  assert.ok(!subjectCovers('kubearmor', 'kubearmor.>'));
});

test('export fifo - order is kept across chunk boundaries and while it grows and shrinks', () => {
  const q = new Fifo<number>();
  let next = 0;
  let expect = 0;
  for (let round = 0; round < 5; round++) {
    for (let i = 0; i < 3000 + round * 1000; i++) q.push(next++);
    for (let i = 0; i < 2500; i++) assert.equal(q.shift(), expect++);
  }
  assert.equal(q.length, next - expect);
  while (q.length > 0) assert.equal(q.shift(), expect++);
  assert.equal(q.shift(), undefined);
  assert.equal(q.peek(), undefined);
});

function entry(seq: number, bytes = 100): ExportEntry {
  return { stream: 'logs', seq, payload: new Uint8Array(bytes), updatedTime: '', sends: 0, timeouts: 0, settled: false };
}

function identity(b: ExportBuffer): void {
  const c = b.counts;
  const dropped = exportDropReasons.reduce((n, r) => n + c.dropped[r], 0);
  assert.equal(c.offered, c.acked + dropped + b.events, `offered ${c.offered} = acked ${c.acked} + dropped ${dropped} + held ${b.events}`);
}

test('export buffer - bounded in events and bytes; every event settles once; offered = acked + dropped + held at every step', () => {
  const b = new ExportBuffer(3, 250);
  const offer = (e: ExportEntry): boolean => {
    if (!b.hasRoom(e.payload.length)) {
      b.refuse(1, 'export_buffer_full');
      return false;
    }
    b.take(e);
    return true;
  };
  const [e1, e2, e3, e4] = [entry(1), entry(2), entry(3, 60), entry(4)];
  assert.ok(offer(e1) && offer(e2));
  assert.ok(!offer(e3), 'bytes: 200 + 60 > 250');
  assert.ok(offer(entry(5, 50)));
  assert.ok(!offer(e4), 'events: 3 held');
  identity(b);
  assert.equal(b.counts.dropped.export_buffer_full, 2);

  // Published in order; e1's attempt times out and is retried before fresh events.
  assert.equal(b.next(), e1);
  assert.equal(b.next(), e2);
  b.requeue(e1);
  const e5 = b.next();
  assert.equal(e5, e1, 'a retry goes first');
  assert.equal(b.next()?.seq, 5);
  assert.equal(b.next(), undefined);

  // A late ack and the retry's ack: counted once.
  assert.ok(b.ack(e1, false));
  assert.ok(!b.ack(e1, true), 'the second ack of the same event counts nothing');
  assert.ok(!b.drop(e1, 'export_timeout'), 'nor does giving up a settled event');
  identity(b);
  // Settled while waiting for its retry: skipped.
  b.requeue(e2);
  assert.ok(b.ack(e2, true));
  assert.equal(b.next(), undefined);
  assert.equal(b.counts.duplicates, 1);
  identity(b);
  assert.equal(b.events, 1);
  assert.equal(b.bytes, 50);
  assert.ok(offer(entry(6)) && offer(entry(7)));
  assert.equal(b.dropWaiting('export_shutdown'), 2);
  identity(b);
  assert.equal(b.events, 1, 'the one in flight is the publisher\'s to settle');
  b.refuse(4, 'export_rejected');
  identity(b);
  assert.deepEqual(b.counts.dropped, { export_buffer_full: 2, export_rejected: 4, export_timeout: 0, export_shutdown: 2 });
});
