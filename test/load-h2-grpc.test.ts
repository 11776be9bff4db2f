import { spawn } from 'node:child_process';
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import fc from 'fast-check';
import * as grpc from '@grpc/grpc-js';
import { frameMessage, GrpcFramingError, GrpcMessageSplitter } from '../src/wire/grpc-framing';
import { FeederSession, GrpcCallError, type GrpcStatus } from '../src/wire/h2-grpc';
import { LoadClient } from '../src/load/load-client';
import { decodeReplyMessage, encodeNonceMessage, encodeRequestMessage } from '../src/wire/feederMessages';
import { grpcStatus } from '../src/wire/h2-grpc';
import { feederTypes, rpcPath } from '../src/wire/proto';
import { formatUpdatedTime, nowMicros } from '../src/wire/time';

function messages(sizes: number[]): Buffer[] {
  return sizes.map((n, i) => Buffer.alloc(n, i % 251));
}

test('load grpc framing - messages cut anywhere by chunk boundaries come out whole and in order; a stop resumes at the next message', () => {
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 0, max: 300 }), { minLength: 1, maxLength: 40 }), fc.array(fc.integer({ min: 1, max: 200 }), { minLength: 1, maxLength: 20 }), fc.integer({ min: 1, max: 7 }), (sizes, cuts, stopEvery) => {
      const want = messages(sizes);
      const stream = Buffer.concat(want.map((m) => frameMessage(m)));
      const got: Buffer[] = [];
      const splitter = new GrpcMessageSplitter((buf, start, end) => {
        got.push(Buffer.from(buf.subarray(start, end)));
        return got.length % stopEvery !== 0;
      });
      let pos = 0;
      for (let i = 0; pos < stream.length; i++) {
        const next = Math.min(stream.length, pos + cuts[i % cuts.length]);
        splitter.push(stream.subarray(pos, next));
        pos = next;
        // The reader of a stopped split resumes before the next chunk is read.
        while (splitter.isStopped) splitter.resume();
      }
      assert.equal(splitter.pendingBytes, 0);
      assert.deepEqual(got, want);
    }),
    { numRuns: 300 },
  );
});

test('load grpc framing - a stopped split keeps the rest of the chunk, also when more chunks arrive before it resumes', () => {
  const want = messages([10, 20, 30]);
  const stream = Buffer.concat(want.map((m) => frameMessage(m)));
  const got: number[] = [];
  const splitter = new GrpcMessageSplitter((_buf, start, end) => {
    got.push(end - start);
    return false;
  });
  assert.equal(splitter.push(stream.subarray(0, 40)), false);
  assert.deepEqual(got, [10]);
  assert.equal(splitter.push(stream.subarray(40)), false, 'a push while stopped does not visit');
  assert.deepEqual(got, [10]);
  splitter.resume();
  splitter.resume();
  assert.deepEqual(got, [10, 20, 30]);
  assert.equal(splitter.pendingBytes, 0);
});

test('load grpc framing - only the message a chunk boundary cuts is copied; the others are read in the chunk itself', () => {
  const stream = Buffer.concat(messages([40, 50, 60, 70]).map((m) => frameMessage(m)));
  const cut = 45 + 20; // inside the second message
  const first = stream.subarray(0, cut);
  const second = stream.subarray(cut);
  const bufs: Buffer[] = [];
  const splitter = new GrpcMessageSplitter((buf) => {
    bufs.push(buf);
    return true;
  });
  splitter.push(first);
  splitter.push(second);
  assert.equal(bufs.length, 4);
  assert.equal(bufs[0], first);
  assert.notEqual(bufs[1], first);
  assert.notEqual(bufs[1], second);
  assert.equal(bufs[1].length, 5 + 50, 'the joined buffer holds that one message');
  assert.equal(bufs[2], second);
  assert.equal(bufs[3], second);
});

test('load grpc framing - a compressed message or one over the size limit is a framing error', () => {
  const splitter = new GrpcMessageSplitter(() => true);
  const compressed = frameMessage(Buffer.from('x'));
  compressed[0] = 1;
  assert.throws(() => splitter.push(compressed), GrpcFramingError);
  const huge = Buffer.from([0, 0x7f, 0, 0, 0]);
  assert.throws(() => new GrpcMessageSplitter(() => true).push(huge), /over the 4194304-byte limit/);
});

test('load client - its hand-encoded HealthCheck and Watch requests are the bytes protobufjs makes from the .proto, and its reply decoding agrees', () => {
  const { NonceMessage, ReplyMessage, RequestMessage } = feederTypes();
  for (const nonce of [0, 1, 127, 128, 300, 0x7ffffffe, -1, -2147483648]) {
    assert.deepEqual(Buffer.from(encodeNonceMessage(nonce)), Buffer.from(NonceMessage.encode({ nonce }).finish()), `nonce ${nonce}`);
    assert.equal(decodeReplyMessage(Buffer.from(ReplyMessage.encode({ Retval: nonce }).finish())), nonce, `Retval ${nonce}`);
  }
  for (const filter of ['', 'policy', 'system', 'ü'.repeat(100)]) {
    assert.deepEqual(Buffer.from(encodeRequestMessage(filter)), Buffer.from(RequestMessage.encode({ Filter: filter }).finish()), `filter ${filter.slice(0, 10)}`);
  }
  // Unknown fields of every wire type are skipped, as protobufjs (a proto3 reader) skips them;
  // what cannot be read is an error, not a Retval.
  const withUnknown = Buffer.concat([
    Buffer.from([0x12, 3, 0x61, 0x62, 0x63]), // field 2, length-delimited
    Buffer.from(ReplyMessage.encode({ Retval: 4242 }).finish()),
    Buffer.from([0x19, 1, 2, 3, 4, 5, 6, 7, 8]), // field 3, fixed64
    Buffer.from([0xa5, 0x06, 9, 9, 9, 9]), // field 100, fixed32 (a two-byte tag)
    Buffer.from([0xa0, 0x06, 0x96, 0x01]), // field 100, varint
  ]);
  assert.equal(decodeReplyMessage(withUnknown), 4242);
  assert.equal((ReplyMessage.toObject(ReplyMessage.decode(withUnknown)) as { Retval?: number }).Retval, 4242);
  assert.throws(() => decodeReplyMessage(Buffer.from([0x12, 9, 0x61])), /truncated/);
  assert.throws(() => decodeReplyMessage(Buffer.from([0x08])), /truncated/);
  assert.throws(() => decodeReplyMessage(Buffer.from([0x0b])), /wire type 3/);
  assert.throws(() => decodeReplyMessage(Buffer.alloc(12, 0xff)), /truncated/);
  // The status table is grpc-js' own numbering.
  for (const [name, code] of Object.entries(grpcStatus)) assert.equal(code, grpc.status[name as keyof typeof grpc.status], name);
});

/**
 * A feeder stand-in on grpc-js: HealthCheck echoes the nonce; WatchAlerts sends
 * `alerts` events then ends OK, unless the filter is "fail" (UNAVAILABLE at once,
 * trailers-only) or the test asked the first N calls to fail.
 */
let server: grpc.Server;
let port = 0;
let failFirstCalls = 0;
let calls = 0;
const alerts = 2500;

before(async () => {
  const { Alert, NonceMessage, ReplyMessage, RequestMessage } = feederTypes();
  const identity = (b: Buffer): Buffer => b;
  server = new grpc.Server();
  server.addService(
    {
      HealthCheck: { path: rpcPath.HealthCheck, requestStream: false, responseStream: false, requestSerialize: identity, requestDeserialize: identity, responseSerialize: identity, responseDeserialize: identity },
      WatchAlerts: { path: rpcPath.WatchAlerts, requestStream: false, responseStream: true, requestSerialize: identity, requestDeserialize: identity, responseSerialize: identity, responseDeserialize: identity },
    },
    {
      HealthCheck: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
        const { nonce } = NonceMessage.decode(call.request) as unknown as { nonce: number };
        cb(null, Buffer.from(ReplyMessage.encode({ Retval: nonce }).finish()));
      },
      WatchAlerts: (call: grpc.ServerWritableStream<Buffer, Buffer>) => {
        const { Filter } = RequestMessage.decode(call.request) as unknown as { Filter: string };
        calls++;
        if (Filter === 'fail' || calls <= failFirstCalls) {
          call.emit('error', { code: grpc.status.UNAVAILABLE, details: 'not now, 100% sure' });
          return;
        }
        const now = nowMicros();
        for (let seq = 1; seq <= alerts; seq++) {
          call.write(Buffer.from(Alert.encode(Alert.fromObject({ UpdatedTime: formatUpdatedTime(now), HostPID: seq, PodName: 'p'.repeat(seq % 300) })).finish()));
        }
        call.end();
      },
    },
  );
  port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err !== null ? reject(err) : resolve(p))));
});

after(() => {
  server.forceShutdown();
});

test('load h2 - a server stream read on node:http2 delivers every message, then the OK status; an error status arrives with its details', async () => {
  const { RequestMessage } = feederTypes();
  const session = new FeederSession(`127.0.0.1:${port}`, { windowBytes: 1 << 20 });
  try {
    const sizes: number[] = [];
    const status = await new Promise<GrpcStatus>((resolve) => {
      session.serverStream(rpcPath.WatchAlerts, RequestMessage.encode({ Filter: 'policy' }).finish(), (_buf, start, end) => sizes.push(end - start) > 0, resolve);
    });
    assert.equal(status.code, grpc.status.OK, status.details);
    assert.equal(sizes.length, alerts);
    const failed = await new Promise<GrpcStatus>((resolve) => {
      session.serverStream(rpcPath.WatchAlerts, RequestMessage.encode({ Filter: 'fail' }).finish(), () => true, resolve);
    });
    assert.equal(failed.code, grpc.status.UNAVAILABLE);
    assert.equal(failed.details, 'not now, 100% sure');
    // A unary call to a method the server does not have: UNIMPLEMENTED, as a typed error.
    await assert.rejects(session.unary('/feeder.LogService/Nope', Buffer.alloc(0), 2000), (err: unknown) => err instanceof GrpcCallError && err.status.code === grpc.status.UNIMPLEMENTED);
  } finally {
    session.close();
  }
});

test('load h2 - a stream stopped after one message holds the rest until it resumes, and nothing is lost', async () => {
  const { RequestMessage } = feederTypes();
  const session = new FeederSession(`127.0.0.1:${port}`);
  try {
    let n = 0;
    let held = true;
    const status = await new Promise<GrpcStatus>((resolve) => {
      const call = session.serverStream(
        rpcPath.WatchAlerts,
        RequestMessage.encode({ Filter: 'policy' }).finish(),
        () => {
          n++;
          if (n === 1) {
            setTimeout(() => {
              assert.equal(n, 1, 'no message is read while the stream is stopped');
              held = false;
              call.resume();
            }, 300);
            return false;
          }
          return true;
        },
        resolve,
      );
    });
    assert.equal(held, false, 'the status comes after the held messages');
    assert.equal(status.code, grpc.status.OK, status.details);
    assert.equal(n, alerts);
  } finally {
    session.close();
  }
});

test('load client - HealthCheck, then a stream that fails is counted and reopened, and the events of the reopened stream arrive', async () => {
  calls = 0;
  failFirstCalls = 1;
  const client = new LoadClient({
    index: 0,
    addr: { host: '127.0.0.1', port },
    name: 'h2-test',
    streams: ['alerts'],
    behaviour: { kind: 'fast' },
    alertFilter: 'policy',
    logFilter: 'system',
    trackSequence: true,
  });
  try {
    await client.connect();
    // The last event can arrive a turn before the stream's end (its trailers): wait for both.
    for (let i = 0; i < 200 && (client.received < alerts || client.result().streams[0].end !== 'eof'); i++) await new Promise((r) => setTimeout(r, 25));
    const r = client.result();
    assert.equal(r.received, alerts);
    assert.equal(r.sequence.distinct, alerts);
    assert.equal(r.streams[0].reconnects, 1);
    assert.equal(r.streams[0].end, 'eof');
    assert.deepEqual(r.failures, ['client 0 alerts: UNAVAILABLE: not now, 100% sure']);
    assert.equal(client.latencyFromUpdated.count, alerts);
  } finally {
    failFirstCalls = 0;
    client.stop();
  }
});

test('wire h2 - a peer cannot push streams at the reader; one that stops answering (SIGSTOP) is found by the keepalive PING: the open stream ends UNAVAILABLE, saying so', { timeout: 20_000 }, async () => {
  // A bare HTTP/2 server in a child process that answers a call's headers and keeps it
  // open, and says whether it may push streams to the client.
  const script = [
    "const http2 = require('node:http2');",
    "const server = http2.createServer();",
    "server.on('stream', (s) => { process.stdout.write('pushAllowed=' + s.pushAllowed + '\\n'); s.respond({ ':status': 200, 'content-type': 'application/grpc' }); });",
    "server.listen(0, '127.0.0.1', () => process.stdout.write(String(server.address().port) + '\\n'));",
  ].join('\n');
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    const line = (n: number): Promise<string> =>
      new Promise((resolve, reject) => {
        const look = (): void => {
          const lines = out.split('\n');
          if (lines.length > n + 1) resolve(lines[n]);
          else if (child.exitCode !== null) reject(new Error(`the HTTP/2 peer exited (${child.exitCode})`));
          else setTimeout(look, 10);
        };
        look();
      });
    const port = Number(await line(0));
    const session = new FeederSession(`127.0.0.1:${port}`, { keepalive: { intervalMs: 200, timeoutMs: 400 } });
    let messagesSeen = 0;
    const ended = new Promise<GrpcStatus>((resolve) => session.serverStream(rpcPath.WatchLogs, encodeRequestMessage('system'), () => ++messagesSeen > 0, resolve));
    assert.equal(await line(1), 'pushAllowed=false', 'the reader refuses server push (SETTINGS_ENABLE_PUSH 0)');
    // Answered PINGs first: the stream stays open.
    await new Promise((resolve) => setTimeout(resolve, 700));
    const early = await Promise.race([ended, Promise.resolve(undefined)]);
    assert.equal(early, undefined, 'the stream stays open while the peer answers its PINGs');
    child.kill('SIGSTOP');
    const status = await ended;
    assert.equal(status.code, grpcStatus.UNAVAILABLE);
    assert.match(status.details, /keepalive PING/);
    assert.equal(messagesSeen, 0);
    session.close();
  } finally {
    child.kill('SIGCONT');
    child.kill('SIGKILL');
  }
});
