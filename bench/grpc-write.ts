/**
 * Stage 3, the wire: a real grpc-js server (logServiceDefinition) whose WatchLogs
 * handler writes MESSAGES pre-encoded synthetic Log messages, and a real grpc-js client
 * on 127.0.0.1 (same process, same event loop) counting them until all have arrived.
 * Candidate: runs of RUN framed messages, one call.write each, via framedSink(call,
 * 'batched'). Baseline: one call.write per message via framedSink(call, 'per-message').
 * Both keep at most WRITES_IN_FLIGHT writes unconfirmed, as Subscriber.pump does, so
 * neither outruns the socket.
 */
import * as grpc from '@grpc/grpc-js';
import { framedSink, keepaliveOptions, logServiceDefinition, type WriteMode } from '../src/server';
import type { FramedSink } from '../src/fanout/subscriber';
import { feederTypes, rpcPath } from '../src/wire/proto';
import { msgpackBatch, RingBatchEncoder } from './encode';
import { check, runPair, type BenchSettings, type PairResult } from './common';

export const MESSAGES = 20_000;
export const RUN = 64;
const WRITES_IN_FLIGHT = 2;
const MODE_KEY = 'x-bench-write-mode';

/** Splits MESSAGES framed messages into runs of `per` messages (views, no copies). */
function runsOf(bytes: Uint8Array, ends: number[], per: number): Uint8Array[] {
  const runs: Uint8Array[] = [];
  for (let i = 0; i < ends.length; i += per) {
    const start = i === 0 ? 0 : ends[i - 1];
    runs.push(bytes.subarray(start, ends[Math.min(i + per, ends.length) - 1]));
  }
  return runs;
}

/** Writes every run through the sink with at most WRITES_IN_FLIGHT unconfirmed, then ends the call. */
function writeRuns(call: grpc.ServerWritableStream<unknown, unknown>, sink: FramedSink, runs: Uint8Array[]): void {
  let next = 0;
  let inFlight = 0;
  let failed = false;
  const pump = (): void => {
    while (!failed && inFlight < WRITES_IN_FLIGHT && next < runs.length) {
      inFlight++;
      sink.write(runs[next++], (err) => {
        inFlight--;
        if (err) {
          failed = true;
          return;
        }
        if (next < runs.length) pump();
        else if (inFlight === 0) call.end();
      });
    }
  };
  pump();
}

function bind(server: grpc.Server): Promise<number> {
  return new Promise((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))),
  );
}

export async function benchGrpcWrite(settings: BenchSettings): Promise<PairResult> {
  const logs = new RingBatchEncoder(msgpackBatch(MESSAGES, 0)).encode().logs;
  check(logs.count === MESSAGES, `encoded ${logs.count} logs, expected ${MESSAGES}`);
  const framed = { logs: logs.bytes, logEnds: Array.from(logs.ends) };
  const bodyBytes = framed.logs.length - MESSAGES * 5;
  const runs: Record<WriteMode, Uint8Array[]> = {
    batched: runsOf(framed.logs, framed.logEnds, RUN),
    'per-message': runsOf(framed.logs, framed.logEnds, 1),
  };
  const modesSeen = new Set<string>();

  const server = new grpc.Server({ ...keepaliveOptions });
  const watchLogs = (call: grpc.ServerWritableStream<{ Filter: string }, Buffer>): void => {
    const wanted = String(call.metadata.get(MODE_KEY)[0]) as WriteMode;
    const generic = call as unknown as grpc.ServerWritableStream<unknown, unknown>;
    const sink = framedSink(generic, wanted);
    modesSeen.add(`${wanted}->${sink.mode}`);
    writeRuns(generic, sink, runs[wanted]);
  };
  // Only WatchLogs is measured; the other methods answer at once.
  const endAtOnce = (call: grpc.ServerWritableStream<unknown, unknown>): void => void call.end();
  server.addService(logServiceDefinition(), {
    HealthCheck: (_call: unknown, callback: grpc.sendUnaryData<unknown>) => callback({ code: grpc.status.UNIMPLEMENTED }),
    WatchAlerts: endAtOnce,
    WatchMessages: endAtOnce,
    WatchLogs: watchLogs,
  });
  const port = await bind(server);
  const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), { ...keepaliveOptions, 'grpc.max_receive_message_length': -1 });
  const { RequestMessage } = feederTypes();
  const serialize = (v: { Filter: string }): Buffer => Buffer.from(RequestMessage.encode(v).finish());

  let receivedBytes = 0;
  const watch = (mode: WriteMode): Promise<void> =>
    new Promise((resolve, reject) => {
      const metadata = new grpc.Metadata();
      metadata.set(MODE_KEY, mode);
      const call = client.makeServerStreamRequest(rpcPath.WatchLogs, serialize, (b: Buffer) => b, { Filter: 'all' }, metadata);
      let count = 0;
      call.on('data', (b: Buffer) => {
        receivedBytes += b.length;
        if (++count === MESSAGES) resolve();
      });
      call.on('error', reject);
      call.on('status', (s: grpc.StatusObject) => {
        if (count !== MESSAGES) reject(new Error(`WatchLogs (${mode}) ended with ${s.code} ${s.details} after ${count} of ${MESSAGES} messages`));
      });
    });

  try {
    for (const mode of ['batched', 'per-message'] as const) {
      receivedBytes = 0;
      await watch(mode);
      check(receivedBytes === bodyBytes, `${mode}: client received ${receivedBytes} bytes, expected ${bodyBytes}`);
    }
    // The batched mode relies on grpc-js internals; if it fell back, the pair compares nothing.
    check(modesSeen.has('batched->batched') && modesSeen.has('per-message->per-message'), `write modes in use: ${[...modesSeen].join(', ')}`);

    const result = await runPair(
      'batched framing vs per-message call.write()',
      settings.io,
      'message',
      MESSAGES,
      { name: `framedSink 'batched': runs of ${RUN} framed messages, 1 write each, <= ${WRITES_IN_FLIGHT} in flight`, fn: () => watch('batched'), async: true },
      { name: `framedSink 'per-message': 1 call.write per message, <= ${WRITES_IN_FLIGHT} in flight`, fn: () => watch('per-message'), async: true },
    );
    result.notes.push(
      `${MESSAGES} Log messages per iteration, ${(bodyBytes / MESSAGES).toFixed(0)} bytes each; server and client share one event loop on 127.0.0.1, ` +
        'so both sides include the client\'s receive cost',
    );
    return result;
  } finally {
    client.close();
    server.forceShutdown();
  }
}
