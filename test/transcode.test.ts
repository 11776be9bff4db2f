/**
 * The encoder's byte-level path (scan + transcode) against the reference path
 * (msgpack decode -> upstream field rules -> protobufjs encode): both must decode to
 * the same Alert/Log for every event shape, including the edge cases of kubearmor-wire.md 2.5.
 */
import { strict as assert } from 'node:assert';
import { describe, test } from 'node:test';
import { Packr, Unpackr } from 'msgpackr';
import { createTape, isAlertTape, scanEvent, validateFrame } from '../src/event/scan';
import { isAlert, toAlert, toLog } from './helpers/referenceEncoder';
import type { EventContext } from '../src/event/rules';
import type { IngestEvent } from '../src/event/schema';
import { ProtoWriter } from '../src/encode/protoWriter';
import { Transcoder, type EventFacts } from '../src/encode/transcode';
import { SyntheticFrames, syntheticEvent } from '../src/ingest/synthetic';
import { feederTypes } from '../src/wire/proto';
import { NOT_THROTTLED, throttleBucket } from '../src/throttle';
import { InputError } from '../src/errors';
import { mapWithRawValue, nestedArrays } from './helpers/tcp';
import { fieldLengths } from './helpers/wire';

const packr = new Packr({ useRecords: false });
const unpackr = new Unpackr({ mapsAsObjects: true, useRecords: false, int64AsType: 'number' });
const ctx: EventContext = { cluster: 'default', host: 'node-a', nodeID: 'machine-1', dropResourceFromProcessLogs: false };
const { Alert, Log } = feederTypes();
const INGESTED_US = 1_764_170_000_123_456;

function viaTranscoder(bytes: Uint8Array, context = ctx): { alert: boolean; decoded: Record<string, unknown>; facts: EventFacts } {
  const tape = createTape();
  scanEvent(bytes, 0, bytes.length, tape);
  const alert = isAlertTape(bytes, tape);
  const w = new ProtoWriter(64);
  const facts: EventFacts = { namespace: -1, operation: -1, type: -1, typeOverride: undefined };
  new Transcoder(context).encode(bytes, tape, alert, INGESTED_US, w, facts);
  const T = alert ? Alert : Log;
  return { alert, decoded: T.toObject(T.decode(w.buf.subarray(0, w.pos)), { longs: Number }) as Record<string, unknown>, facts };
}

function viaReference(event: IngestEvent, context = ctx): Record<string, unknown> {
  const e = unpackr.unpack(packr.pack(event)) as IngestEvent;
  const T = isAlert(e) ? Alert : Log;
  const message = isAlert(e) ? toAlert(e, context, INGESTED_US) : toLog(e, context, INGESTED_US);
  return T.toObject(T.decode(T.encode(message).finish()), { longs: Number }) as Record<string, unknown>;
}

const edgeCases: [string, IngestEvent][] = [
  ['network alert: EventData from Data and Resource, Resource wins', {
    type: 'MatchedPolicy', source: '/bin/curl', operation: 'Network', data: 'syscall=SYS_CONNECT fd=3', resource: 'remoteip=10.0.0.1 port=80 fd=9',
    tags: 'NIST,CIS,', severity: '0', owner: { name: 'web' }, pid: -5, ppid: 0, timestamp: 1_700_000_000, updatedTime: '2023-11-14T22:13:20.000001Z',
  }],
  ['log: explicit eventData, invalid UTF-8 in Resource, ExecEvent set, explicit empty nodeID', {
    type: 'ContainerLog', source: 'x', operation: 'File', resource: 'a\uD800b<é>&', eventData: { k: 'v', Z: '' }, execEvent: { ExecID: 'e1' }, nodeID: '',
  }],
  ['NetworkFirewall alert: Type and Enforcer rewritten', { type: 'MatchedPolicy', source: 'x', operation: 'NetworkFirewall', enforcer: 'eBPF Monitor', action: 'Audit' }],
  ['Device alert: Enforcer rewritten', { type: 'MatchedHostPolicy', source: 'x', operation: 'Device', enforcer: 'BPFLSM' }],
  ['host log without times, cluster or host: defaults fill in', { type: 'HostLog', source: '/usr/bin/ls', operation: 'Process', resource: '/usr/bin/ls -la', hostPid: 2_147_483_647, uid: -1 }],
  ['alert with an empty Owner and null atags', { type: 'SystemEvent', operation: 'AlertThreshold', owner: { ref: '', name: '', namespace: '' }, atags: null, MaxAlertsPerSec: 10, DroppingAlertsInterval: 30 }],
  ['log with undefined fields', { type: 'SystemLog', source: 's', data: undefined, resource: 'remoteip=1.1.1.1' }],
];

describe('transcode - byte path equals the protobufjs reference', () => {
  for (const [name, event] of edgeCases) {
    test(`transcode - ${name}`, () => {
      const got = viaTranscoder(packr.pack(event));
      assert.deepStrictEqual(got.decoded, viaReference(event));
    });
  }

  test('transcode - EventData from 90,000 Data tokens (~1 MB) is derived in linear time and equals the reference', () => {
    // 60,000 distinct keys, every third one repeated later (the later value wins), some
    // repeats differing only in the case of the first letter (the same key once capitalised).
    const tokens: string[] = [];
    for (let i = 0; i < 90_000; i++) {
      const k = i % 60_000;
      tokens.push(`${i >= 60_000 && k % 2 === 0 ? 'K' : 'k'}${k}=v${i}`);
    }
    const event: IngestEvent = { type: 'ContainerLog', source: '/bin/sh', operation: 'Network', data: tokens.join(' '), resource: 'k7=fromResource port=80' };
    const bytes = packr.pack(event);
    assert.ok(bytes.length > 900_000, `event of ${bytes.length} bytes`);
    const started = performance.now();
    const got = viaTranscoder(bytes);
    const ms = performance.now() - started;
    // Linear: tens of milliseconds. The pairwise duplicate check took ~39 s here.
    assert.ok(ms < 5000, `transcoding took ${ms.toFixed(0)} ms`);
    const want = viaReference(event);
    assert.equal(Object.keys(got.decoded.EventData as object).length, 60_001);
    assert.equal((got.decoded.EventData as Record<string, string>).K7, 'fromResource');
    assert.equal((got.decoded.EventData as Record<string, string>).K2, 'v60002');
    assert.deepStrictEqual(got.decoded, want);
  });

  test('transcode - EventData: a later equal key wins, keys equal once capitalised are one key', () => {
    for (const data of ['a=1 b=2 a=3', 'a=1 A=2', 'A=1 a=2 b= =x c', 'x=1 y=2 z=3 x=4 y=5 Z=6', '\tk=1\n k=2\r\nk=3 ']) {
      const event: IngestEvent = { type: 'ContainerLog', source: 's', data };
      assert.deepStrictEqual(viaTranscoder(packr.pack(event)).decoded, viaReference(event), data);
    }
  });

  test('transcode - every synthetic shape, alerts and logs', () => {
    for (let i = 0; i < 90; i++) {
      const event = syntheticEvent(i, INGESTED_US + i, { cluster: 'c1', host: 'h1', alertEvery: 5 });
      assert.deepStrictEqual(viaTranscoder(packr.pack(event)).decoded, viaReference(event), `event ${i}`);
    }
  });

  test('transcode - dropResourceFromProcessLogs drops Resource from Process logs only', () => {
    const context = { ...ctx, dropResourceFromProcessLogs: true };
    const log: IngestEvent = { type: 'ContainerLog', source: 's', operation: 'Process', resource: '/bin/ls' };
    const got = viaTranscoder(packr.pack(log), context).decoded;
    assert.equal(got.Resource, undefined);
    assert.deepStrictEqual(got, viaReference(log, context));
    const alert: IngestEvent = { ...log, type: 'MatchedPolicy' };
    assert.equal(viaTranscoder(packr.pack(alert), context).decoded.Resource, '/bin/ls');
  });

  test('transcode - ExecEvent is always on the wire, empty or not', () => {
    for (const [event, T] of [[{ type: 'ContainerLog', source: 's' }, Log], [{ type: 'MatchedPolicy', source: 's', execEvent: {} }, Alert]] as const) {
      const bytes = packr.pack(event);
      const tape = createTape();
      scanEvent(bytes, 0, bytes.length, tape);
      const w = new ProtoWriter(64);
      const facts: EventFacts = { namespace: -1, operation: -1, type: -1, typeOverride: undefined };
      new Transcoder(ctx).encode(bytes, tape, isAlertTape(bytes, tape), INGESTED_US, w, facts);
      const fields = fieldLengths(w.buf.subarray(0, w.pos));
      assert.equal(fields.get(T.fields.ExecEvent.id), 0, `${T.name}: ExecEvent present with length 0`);
      assert.equal(fields.has(T.fields.PPID.id), false, `${T.name}: zero PPID not on the wire`);
      assert.equal(fields.has(T.fields.Owner.id), false, `${T.name}: no Owner when unset`);
    }
  });

  test('transcode - a Network Resource that is not valid UTF-8 gives EventData from the repaired bytes', () => {
    // A fuzz counterexample (test/fuzz.test.ts): one byte of a synthetic Network log's
    // Resource flipped to 0x80. The pairs were cut from the raw bytes, so an EventData key
    // carried the invalid byte, and Go's decoder ends the whole stream on such a string.
    const resource = Buffer.concat([Buffer.of(0x80), Buffer.from('emoteip=10.96.0.10 po'), Buffer.of(0xff), Buffer.from('rt=53 x='), Buffer.of(0xe2, 0x82)]);
    const fields = { type: 'ContainerLog', source: '/bin/bash', operation: 'Network', data: 'syscall=SYS_CONNECT port=1' };
    const bytes = mapWithRawValue(fields, 'resource', Buffer.concat([Buffer.of(0xd9, resource.length), resource]));
    validateFrame(bytes, 0, bytes.length, createTape());
    const got = viaTranscoder(bytes).decoded;
    assert.deepStrictEqual(got.EventData, { Syscall: 'SYS_CONNECT', Port: '53', Emoteip: '10.96.0.10', X: '' });
    assert.equal(got.Resource, 'emoteip=10.96.0.10 port=53 x=');
    assert.deepStrictEqual(got, viaReference({ ...fields, resource: resource.toString('utf8') }));
  });

  test('throttle - eligibility follows upstream 2.6', () => {
    const eligible = (e: IngestEvent): boolean => {
      const bytes = packr.pack({ source: 's', ...e });
      const tape = createTape();
      scanEvent(bytes, 0, bytes.length, tape);
      return throttleBucket(bytes, tape) !== NOT_THROTTLED;
    };
    assert.equal(eligible({ type: 'MatchedPolicy', action: 'Audit', enforcer: 'eBPF Monitor' }), true);
    assert.equal(eligible({ type: 'MatchedPolicy', action: 'Audit (Block)', enforcer: 'eBPF Monitor' }), true);
    assert.equal(eligible({ type: 'MatchedPolicy', action: 'Block', enforcer: 'BPFLSM' }), false);
    assert.equal(eligible({ type: 'MatchedHostPolicy', action: 'Block', enforcer: 'AppArmor' }), true);
    assert.equal(eligible({ type: 'MatchedPolicy', action: 'Block', enforcer: 'AppArmor' }), false);
  });
});

describe('synthetic - template frames equal packed events', () => {
  for (const alertEvery of [0, 1, 3, 5]) {
    test(`synthetic - alert-every ${alertEvery}`, () => {
      const opts = { cluster: 'default', host: 'k8s-worker-02', alertEvery };
      const frames = new SyntheticFrames(opts, (v) => packr.pack(v));
      for (let i = 0; i < 500; i++) {
        const now = INGESTED_US + i * 997_123;
        assert.deepStrictEqual(unpackr.unpack(frames.frame(i, now)), unpackr.unpack(packr.pack(syntheticEvent(i, now, opts))), `event ${i}`);
      }
    });
  }

  test('synthetic - encoded sizes match the gofeeder shapes', () => {
    // gofeeder --sample encodes events 0..8 of each kind: alerts 552..602 bytes, logs 386..452.
    const sizeOf = (alertEvery: number, i: number): number => {
      const bytes = packr.pack(syntheticEvent(i, INGESTED_US, { cluster: 'default', host: 'k8s-worker-02', alertEvery }));
      const tape = createTape();
      scanEvent(bytes, 0, bytes.length, tape);
      const w = new ProtoWriter(64);
      const facts: EventFacts = { namespace: -1, operation: -1, type: -1, typeOverride: undefined };
      new Transcoder(ctx).encode(bytes, tape, isAlertTape(bytes, tape), INGESTED_US, w, facts);
      return w.pos;
    };
    const alerts = Array.from({ length: 9 }, (_, i) => sizeOf(1, i));
    const logs = Array.from({ length: 9 }, (_, i) => sizeOf(0, i));
    assert.deepStrictEqual([Math.min(...alerts), Math.max(...alerts)], [552, 602]);
    assert.deepStrictEqual([Math.min(...logs), Math.max(...logs)], [386, 452]);
  });
});

describe('scan - validation names the problem', () => {
  const cases: [string, unknown, string][] = [
    ['not a map', ['a'], 'ERR_INPUT_NOT_A_MAP'],
    ['unknown field', { type: 'ContainerLog', source: 's', bogus: 1 }, 'ERR_INPUT_UNKNOWN_FIELD'],
    ['wrong type: string for int', { type: 'ContainerLog', source: 's', pid: 'x' }, 'ERR_INPUT_WRONG_TYPE'],
    ['wrong type: float for int', { type: 'ContainerLog', source: 's', pid: 1.5 }, 'ERR_INPUT_WRONG_TYPE'],
    ['out of range: int32 max + 1', { type: 'ContainerLog', source: 's', pid: 2 ** 31 }, 'ERR_INPUT_OUT_OF_RANGE'],
    ['out of range: int32 min - 1', { type: 'ContainerLog', source: 's', uid: -(2 ** 31) - 1 }, 'ERR_INPUT_OUT_OF_RANGE'],
    ['out of range: 2^40 as int64 for int32', { type: 'ContainerLog', source: 's', hostPid: 2n ** 40n }, 'ERR_INPUT_OUT_OF_RANGE'],
    ['out of range: timestamp 1e20', { type: 'ContainerLog', source: 's', timestamp: 1e20 }, 'ERR_INPUT_OUT_OF_RANGE'],
    ['out of range: timestamp 1e300', { type: 'ContainerLog', source: 's', timestamp: 1e300 }, 'ERR_INPUT_OUT_OF_RANGE'],
    ['out of range: timestamp -1e20', { type: 'ContainerLog', source: 's', timestamp: -1e20 }, 'ERR_INPUT_OUT_OF_RANGE'],
    ['out of range: timestamp 2^63 as uint64', { type: 'ContainerLog', source: 's', timestamp: 2n ** 63n }, 'ERR_INPUT_OUT_OF_RANGE'],
    ['out of range: timestamp 2^62 as int64', { type: 'ContainerLog', source: 's', timestamp: 2n ** 62n }, 'ERR_INPUT_OUT_OF_RANGE'],
    ['out of range: timestamp past what a date can hold', { type: 'ContainerLog', source: 's', timestamp: 8_640_000_000_001 }, 'ERR_INPUT_OUT_OF_RANGE'],
    ['wrong type: timestamp NaN', { type: 'ContainerLog', source: 's', timestamp: Number.NaN }, 'ERR_INPUT_WRONG_TYPE'],
    ['wrong type: timestamp Infinity', { type: 'ContainerLog', source: 's', timestamp: Number.POSITIVE_INFINITY }, 'ERR_INPUT_WRONG_TYPE'],
    ['wrong type: timestamp 1.5', { type: 'ContainerLog', source: 's', timestamp: 1.5 }, 'ERR_INPUT_WRONG_TYPE'],
    ['wrong type: number for string', { type: 'ContainerLog', source: 's', podName: 5 }, 'ERR_INPUT_WRONG_TYPE'],
    ['wrong type: null for string', { type: 'ContainerLog', source: 's', podName: null }, 'ERR_INPUT_WRONG_TYPE'],
    ['unknown owner key', { type: 'ContainerLog', source: 's', owner: { kind: 'x' } }, 'ERR_INPUT_UNKNOWN_FIELD'],
    ['non-string eventData value', { type: 'ContainerLog', source: 's', eventData: { a: 1 } }, 'ERR_INPUT_WRONG_TYPE'],
    ['unknown Type', { type: 'Bogus', source: 's' }, 'ERR_INPUT_UNKNOWN_TYPE'],
    ['neither Type nor Source', { operation: 'File' }, 'ERR_INPUT_UNKNOWN_TYPE'],
  ];
  for (const [name, value, code] of cases) {
    test(`scan - rejects ${name} with ${code}`, () => {
      const bytes = packr.pack(value);
      assert.throws(() => validateFrame(bytes, 0, bytes.length, createTape()), (err: unknown) => err instanceof InputError && err.code === code);
    });
  }

  test('scan - msgpack bin and ext values and non-string keys are wrong_type (one bad event), bytes that are not msgpack are malformed_frame', () => {
    const code = (bytes: Uint8Array): string => {
      try {
        validateFrame(bytes, 0, bytes.length, createTape());
        return 'accepted';
      } catch (err) {
        if (err instanceof InputError) return err.code;
        throw err;
      }
    };
    const event = { type: 'ContainerLog', source: 's' };
    assert.equal(code(packr.pack({ ...event, podName: Buffer.from('p') })), 'ERR_INPUT_WRONG_TYPE');
    assert.equal(code(packr.pack({ ...event, podName: Buffer.alloc(70_000) })), 'ERR_INPUT_WRONG_TYPE', 'bin 32');
    assert.equal(code(mapWithRawValue(event, 'labels', Buffer.of(0xd6, 0xff, 0, 0, 0, 1))), 'ERR_INPUT_WRONG_TYPE', 'fixext 4');
    assert.equal(code(mapWithRawValue(event, 'tags', Buffer.of(0xc7, 0x02, 0x05, 0xaa, 0xbb))), 'ERR_INPUT_WRONG_TYPE', 'ext 8');
    assert.equal(code(mapWithRawValue(event, 'atags', Buffer.of(0x92, 0xa1, 0x61, 0xc4, 0x01, 0x00))), 'ERR_INPUT_WRONG_TYPE', 'bin inside an array');
    assert.equal(code(Buffer.concat([Buffer.of(0x83), packr.pack('type'), packr.pack('ContainerLog'), packr.pack('source'), packr.pack('s'), Buffer.of(0x07, 0xc0)])), 'ERR_INPUT_WRONG_TYPE', 'integer key');
    assert.equal(code(Buffer.of(0xc4, 0x01, 0x00)), 'ERR_INPUT_NOT_A_MAP', 'a bare bin value');
    // Broken: a bin whose length runs past the frame, a byte msgpack never uses.
    assert.equal(code(mapWithRawValue(event, 'podName', Buffer.of(0xc4, 0x09, 0x00))), 'ERR_INPUT_MALFORMED_FRAME');
    assert.equal(code(mapWithRawValue(event, 'podName', Buffer.of(0xc1))), 'ERR_INPUT_MALFORMED_FRAME');
    assert.equal(code(Buffer.concat([Buffer.of(0x82), packr.pack('type'), packr.pack('ContainerLog'), Buffer.of(0xc1, 0xc0)])), 'ERR_INPUT_MALFORMED_FRAME');
  });

  test('scan - rejects bytes that are not msgpack', () => {
    const bytes = Buffer.from('{"type":"ContainerLog"}');
    assert.throws(() => validateFrame(bytes, 0, bytes.length, createTape()), InputError);
  });

  test('scan - rejects a truncated map and trailing bytes', () => {
    const bytes = packr.pack({ type: 'ContainerLog', source: 'abc' });
    assert.throws(() => validateFrame(bytes, 0, bytes.length - 2, createTape()), (err: unknown) => err instanceof InputError && err.code === 'ERR_INPUT_MALFORMED_FRAME');
    const longer = Buffer.concat([bytes, Buffer.from([0xc0])]);
    assert.throws(() => validateFrame(longer, 0, longer.length, createTape()), (err: unknown) => err instanceof InputError && err.code === 'ERR_INPUT_MALFORMED_FRAME');
     // A str8 key whose length byte is past the end (fuzz counterexample [0x81, 0xd9]), alone and followed by other bytes.
    for (const cut of [Uint8Array.of(0x81, 0xd9), Buffer.from([0x81, 0xd9, 0x05, 0x61])]) {
      assert.throws(() => validateFrame(cut, 0, 2, createTape()), (err: unknown) => err instanceof InputError && err.code === 'ERR_INPUT_MALFORMED_FRAME', `[${[...cut]}]`);
    }
  });

  test('scan - nesting: 32 levels are judged by the schema, 33 are too_deep, 50,000 do not overflow the stack', () => {
    const code = (bytes: Uint8Array): string => {
      try {
        validateFrame(bytes, 0, bytes.length, createTape());
        return 'accepted';
      } catch (err) {
        if (err instanceof InputError) return err.code;
        throw err;
      }
    };
    const event = { type: 'ContainerLog', source: 's' };
    // The frame's own value is level 1: arrays 32 deep are one well-formed value, just not a map.
    assert.equal(code(nestedArrays(32)), 'ERR_INPUT_NOT_A_MAP');
    assert.equal(code(nestedArrays(33)), 'ERR_INPUT_TOO_DEEP');
    // Inside the event map (level 1), a value may open 31 more levels.
    assert.equal(code(mapWithRawValue(event, 'labels', nestedArrays(31))), 'ERR_INPUT_WRONG_TYPE');
    assert.equal(code(mapWithRawValue(event, 'labels', nestedArrays(32))), 'ERR_INPUT_TOO_DEEP');
    for (const depth of [50_000, 1_000_000]) {
      assert.equal(code(nestedArrays(depth)), 'ERR_INPUT_TOO_DEEP');
      assert.equal(code(mapWithRawValue(event, 'eventData', nestedArrays(depth))), 'ERR_INPUT_TOO_DEEP');
    }
  });

  test('scan - integers at the edges of their range are accepted, and encode to what the reference encodes', () => {
    for (const extra of [
      { pid: 2 ** 31 - 1, uid: -(2 ** 31), hostPid: 2n ** 31n - 1n, ppid: -(2n ** 31n) },
      { timestamp: 8_640_000_000_000 },
      { timestamp: -8_640_000_000_000 },
      { timestamp: 4_102_444_800n },
      { timestamp: -1 },
    ]) {
      const bytes = packr.pack({ type: 'ContainerLog', source: 's', ...extra });
      validateFrame(bytes, 0, bytes.length, createTape());
      const { decoded } = viaTranscoder(bytes);
      const event = unpackr.unpack(bytes) as IngestEvent;
      assert.deepEqual(decoded, Log.toObject(Log.decode(Log.encode(toLog(event, ctx, INGESTED_US)).finish()), { longs: Number }), JSON.stringify(extra, (_, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v)));
    }
  });

  test('scan - accepts null where Go has nil slices, maps and pointers', () => {
    const bytes = packr.pack({ type: 'ContainerLog', source: 's', atags: null, eventData: null, owner: null });
    validateFrame(bytes, 0, bytes.length, createTape());
  });
});

describe('scan - truncated input', () => {
  test('scan - a key whose str8 header is cut off after its type byte is a malformed frame, not a crash', () => {
    // A fuzz counterexample (seed -1950750008): a one-entry map, then only 0xd9. The
    // missing length byte read as NaN, every bounds check passed, and a RangeError
    // (no InputError) ended the ingest thread.
    for (const bytes of [[0x81, 0xd9], [0x81, 0xda, 0x00], [0x81, 0xdb, 0x00, 0x00], [0x81, 0xa3, 0x70, 0x69, 0x64, 0xd9]]) {
      assert.throws(
        () => validateFrame(Uint8Array.from(bytes), 0, bytes.length, createTape()),
        (err: unknown) => err instanceof InputError && err.code === 'ERR_INPUT_MALFORMED_FRAME',
        Buffer.from(bytes).toString('hex'),
      );
    }
  });
});
