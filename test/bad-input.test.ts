/**
 * Bad input at the ingest sources of a real `armorfeed serve`: every malformed frame or
 * line is counted by reason (GET /stats ingest.<source>.malformedByReason and
 * dropped.malformed_input), reported as a WARN Message on WatchMessages that names the
 * error code, and never stops the broker: another producer's valid events keep flowing.
 * Framing errors (bytes that are not msgpack, a length over the limit) hang up on that
 * peer only (with one `armorfeed: ERR_...` line), after admitting the frames before them
 * and counting what is thrown away; event errors (a bin/ext value, a length-0 frame
 * included) drop the event and keep the connection.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import type * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { pack } from 'msgpackr';
import { encodeFrame } from '../src/ingest/frames';
import type { FeederStats } from '../src/feeder';
import type { IngestEvent } from '../src/event';
import { awaitExit, exitCodeOf } from './helpers/child';
import { connect, type TestClient, type Watcher } from './helpers/client';
import { seqLog, seqs } from './helpers/events';
import { armorfeedMain, fetchStats, parseReadyLine, startServe, type ServeProcess } from './helpers/serve';
import { connectTo, frameOf, mapWithRawValue, nestedArrays, write } from './helpers/tcp';
import { delay, waitUntil } from './helpers/wait';

const BASE_ARGS = ['serve', '--bind', '127.0.0.1', '--gRPC', '0', '--gRPCHealthPort', '0', '--metricsPort', '0'];
const MAX_EVENT_BYTES = 64 * 1024;
/** Nesting far past any stack: a recursive reader would die of it. */
const DEEP = 50_000;

/** A numbered ContainerLog whose timestamp also moves with its number. */
function logEvent(seq: number, extra: Partial<IngestEvent> = {}): IngestEvent {
  return seqLog(seq, { timestamp: 1_700_000_000 + seq, ...extra });
}

/** Collects what the server sends until it closes the connection (bounded). */
function readUntilClosed(sock: net.Socket, timeoutMs: number): Promise<{ text: string; ended: boolean }> {
  return new Promise((resolve, reject) => {
    let text = '';
    let ended = false;
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`server did not close the connection within ${timeoutMs} ms; got ${JSON.stringify(text)}`));
    }, timeoutMs);
    sock.setEncoding('utf8');
    sock.on('data', (c: string) => {
      text += c;
    });
    sock.on('end', () => {
      ended = true;
    });
    sock.on('error', () => undefined);
    sock.on('close', () => {
      clearTimeout(timer);
      resolve({ text, ended });
    });
  });
}

describe('bad input over TCP', () => {
  let serve: ServeProcess;
  let conn: TestClient;
  let logs: Watcher;
  let messages: Watcher;
  let good: net.Socket;
  let metrics: string;
  let tcp: string;
  let nextSeq = 1;
  let lastRejectAt = 0;

  before(async () => {
    serve = await startServe([...BASE_ARGS, '--source', 'tcp', '--tcp', '127.0.0.1:0', '--maxEventBytes', String(MAX_EVENT_BYTES)]);
    metrics = serve.addresses.metrics;
    tcp = serve.addresses.tcp;
    assert.ok(metrics !== undefined && tcp !== undefined, serve.readyLine);
    conn = connect(serve.addresses.grpc);
    logs = conn.watch('WatchLogs', 'all');
    messages = conn.watch('WatchMessages', '');
    await waitUntil('both streams registered', async () => (await fetchStats(metrics)).clients.filter((c) => c.open).length === 2, 10_000);
    good = await connectTo(tcp);
  });

  after(async () => {
    good?.destroy();
    conn?.close();
    if (serve !== undefined) {
      const exit = await serve.stop('SIGTERM', 10_000);
      assert.equal(exit.code, 0, exit.stderr.slice(-2000));
    }
  });

  /**
   * The WARN for a rejection is rate limited to one a second: each case starts 1.1 s
   * after the previous one ended, so its own rejection gets its own WARN.
   */
  async function spaced<T>(body: (messagesBefore: number) => Promise<T>): Promise<T> {
    const wait = lastRejectAt + 1100 - Date.now();
    if (wait > 0) await delay(wait);
    try {
      return await body(messages.messages.length);
    } finally {
      lastRejectAt = Date.now();
    }
  }

  async function tcpStats(): Promise<FeederStats['ingest'][string]> {
    return (await fetchStats(metrics)).ingest.tcp;
  }

  /** Runs `act` and checks that it was counted exactly once, as `reason`, and nothing else was. */
  async function expectCounted(reason: string, act: () => Promise<void>): Promise<void> {
    const before = await tcpStats();
    const want = { ...before.malformedByReason, [reason]: (before.malformedByReason[reason] ?? 0) + 1 };
    const total = before.dropped.malformed_input + 1;
    await act();
    const ok = async (): Promise<boolean> => {
      const s = await tcpStats();
      return s.dropped.malformed_input === total && s.malformedByReason[reason] === want[reason];
    };
    await waitUntil(`malformed_input=${total} and ${reason}=${want[reason]}`, ok, 5_000, async () => JSON.stringify(await tcpStats()));
    // Nothing else is counted later (e.g. a second reason for the same bytes).
    await delay(300);
    const s = await tcpStats();
    assert.equal(s.dropped.malformed_input, total, JSON.stringify(s));
    assert.deepEqual(s.malformedByReason, want);
  }

  async function expectWarn(code: string, fromIndex: number): Promise<void> {
    const found = (): boolean => messages.messages.slice(fromIndex).some((m) => m.Level === 'WARN' && String(m.Message).includes(code));
    await waitUntil(`a WARN message naming ${code}`, found, 5_000, () => JSON.stringify(messages.messages.slice(fromIndex).map((m) => `${String(m.Level)} ${String(m.Message)}`)));
  }

  /** Sends one valid event on `sock` and waits for it on WatchLogs. */
  async function deliveredVia(sock: net.Socket): Promise<void> {
    const seq = nextSeq++;
    await write(sock, frameOf(logEvent(seq)));
    await waitUntil(`event ${seq} on WatchLogs`, () => seqs(logs).includes(seq), 5_000, () => `(have ${JSON.stringify(seqs(logs).slice(-5))})`);
  }

  async function stillServing(): Promise<void> {
    assert.equal(await conn.health(4242), 4242);
    await deliveredVia(good);
  }

  function expectHangUp(payload: Buffer, code: string, reason: string): Promise<void> {
    return spaced((from) => hangUp(payload, code, reason, from));
  }

  async function hangUp(payload: Buffer, code: string, reason: string, from: number): Promise<void> {
    const sock = await connectTo(tcp);
    const closed = readUntilClosed(sock, 10_000);
    closed.catch(() => undefined); // awaited below; a counting failure must not leave it unhandled
    let text: string;
    try {
      await expectCounted(reason, () => write(sock, payload));
      text = (await closed).text;
    } finally {
      sock.destroy();
    }
    assert.match(text, new RegExp(`^armorfeed: ${code}\\b`), `the peer reads the reason line: ${JSON.stringify(text)}`);
    assert.ok(text.endsWith('\n'), 'one whole line');
    await expectWarn(code, from);
    await stillServing();
  }

  function expectDroppedButOpen(frame: Buffer, code: string, reason: string): Promise<void> {
    return spaced((from) => droppedButOpen(frame, code, reason, from));
  }

  async function droppedButOpen(frame: Buffer, code: string, reason: string, from: number): Promise<void> {
    const sock = await connectTo(tcp);
    let closed = false;
    sock.on('close', () => {
      closed = true;
    });
    try {
      const before = logs.messages.length;
      await expectCounted(reason, () => write(sock, frame));
      await expectWarn(code, from);
      assert.equal(closed, false, 'the connection stays open after an event error');
      assert.equal(logs.messages.length, before, 'the bad event was not delivered');
      await deliveredVia(sock);
      await stillServing();
    } finally {
      sock.destroy();
    }
  }

  test('bad input - garbage that is not msgpack closes that connection with ERR_INPUT_MALFORMED_FRAME', { timeout: 20_000 }, async () => {
    await deliveredVia(good);
    // 0xc1 is the one byte msgpack never uses: this cannot be the start of any value.
    const garbage = Buffer.concat([Buffer.of(0xc1), Buffer.from('this is not msgpack at all')]);
    const header = Buffer.alloc(4);
    header.writeUInt32BE(garbage.length);
    await expectHangUp(Buffer.concat([header, garbage]), 'ERR_INPUT_MALFORMED_FRAME', 'malformed_frame');
  });

  test('bad input - a map whose body is not msgpack closes that connection with ERR_INPUT_MALFORMED_FRAME', { timeout: 20_000 }, async () => {
    // A 3-entry map header, then bytes that cannot be a key.
    const body = Buffer.concat([Buffer.of(0x83, 0xc1), Buffer.from('garbage')]);
    const header = Buffer.alloc(4);
    header.writeUInt32BE(body.length);
    await expectHangUp(Buffer.concat([header, body]), 'ERR_INPUT_MALFORMED_FRAME', 'malformed_frame');
  });

  test('bad input - a frame longer than --maxEventBytes closes that connection with ERR_INPUT_OVERSIZED, and one of exactly that size is delivered', { timeout: 20_000 }, async () => {
    // A valid frame of exactly maxEventBytes is accepted.
    const seq = nextSeq++;
    let pad = MAX_EVENT_BYTES - pack(logEvent(seq, { data: '' })).length;
    let exact = pack(logEvent(seq, { data: 'x'.repeat(pad) }));
    pad -= exact.length - MAX_EVENT_BYTES; // the string header grew with the padding
    exact = pack(logEvent(seq, { data: 'x'.repeat(pad) }));
    assert.equal(exact.length, MAX_EVENT_BYTES);
    await write(good, encodeFrame(exact));
    await waitUntil(`event ${seq} of exactly ${MAX_EVENT_BYTES} bytes`, () => seqs(logs).includes(seq), 5_000);

    const header = Buffer.alloc(4);
    header.writeUInt32BE(MAX_EVENT_BYTES + 1);
    await expectHangUp(Buffer.concat([header, Buffer.alloc(MAX_EVENT_BYTES + 1, 0x61)]), 'ERR_INPUT_OVERSIZED', 'oversized');
  });

  /**
   * Writes `before` valid frames, `bad`, then `after` valid frames in one write: the bad
   * frame is counted once as `reason`, the connection stays up and every valid frame is
   * delivered, in order.
   */
  function expectOneBadAmongValid(bad: Buffer, code: string, reason: string): Promise<void> {
    return spaced(async (from) => {
      const sock = await connectTo(tcp);
      let closed = false;
      sock.on('close', () => {
        closed = true;
      });
      try {
        const valid = [nextSeq++, nextSeq++, nextSeq++, nextSeq++];
        const bytes = Buffer.concat([frameOf(logEvent(valid[0])), frameOf(logEvent(valid[1])), bad, frameOf(logEvent(valid[2])), frameOf(logEvent(valid[3]))]);
        await expectCounted(reason, () => write(sock, bytes));
        await waitUntil(`events ${valid.join(',')} on WatchLogs`, () => valid.every((v) => seqs(logs).includes(v)), 5_000, () => `(have ${JSON.stringify(seqs(logs).slice(-6))})`);
        assert.deepEqual(seqs(logs).slice(-4), valid, 'the frames around the bad one arrive, in order');
        await expectWarn(code, from);
        assert.equal(closed, false, 'the connection stays open');
        await deliveredVia(sock);
      } finally {
        sock.destroy();
      }
    });
  }

  test('bad input - a zero-length frame is counted malformed_frame and the frames after it in the same write are delivered', { timeout: 20_000 }, async () => {
    await expectOneBadAmongValid(Buffer.alloc(4), 'ERR_INPUT_MALFORMED_FRAME', 'malformed_frame');
  });

  test('bad input - a msgpack bin value is counted wrong_type and the frames after it in the same write are delivered', { timeout: 20_000 }, async () => {
    await expectOneBadAmongValid(frameOf({ ...logEvent(0), podName: Buffer.from('nginx-1') }), 'ERR_INPUT_WRONG_TYPE', 'wrong_type');
  });

  test('bad input - a msgpack ext value (a timestamp, nested in labels) is counted wrong_type and the frames after it are delivered', { timeout: 20_000 }, async () => {
    // fixext 4, type -1 (msgpack's timestamp), inside an array under a known key.
    const ext = Buffer.of(0x91, 0xd6, 0xff, 0x65, 0x53, 0xf1, 0x00);
    await expectOneBadAmongValid(encodeFrame(mapWithRawValue({ type: 'ContainerLog', source: '/bin/sh' }, 'labels', ext)), 'ERR_INPUT_WRONG_TYPE', 'wrong_type');
  });

  test('bad input - a map with an integer key is counted wrong_type and the frames after it are delivered', { timeout: 20_000 }, async () => {
    const intKey = Buffer.concat([Buffer.of(0x83), pack('type'), pack('ContainerLog'), pack('source'), pack('/bin/sh'), Buffer.of(0x07), pack('seven')]);
    await expectOneBadAmongValid(encodeFrame(intKey), 'ERR_INPUT_WRONG_TYPE', 'wrong_type');
  });

  test('bad input - frames before garbage in the same write are delivered; the garbage and what follows it are counted, then the connection closes', { timeout: 20_000 }, async () => {
    await spaced(async (from) => {
      const before = await tcpStats();
      const sock = await connectTo(tcp);
      const closed = readUntilClosed(sock, 10_000);
      closed.catch(() => undefined);
      try {
        const valid = [nextSeq++, nextSeq++];
        const garbage = Buffer.concat([Buffer.of(0xc1), Buffer.from('not msgpack')]);
        const header = Buffer.alloc(4);
        header.writeUInt32BE(garbage.length);
        const afterIt = [frameOf(logEvent(0)), frameOf(logEvent(0)), frameOf(logEvent(0)).subarray(0, 9)];
        await write(sock, Buffer.concat([frameOf(logEvent(valid[0])), frameOf(logEvent(valid[1])), header, garbage, ...afterIt]));
        const text = (await closed).text;
        assert.match(text, /^armorfeed: ERR_INPUT_MALFORMED_FRAME\b/);
        await waitUntil(`events ${valid.join(',')} on WatchLogs`, () => valid.every((v) => seqs(logs).includes(v)), 5_000);
        // The garbage (malformed_frame), two whole frames after it and the half one (discarded).
        const want = { ...before.malformedByReason, malformed_frame: (before.malformedByReason.malformed_frame ?? 0) + 1, discarded: (before.malformedByReason.discarded ?? 0) + 3 };
        await waitUntil('malformed_frame +1 and discarded +3', async () => JSON.stringify((await tcpStats()).malformedByReason) === JSON.stringify(want), 5_000, async () => JSON.stringify(await tcpStats()));
        const s = await tcpStats();
        assert.equal(s.dropped.malformed_input, before.dropped.malformed_input + 4);
        assert.equal(s.events, before.events + 2);
        await waitUntil('a WARN naming the discarded frames', () => messages.messages.slice(from).some((m) => m.Level === 'WARN' && /ERR_INPUT_MALFORMED_FRAME.*3 frames after it discarded/.test(String(m.Message))), 5_000,
          () => JSON.stringify(messages.messages.slice(from).map((m) => String(m.Message))));
      } finally {
        sock.destroy();
      }
      await stillServing();
    });
  });

  test('bad input - half a frame left when the producer closes is counted truncated', { timeout: 20_000 }, async () => {
    await spaced(async () => {
      const seq = nextSeq++;
      const frame = frameOf(logEvent(0));
      await expectCounted('truncated', async () => {
        const sock = await connectTo(tcp);
        await write(sock, Buffer.concat([frameOf(logEvent(seq)), frame.subarray(0, frame.length - 3)]));
        await waitUntil(`event ${seq}`, () => seqs(logs).includes(seq), 5_000);
        sock.end();
      });
    });
  });

  test('bad input - a field of the wrong type is counted wrong_type and the connection keeps delivering', { timeout: 20_000 }, async () => {
    await expectDroppedButOpen(frameOf({ ...logEvent(0), pid: 'x' }), 'ERR_INPUT_WRONG_TYPE', 'wrong_type');
  });

  test('bad input - an unknown field is counted unknown_field', { timeout: 20_000 }, async () => {
    await expectDroppedButOpen(frameOf({ ...logEvent(0), podname: 'lower-case n is not upstream' }), 'ERR_INPUT_UNKNOWN_FIELD', 'unknown_field');
  });

  test('bad input - an unknown Type is counted unknown_type', { timeout: 20_000 }, async () => {
    await expectDroppedButOpen(frameOf(logEvent(0, { type: 'Bogus' })), 'ERR_INPUT_UNKNOWN_TYPE', 'unknown_type');
  });

  test('bad input - a msgpack array instead of a map is counted not_a_map', { timeout: 20_000 }, async () => {
    await expectDroppedButOpen(frameOf([logEvent(0)]), 'ERR_INPUT_NOT_A_MAP', 'not_a_map');
  });

  test('bad input - msgpack nested 50,000 levels deep is counted too_deep; that connection, a new one and the source keep delivering', { timeout: 30_000 }, async () => {
    // As a whole frame (an array of arrays...) and as the value of a known key.
    await expectDroppedButOpen(encodeFrame(nestedArrays(DEEP)), 'ERR_INPUT_TOO_DEEP', 'too_deep');
    await expectDroppedButOpen(encodeFrame(mapWithRawValue({ type: 'ContainerLog', source: '/bin/sh' }, 'labels', nestedArrays(DEEP))), 'ERR_INPUT_TOO_DEEP', 'too_deep');
    const fresh = await connectTo(tcp);
    try {
      await deliveredVia(fresh);
    } finally {
      fresh.destroy();
    }
  });

  test('bad input - integers outside their field\'s range are counted out_of_range, and the stream after them decodes', { timeout: 60_000 }, async (t) => {
    // Timestamp is int64 Unix seconds (within what a date can hold); the ids are int32.
    const cases: [string, Partial<Record<keyof IngestEvent, unknown>>][] = [
      ['timestamp 1e20 (float64)', { timestamp: 1e20 }],
      ['timestamp 1e300 (float64)', { timestamp: 1e300 }],
      ['timestamp -1e20 (float64)', { timestamp: -1e20 }],
      ['timestamp 2^63 (uint64)', { timestamp: 2n ** 63n }],
      ['pid 2^40 (float64)', { pid: 2 ** 40 }],
      ['uid 2^40 (int64)', { uid: 2n ** 40n }],
    ];
    for (const [what, extra] of cases) {
      await t.test(what, () => expectDroppedButOpen(frameOf({ ...logEvent(0), ...extra }), 'ERR_INPUT_OUT_OF_RANGE', 'out_of_range'));
    }
    const ended = await Promise.race([logs.ended, delay(20).then(() => undefined)]);
    assert.equal(ended, undefined, `WatchLogs ended: ${JSON.stringify(ended)}`);
  });

  test('bad input - a valid frame split into 1-byte writes is reassembled and delivered', { timeout: 20_000 }, async () => {
    const before = await tcpStats();
    const sock = await connectTo(tcp);
    try {
      const seqA = nextSeq++;
      const seqB = nextSeq++;
      // Two frames back to back, so the split also crosses a frame boundary.
      const bytes = Buffer.concat([frameOf(logEvent(seqA)), frameOf(logEvent(seqB))]);
      for (const b of bytes) {
        await write(sock, Buffer.of(b));
        await new Promise((resolve) => setImmediate(resolve));
      }
      await waitUntil(`events ${seqA} and ${seqB}`, () => seqs(logs).includes(seqA) && seqs(logs).includes(seqB), 5_000);
      const got = seqs(logs);
      assert.equal(got.filter((s) => s === seqA).length, 1);
      assert.equal(got.filter((s) => s === seqB).length, 1);
      assert.ok(got.indexOf(seqA) < got.indexOf(seqB), 'in order');
      await waitUntil('both events counted in', async () => (await tcpStats()).events === before.events + 2, 5_000);
      const after = await tcpStats();
      assert.deepEqual([after.dropped, after.malformedByReason], [before.dropped, before.malformedByReason], 'nothing counted as malformed');
    } finally {
      sock.destroy();
    }
    // Every valid event sent over the run arrived, once each.
    assert.deepEqual([...seqs(logs)].sort((a, b) => a - b), Array.from({ length: nextSeq - 1 }, (_, i) => i + 1));
  });
});

test('bad input - the Unix socket source delivers valid frames around a wrong_type and a too_deep one, and takes a new connection after', { timeout: 30_000 }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'armorfeed-bad-input-'));
  const sockPath = path.join(dir, 'a.sock');
  const serve = await startServe([...BASE_ARGS, '--source', 'socket', '--socket', sockPath]);
  const conn = connect(serve.addresses.grpc);
  try {
    assert.equal(serve.tokens.socket, sockPath);
    const logs = conn.watch('WatchLogs', 'all');
    await waitUntil('the WatchLogs stream registered', async () => (await fetchStats(serve.addresses.metrics)).clients.some((c) => c.open), 10_000);
    const sock = await connectTo(sockPath);
    try {
      await write(sock, Buffer.concat([frameOf(logEvent(1)), frameOf(logEvent(2))]));
      await logs.waitFor(2, 5_000);
      await write(sock, frameOf({ ...logEvent(3), uid: 'root' }));
      await write(sock, frameOf(logEvent(4)));
      await logs.waitFor(3, 5_000);
      await write(sock, Buffer.concat([encodeFrame(nestedArrays(DEEP)), frameOf(logEvent(5))]));
      await logs.waitFor(4, 5_000);
    } finally {
      sock.destroy();
    }
    // A new connection after the deep frame: the source is still listening.
    const again = await connectTo(sockPath);
    try {
      await write(again, frameOf(logEvent(6)));
      await logs.waitFor(5, 5_000);
    } finally {
      again.destroy();
    }
    await delay(200);
    assert.deepEqual(seqs(logs), [1, 2, 4, 5, 6]);
    assert.equal(logs.messages[0].Type, 'ContainerLog');
    const s = (await fetchStats(serve.addresses.metrics)).ingest.socket;
    assert.equal(s.events, 5);
    assert.equal(s.dropped.malformed_input, 2);
    assert.deepEqual(s.malformedByReason, { wrong_type: 1, too_deep: 1 });
  } finally {
    conn.close();
    const exit = await serve.stop('SIGTERM', 10_000);
    fs.rmSync(dir, { recursive: true, force: true });
    assert.equal(exit.code, 0, exit.stderr.slice(-2000));
  }
});

test('bad input - jsonl from stdin delivers valid lines and counts an invalid JSON line as invalid_json and a 50,000-deep one as too_deep', { timeout: 30_000 }, async () => {
  const child = spawn(process.execPath, [armorfeedMain, ...BASE_ARGS, '--source', 'jsonl', '--jsonl', '-'], { stdio: ['pipe', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (c: string) => {
    stderr += c;
  });
  const exited = exitCodeOf(child);
  let conn: TestClient | undefined;
  try {
    await waitUntil('the listening line', () => /armorfeed: listening .*\n/.test(stderr), 20_000, () => stderr);
    const ready = parseReadyLine(/armorfeed: listening (.*)\n/.exec(stderr)?.[1] ?? '');
    assert.equal(ready.tokens.jsonl, 'stdin');
    const metrics = ready.addresses.metrics;
    conn = connect(ready.addresses.grpc);
    const logs = conn.watch('WatchLogs', 'all');
    const messages = conn.watch('WatchMessages', '');
    await waitUntil('both streams registered', async () => (await fetchStats(metrics)).clients.filter((c) => c.open).length === 2, 10_000);

    // JSON.parse takes any depth; packing what it made for the ring must not recurse into it.
    const deep = `{"type":"ContainerLog","source":"/bin/sh","labels":${'['.repeat(DEEP)}${']'.repeat(DEEP)}}`;
    const lines = [
      JSON.stringify(logEvent(1)),
      JSON.stringify(logEvent(2)),
      '{"type": "ContainerLog", "hostPid": 99,',
      JSON.stringify(logEvent(3)),
      '',
      deep,
      JSON.stringify(logEvent(4)),
    ];
    child.stdin.write(lines.slice(0, 3).join('\n') + '\n');
    child.stdin.write(lines.slice(3).join('\n') + '\n');
    await logs.waitFor(4, 10_000);
    await waitUntil('invalid_json and too_deep counted', async () => (await fetchStats(metrics)).ingest.jsonl.dropped.malformed_input === 2, 5_000, async () => JSON.stringify((await fetchStats(metrics)).ingest.jsonl));
    await waitUntil('a WARN naming ERR_INPUT_INVALID_JSON', () => messages.messages.some((m) => m.Level === 'WARN' && String(m.Message).includes('ERR_INPUT_INVALID_JSON')), 5_000);
    child.stdin.end();
    await waitUntil('the jsonl source to finish at end of stdin', async () => (await fetchStats(metrics)).ingest.jsonl.finished, 5_000);

    assert.deepEqual(seqs(logs), [1, 2, 3, 4]);
    const s = (await fetchStats(metrics)).ingest.jsonl;
    assert.equal(s.events, 4);
    assert.equal(s.dropped.malformed_input, 2);
    assert.deepEqual(s.malformedByReason, { invalid_json: 1, too_deep: 1 });
  } finally {
    conn?.close();
    if (child.exitCode === null) child.kill('SIGTERM');
    const code = await awaitExit(child, exited, 10_000);
    assert.equal(code, 0, stderr.slice(-2000));
  }
});
