/**
 * gRPC calls to a feeder made on node:http2 directly, for the two readers of feeds whose
 * cost per message matters: the load client (one HTTP/2 session per client, as one karmor
 * process has one connection) and the relay's upstreams (one per node): a unary call for
 * HealthCheck and server-streaming calls for the Watch* RPCs.
 *
 * Why not the grpc-js client: on its receive path every message goes through a
 * Readable stream of its own, an interceptor chain, a filter stack of promises and a
 * deserializer call. Measured at 50,000 ev/s with one client (Go producer into gofeeder,
 * 300,000 events, the same peek and histogram on both paths): grpc-js took 3.3 s of
 * thread time against 1.2 s for this reader, twice the GC, and while its code was still
 * cold it read about 20,000 ev/s, so every run began with ~100 ms of backlog (its p99
 * was 65-210 ms where the Go loadclient measured 4-5 ms). Here a DATA chunk of dozens of
 * messages costs one callback and each message a wire walk in place (./grpc-framing.ts).
 *
 * Flow control is node:http2's, as with grpc-js: a paused stream stops consuming, its
 * window closes and the broker's queue for this client fills.
 *
 * It implements what those readers need and no more: no compression (none is asked
 * for), no retries, no name resolution beyond host:port; TLS (mutual, as the relay's
 * towards its nodes) and keepalive pings when asked for.
 */
import { randomInt } from 'node:crypto';
import * as http2 from 'node:http2';
import { ArmorfeedError } from '../errors';
import { decodeReplyMessage, encodeNonceMessage, encodeRequestMessage } from './feederMessages';
import { frameMessage, GrpcMessageSplitter, type MessageVisitor } from './grpc-framing';
import { rpcPath } from './proto';

/**
 * gRPC status codes (the spec's numbers, as grpc-js' `status`). Spelled out here so a
 * load worker does not load grpc-js (~60 ms of CPU per thread) for a table.
 */
export const grpcStatus = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;

const statusNames = Object.keys(grpcStatus);

export interface GrpcStatus {
  /** One of grpcStatus. */
  code: number;
  details: string;
}

/** A call that ended with a non-OK status (or did not answer in time). */
export class GrpcCallError extends ArmorfeedError {
  constructor(
    readonly rpc: string,
    readonly status: GrpcStatus,
  ) {
    super('ERR_GRPC_CALL', `${rpc}: ${statusName(status.code)}: ${status.details}`);
  }
}

export function statusName(code: number): string {
  return statusNames[code] ?? String(code);
}

/** gRPC over HTTP/2: a non-200 response maps to a status (the gRPC spec's table, in short). */
function statusOfHttp(httpStatus: number): number {
  if (httpStatus === 401) return grpcStatus.UNAUTHENTICATED;
  if (httpStatus === 403) return grpcStatus.PERMISSION_DENIED;
  if (httpStatus === 404) return grpcStatus.UNIMPLEMENTED;
  if (httpStatus === 429 || httpStatus === 502 || httpStatus === 503 || httpStatus === 504) return grpcStatus.UNAVAILABLE;
  return grpcStatus.UNKNOWN;
}

function statusOfHeaders(h: http2.IncomingHttpHeaders): GrpcStatus | undefined {
  const raw = h['grpc-status'];
  if (raw === undefined) return undefined;
  const code = Number(raw);
  let details = String(h['grpc-message'] ?? '');
  try {
    details = decodeURIComponent(details);
  } catch {
    // Not percent-encoded after all: keep it as sent.
  }
  return { code: Number.isInteger(code) && code >= 0 && code <= 16 ? code : grpcStatus.UNKNOWN, details };
}

/**
 * One call's response: messages go to `visit` (which may stop the reading after any
 * of them, see `resume`), and `onEnd` gets the status exactly once, after the last message.
 */
export class GrpcResponseReader {
  private readonly splitter: GrpcMessageSplitter;
  private status: GrpcStatus | undefined;
  private ended = false;
  private cancelled = false;

  constructor(
    private readonly stream: http2.ClientHttp2Stream,
    visit: MessageVisitor,
    private readonly onEnd: (status: GrpcStatus) => void,
    sessionError: () => string | undefined,
  ) {
    this.splitter = new GrpcMessageSplitter(visit);
    stream.on('response', (headers) => {
      const httpStatus = Number(headers[':status']);
      if (httpStatus !== 200) this.finish({ code: statusOfHttp(httpStatus), details: `HTTP status ${httpStatus}` });
      // Trailers-only: an error (or an empty OK) sent without a body.
      else this.status = statusOfHeaders(headers) ?? this.status;
    });
    stream.on('trailers', (trailers) => {
      this.status = statusOfHeaders(trailers) ?? { code: grpcStatus.INTERNAL, details: 'trailers without grpc-status' };
    });
    stream.on('data', (chunk: Buffer) => {
      if (this.ended) return;
      try {
        if (!this.splitter.push(chunk)) stream.pause();
      } catch (err) {
        this.fail(err as Error);
      }
    });
    // 'end' comes only once every chunk was taken, so the status follows the last message.
    stream.on('end', () => {
      if (this.splitter.pendingBytes > 0) this.finish({ code: grpcStatus.INTERNAL, details: `stream ended inside a message (${this.splitter.pendingBytes} bytes left)` });
      else this.finish(this.status ?? { code: grpcStatus.INTERNAL, details: 'stream ended without a grpc-status' });
    });
    stream.on('error', (err: Error) => this.finish({ code: grpcStatus.UNAVAILABLE, details: sessionError() ?? err.message }));
    stream.on('close', () => {
      if (this.cancelled) this.finish({ code: grpcStatus.CANCELLED, details: 'cancelled by the client' });
      else this.finish(this.status ?? { code: grpcStatus.UNAVAILABLE, details: sessionError() ?? `stream closed (HTTP/2 code ${stream.rstCode ?? '?'})` });
    });
  }

  /** Goes on reading after the visitor stopped it. */
  resume(): void {
    if (this.ended) return;
    try {
      if (this.splitter.resume()) this.stream.resume();
    } catch (err) {
      this.fail(err as Error);
    }
  }

  /** Ends the call from this side (RST_STREAM CANCEL); `onEnd` gets CANCELLED. */
  cancel(): void {
    if (this.ended) return;
    this.cancelled = true;
    this.finish({ code: grpcStatus.CANCELLED, details: 'cancelled by the client' });
  }

  private fail(err: Error): void {
    this.finish({ code: grpcStatus.INTERNAL, details: `bad message: ${err.message}` });
  }

  private finish(status: GrpcStatus): void {
    if (this.ended) return;
    this.ended = true;
    if (!this.stream.closed) this.stream.close(status.code === grpcStatus.OK ? http2.constants.NGHTTP2_NO_ERROR : http2.constants.NGHTTP2_CANCEL);
    this.onEnd(status);
  }
}

export interface SessionOptions {
  /** HTTP/2 flow-control window of the connection and of each stream; undefined = the 64 KB default. */
  windowBytes?: number;
  /** Extra request headers (gRPC metadata) sent on every call. */
  metadata?: Record<string, string>;
  /** user-agent of every call (default armorfeed-load). */
  userAgent?: string;
  /** TLS (https): the CAs the server's certificate must chain to, and our certificate for mutual TLS. */
  tls?: { ca?: Buffer; cert?: Buffer; key?: Buffer };
  /**
   * A PING every intervalMs; a session whose PING is not answered within timeoutMs is
   * destroyed (its calls end UNAVAILABLE), as grpc's keepalive finds a peer that vanished.
   */
  keepalive?: { intervalMs: number; timeoutMs: number };
}

/** One HTTP/2 connection to a feeder; it reconnects on the next call once it was lost. */
export class FeederSession {
  private session: http2.ClientHttp2Session | undefined;
  private lastError: string | undefined;

  constructor(
    private readonly authority: string,
    private readonly options: SessionOptions = {},
  ) {}

  /** The session, connecting first if there is none or it was closed. */
  private current(): http2.ClientHttp2Session {
    if (this.session !== undefined && !this.session.closed && !this.session.destroyed) return this.session;
    const { windowBytes, tls, keepalive } = this.options;
    const session = http2.connect(`${tls !== undefined ? 'https' : 'http'}://${this.authority}`, {
      // No server push: a feeder never pushes, and a peer's pushed streams would be held here.
      settings: { enablePush: false, ...(windowBytes !== undefined ? { initialWindowSize: windowBytes } : {}) },
      // As grpc-js: node:http2 misbehaves when it reaches this cap (in MB), so it is out of reach.
      maxSessionMemory: Number.MAX_SAFE_INTEGER,
      ...(tls !== undefined ? { ca: tls.ca, cert: tls.cert, key: tls.key, ALPNProtocols: ['h2'] } : {}),
    });
    this.lastError = undefined;
    if (windowBytes !== undefined) session.once('remoteSettings', () => session.setLocalWindowSize(windowBytes));
    session.on('error', (err: Error) => (this.lastError = err.message));
    let pinger: NodeJS.Timeout | undefined;
    if (keepalive !== undefined) {
      pinger = setInterval(() => {
        const timer = setTimeout(() => session.destroy(new Error(`no answer to a keepalive PING within ${keepalive.timeoutMs} ms`)), keepalive.timeoutMs);
        timer.unref();
        try {
          session.ping(() => clearTimeout(timer));
        } catch {
          clearTimeout(timer);
        }
      }, keepalive.intervalMs);
      pinger.unref();
    }
    session.on('close', () => {
      clearInterval(pinger);
      if (this.session === session) this.session = undefined;
    });
    this.session = session;
    return session;
  }

  private request(path: string): http2.ClientHttp2Stream {
    return this.current().request({
      ':method': 'POST',
      ':path': path,
      'content-type': 'application/grpc',
      te: 'trailers',
      'user-agent': this.options.userAgent ?? 'armorfeed-load',
      ...this.options.metadata,
    });
  }

  /** A unary call: one request message, one response message (its bytes). */
  unary(path: string, request: Uint8Array, deadlineMs: number): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const stream = this.request(path);
      let reply: Buffer | undefined;
      const reader = new GrpcResponseReader(
        stream,
        (buf, start, end) => {
          reply = Buffer.from(buf.subarray(start, end));
          return true;
        },
        (status) => {
          clearTimeout(timer);
          if (status.code !== grpcStatus.OK) reject(new GrpcCallError(path, status));
          else if (reply === undefined) reject(new GrpcCallError(path, { code: grpcStatus.INTERNAL, details: 'no response message' }));
          else resolve(reply);
        },
        () => this.lastError,
      );
      const timer = setTimeout(() => {
        reader.cancel();
        reject(new GrpcCallError(path, { code: grpcStatus.DEADLINE_EXCEEDED, details: `no answer within ${deadlineMs} ms` }));
      }, deadlineMs);
      stream.end(frameMessage(request));
    });
  }

  /** A server-streaming call; `visit` gets each message in place (see GrpcMessageSplitter). */
  serverStream(path: string, request: Uint8Array, visit: MessageVisitor, onEnd: (status: GrpcStatus) => void): GrpcResponseReader {
    const stream = this.request(path);
    const reader = new GrpcResponseReader(stream, visit, onEnd, () => this.lastError);
    stream.end(frameMessage(request));
    return reader;
  }

  /**
   * HealthCheck with a random int31 nonce, as karmor sends it: the nonce and the Retval the
   * feeder answered (a KubeArmor feeder echoes it). Rejects with GrpcCallError when the call
   * fails, with an Error when the answer is not a ReplyMessage.
   */
  async healthCheck(deadlineMs: number): Promise<{ nonce: number; retval: number }> {
    const nonce = randomInt(1, 2 ** 31);
    const reply = await this.unary(rpcPath.HealthCheck, encodeNonceMessage(nonce), deadlineMs);
    return { nonce, retval: decodeReplyMessage(reply) };
  }

  /** A Watch* call (`path`) with its Filter; `visit` gets each event in place (see serverStream). */
  watch(path: string, filter: string, visit: MessageVisitor, onEnd: (status: GrpcStatus) => void): GrpcResponseReader {
    return this.serverStream(path, encodeRequestMessage(filter), visit, onEnd);
  }

  close(): void {
    this.session?.close();
    this.session = undefined;
  }
}
