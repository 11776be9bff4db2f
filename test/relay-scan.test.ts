/**
 * The relay's wire walk (src/relay/scan.ts) against protobufjs, and per-node views on
 * `serve`: the pieces the relay routes with, checked on their own.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { FIELD_HOST, FIELD_NAMESPACE, FIELD_OPERATION, FIELD_TYPE, fieldString, newEventFields, scanEvent } from '../src/relay';
import { feederTypes } from '../src/wire/proto';
import { seqLog } from './helpers/events';
import { startWatched } from './helpers/feeder';
import { delay } from './helpers/wait';

const text = fc.string({ maxLength: 40 });

test('relay scan - the walk finds HostName, namespace, operation and type where protobufjs puts them, for alerts, logs and messages', () => {
  const t = feederTypes();
  const fields = newEventFields();
  fc.assert(
    fc.property(text, text, text, text, fc.integer({ min: 0, max: 2 ** 31 - 1 }), fc.array(text, { maxLength: 3 }), (host, ns, op, type, pid, atags) => {
      const alert = Buffer.from(t.Alert.encode({ Timestamp: 1_700_000_000, HostName: host, NamespaceName: ns, Operation: op, Type: type, HostPID: pid, ATags: atags, Owner: { Name: 'x' }, EventData: { a: 'b' } }).finish());
      assert.ok(scanEvent('alerts', alert, 0, alert.length, fields));
      assert.deepEqual([FIELD_HOST, FIELD_NAMESPACE, FIELD_OPERATION, FIELD_TYPE].map((f) => fieldString(alert, fields, f)), [host, ns, op, type]);
      const log = Buffer.from(t.Log.encode({ HostName: host, NamespaceName: ns, Operation: op, Type: type, PID: pid }).finish());
      assert.ok(scanEvent('logs', log, 0, log.length, fields));
      assert.deepEqual([FIELD_HOST, FIELD_NAMESPACE, FIELD_OPERATION, FIELD_TYPE].map((f) => fieldString(log, fields, f)), [host, ns, op, type]);
      const msg = Buffer.from(t.Message.encode({ HostName: host, Type: type, Message: op }).finish());
      assert.ok(scanEvent('messages', msg, 0, msg.length, fields));
      assert.equal(fieldString(msg, fields, FIELD_HOST), host);
      assert.equal(fieldString(msg, fields, FIELD_TYPE), type);
    }),
    { numRuns: 300 },
  );
});

test('relay scan - truncated or foreign bytes are refused, never read past the end', () => {
  const t = feederTypes();
  const fields = newEventFields();
  const alert = Buffer.from(t.Alert.encode({ HostName: 'node-a', NamespaceName: 'default', Resource: 'x'.repeat(300), HostPID: 7 }).finish());
  for (let cut = 1; cut < alert.length; cut++) {
    // Every proper prefix either ends on a field boundary (a shorter valid message) or is refused.
    const ok = scanEvent('alerts', alert, 0, cut, fields);
    if (ok) assert.ok(fields.every((v) => v <= cut));
  }
  assert.equal(scanEvent('alerts', alert, 0, alert.length - 1, fields), false, 'a string cut short');
  assert.equal(scanEvent('alerts', Buffer.from([0x0b, 0x00]), 0, 2, fields), false, 'a group (wire type 3)');
  assert.equal(scanEvent('alerts', Buffer.from([0x08, 0xff]), 0, 2, fields), false, 'a varint without its end');
  assert.equal(scanEvent('alerts', Buffer.from([0x00, 0x00]), 0, 2, fields), false, 'field number 0');
});

test('fan-out - a per-node view (x-armorfeed-node) on serve: its own node passes, another node gets nothing and counts it filtered', { timeout: 30_000 }, async () => {
  const w = await startWatched(
    { host: 'node-a', alertThrottling: false },
    [['WatchLogs', 'system', { 'x-armorfeed-node': 'node-a' }], ['WatchLogs', 'system', { 'x-armorfeed-node': 'node-b,node-c' }], ['WatchLogs', 'system']],
    'three WatchLogs streams',
  );
  try {
    // The hub routes by the node it serves (--host); these events name it too.
    for (let i = 1; i <= 50; i++) w.feeder.push(seqLog(i, { hostName: 'node-a' }));
    const [mine, others, all] = w.watchers;
    await mine.waitFor(50);
    await all.waitFor(50);
    await delay(100);
    assert.equal(others.messages.length, 0);
    const byName = w.feeder.stats().clients.filter((c) => c.open);
    assert.deepEqual(byName.map((c) => c.dropped.filtered), [0, 50, 0]);
  } finally {
    await w.close();
  }
});
