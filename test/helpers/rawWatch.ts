/**
 * A Watch* client on bare node:http2, for tests that need to know exactly what reached
 * the client's side of the wire. grpc-js is not used here because it discards messages
 * it has received but not yet handed to the application when a call ends with a non-OK
 * status; this client counts every complete gRPC message on the stream, as grpc-go
 * (karmor, the relay) does before it reports the status.
 *
 * It reads at `bytesPerSecond`: after each DATA chunk it pauses the stream for the time
 * that chunk "costs", so Node stops sending WINDOW_UPDATEs and the server's writes wait
 * on HTTP/2 flow control, as they do for a real slow consumer.
 */
import * as http2 from 'node:http2';
import { feederTypes } from '../../src/wire/proto';

export interface RawStatus {
  /** grpc-status from the trailers, or undefined when the stream ended without them. */
  code: number | undefined;
  details: string;
  /** RST_STREAM code Node saw (0 after a clean end). */
  rstCode: number;
  /** The session went away (GOAWAY or the connection closed) before the stream ended. */
  sessionClosed: boolean;
}

export interface RawWatcher {
  /** Complete messages received so far (message bodies, without the 5-byte prefix). */
  readonly messages: Buffer[];
  readonly ended: Promise<RawStatus>;
  /** Changes the read rate; 0 stops reading (the stream stays paused). */
  setRate(bytesPerSecond: number): void;
  close(): void;
}

export function rawWatch(address: string, rpc: 'WatchAlerts' | 'WatchLogs' | 'WatchMessages', filter: string, metadata: Record<string, string>, bytesPerSecond: number): RawWatcher {
  const session = http2.connect(`http://${address}`);
  let sessionClosed = false;
  session.on('error', () => undefined);
  session.on('goaway', () => (sessionClosed = true));
  session.on('close', () => (sessionClosed = true));
  const body = Buffer.from(feederTypes().RequestMessage.encode({ Filter: filter }).finish());
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(body.length, 1);
  const stream = session.request({
    ':method': 'POST',
    ':path': `/feeder.LogService/${rpc}`,
    'content-type': 'application/grpc',
    te: 'trailers',
    ...metadata,
  });
  stream.on('error', () => undefined);
  stream.end(Buffer.concat([prefix, body]));

  const messages: Buffer[] = [];
  let pending: Buffer = Buffer.alloc(0);
  let rate = bytesPerSecond;
  let timer: NodeJS.Timeout | undefined;
  let trailers: http2.IncomingHttpHeaders | undefined;
  stream.on('trailers', (t) => (trailers = t));
  stream.on('response', (headers) => {
    // A trailers-only response carries the status in the headers.
    if (headers['grpc-status'] !== undefined) trailers = headers;
  });
  stream.on('data', (chunk: Buffer) => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    while (pending.length >= 5) {
      const len = pending.readUInt32BE(1);
      if (pending.length < 5 + len) break;
      messages.push(pending.subarray(5, 5 + len));
      pending = pending.subarray(5 + len);
    }
    if (rate === Infinity) return;
    stream.pause();
    if (rate > 0) timer = setTimeout(() => stream.resume(), (chunk.length / rate) * 1000);
  });
  const ended = new Promise<RawStatus>((resolve) => {
    stream.on('close', () => {
      clearTimeout(timer);
      const code = trailers?.['grpc-status'];
      resolve({
        code: code === undefined ? undefined : Number(code),
        details: decodeURIComponent(String(trailers?.['grpc-message'] ?? '')),
        rstCode: stream.rstCode ?? 0,
        sessionClosed,
      });
      session.close();
    });
  });
  return {
    messages,
    ended,
    setRate(bytesPerSecond) {
      rate = bytesPerSecond;
      clearTimeout(timer);
      if (rate > 0) stream.resume();
    },
    close() {
      clearTimeout(timer);
      session.destroy();
    },
  };
}
