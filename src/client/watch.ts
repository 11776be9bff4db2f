/**
 * The reconnecting feeder client behind `armorfeed log`.
 *
 * One session = one gRPC channel, with the same RPC order as karmor (3.3): the Watch*
 * streams are opened first, then HealthCheck with a random int31 nonce. When any
 * stream of a session ends (error or OK), the whole session is torn down (like the
 * relay, 4.2) and a new one is started after a capped exponential backoff with jitter;
 * karmor exits instead (upstream issue 1331). A nonce mismatch is never retried.
 *
 *   connecting --health ok--> up --stream ends--> backoff --timer--> connecting
 *        \--health mismatch / UNIMPLEMENTED--> failed        (any state) --stop()--> stopped
 */
import { randomInt } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import type * as protobuf from 'protobufjs';
import { ArmorfeedError, FilterError, HealthMismatchError } from '../errors';
import type { ClientTlsMaterial } from '../tls';
import { compileServerFilter } from '../wire/goRegexp';
import { feederTypes, filterMetadataKeys, rpcPath, type StreamKind } from '../wire/proto';
import type { WireRecord } from './gojson';

export type LogFilter = 'policy' | 'system' | 'all';

/** A stream ended and reconnecting is off (karmor's behaviour), or the first connection failed. */
export class FeederStreamError extends ArmorfeedError {
  readonly grpcCode: number | undefined;
  constructor(code: 'ERR_FEEDER_UNREACHABLE' | 'ERR_STREAM_BROKEN', message: string, grpcCode?: number) {
    super(code, message);
    this.grpcCode = grpcCode;
  }
}

export interface BackoffOptions {
  /** First delay before reconnecting, in ms. */
  initialMs: number;
  /** Upper bound of the delay, in ms. */
  maxMs: number;
}

export interface ServerFilter {
  namespace?: string;
  operation?: string;
  logType?: string;
}

export interface WatchOptions {
  target: string;
  streams: Readonly<Record<StreamKind, boolean>>;
  logFilter: LogFilter;
  /** Sent as x-armorfeed-* metadata on WatchAlerts/WatchLogs; upstream servers ignore it. */
  serverFilter?: ServerFilter;
  clientName?: string;
  /** Per-node view: sent as x-armorfeed-node on every stream (an armorfeed server or relay filters on HostName). */
  node?: string;
  /**
   * Replay (an armorfeed relay on JetStream): x-armorfeed-since with this RFC 3339 time on
   * the first session's streams; a session after a break continues live.
   */
  since?: string;
  reconnect: boolean;
  backoff: BackoffOptions;
  /** Deadline of the HealthCheck call, in ms (karmor sets none; a hung peer must not stall us). */
  healthTimeoutMs: number;
  /** `--secure`: mTLS with this material (the server is verified against its CA); plaintext when absent. */
  tls?: ClientTlsMaterial;
}

export interface WatchEvents {
  onEvent(stream: StreamKind, rec: WireRecord): void;
  /** A status line for stderr (karmor's own lines, and reconnect notices). */
  onStatus(line: string): void;
}

/** Capped exponential backoff with "equal jitter": half the step is fixed, half is random. */
export function backoffDelay(attempt: number, opts: BackoffOptions, random: () => number = Math.random): number {
  const step = Math.min(opts.maxMs, opts.initialMs * 2 ** Math.min(attempt, 30));
  return Math.round(step / 2 + random() * (step / 2));
}

const streamRpc: Readonly<Record<StreamKind, { path: string; type: 'Message' | 'Alert' | 'Log'; rpc: string }>> = {
  messages: { path: rpcPath.WatchMessages, type: 'Message', rpc: 'WatchMessages' },
  alerts: { path: rpcPath.WatchAlerts, type: 'Alert', rpc: 'WatchAlerts' },
  logs: { path: rpcPath.WatchLogs, type: 'Log', rpc: 'WatchLogs' },
};

/** Order in which karmor opens the streams. */
const openOrder: readonly StreamKind[] = ['messages', 'alerts', 'logs'];

/** gRPC metadata values must be printable ASCII; anything else cannot ride in a header. */
const headerSafe = /^[\x20-\x7e]*$/;

/**
 * Why `pattern` cannot be a server-side filter, or undefined when it can. armorfeed would
 * end the stream with INVALID_ARGUMENT for a pattern over its limits, and reconnecting
 * would only repeat that, so such a filter stays on this side.
 */
function serverFilterProblem(key: string, pattern: string): string | undefined {
  if (!headerSafe.test(pattern)) return 'is not printable ASCII';
  try {
    compileServerFilter(key, pattern);
  } catch (err) {
    if (err instanceof FilterError) return `is not a pattern armorfeed takes as a server-side filter (${err.code})`;
    throw err;
  }
  return undefined;
}

/**
 * Decodes one Alert, Log or Message as the client sees it. `defaults: false` keeps field
 * presence, so a sub-message that was on the wire stays an object even when empty
 * (Go then prints `{}`); int64 comes as a decimal string and is made exact by gojson.
 */
export function decodeWire(type: protobuf.Type, buf: Uint8Array): WireRecord {
  return type.toObject(type.decode(buf), { longs: String, defaults: false });
}

export function wantsStream(name: StreamKind, filter: LogFilter): boolean {
  if (name === 'alerts') return filter === 'all' || filter === 'policy';
  if (name === 'logs') return filter === 'all' || filter === 'system';
  return true;
}

interface Session {
  client: grpc.Client;
  calls: grpc.ClientReadableStream<WireRecord>[];
  closing: boolean;
  /** HealthCheck succeeded on this session. */
  up: boolean;
}

export class FeederWatch {
  /** Sessions re-established after a break. */
  reconnects = 0;
  /** Connection attempts that failed (initial or after a break). */
  failedAttempts = 0;
  /** Total time without a healthy session after the first one, in ms. */
  disconnectedMs = 0;
  /** Filters the server could not take (non-ASCII, or refused by its limits), and why; applied client-side only. */
  readonly skippedServerFilterKeys: { key: string; why: string }[] = [];

  private session: Session | undefined;
  private stopped = false;
  private paused = false;
  private everUp = false;
  private brokenAt = 0;
  private attempt = 0;
  private timer: NodeJS.Timeout | undefined;
  private settle: { resolve: () => void; reject: (err: Error) => void } | undefined;
  private readonly alertLogMetadata: grpc.Metadata;
  private readonly commonMetadata: grpc.Metadata;
  private readonly credentials: grpc.ChannelCredentials;

  constructor(
    private readonly opts: WatchOptions,
    private readonly events: WatchEvents,
  ) {
    this.credentials =
      opts.tls !== undefined ? grpc.credentials.createSsl(opts.tls.rootCerts, opts.tls.privateKey, opts.tls.certChain) : grpc.credentials.createInsecure();
    this.commonMetadata = new grpc.Metadata();
    if (opts.clientName !== undefined && opts.clientName !== '') {
      this.commonMetadata.set(filterMetadataKeys.clientName, opts.clientName);
    }
    if (opts.node !== undefined && opts.node !== '' && headerSafe.test(opts.node)) {
      this.commonMetadata.set(filterMetadataKeys.node, opts.node);
    }
    this.alertLogMetadata = this.commonMetadata.clone();
    for (const key of ['namespace', 'operation', 'logType'] as const) {
      const value = opts.serverFilter?.[key];
      if (value === undefined || value === '') continue;
      const why = serverFilterProblem(filterMetadataKeys[key], value);
      if (why === undefined) this.alertLogMetadata.set(filterMetadataKeys[key], value);
      else this.skippedServerFilterKeys.push({ key, why });
    }
  }

  private streamMetadata(name: StreamKind): grpc.Metadata {
    const metadata = name === 'messages' ? this.commonMetadata.clone() : this.alertLogMetadata.clone();
    if (!this.everUp && this.opts.since !== undefined) metadata.set(filterMetadataKeys.since, this.opts.since);
    return metadata;
  }

  /** Runs until stop() (resolves) or a failure that must not be retried (rejects). */
  run(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.settle = { resolve, reject };
      this.connect();
    });
  }

  /** Ends every stream and the channel; run() resolves. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    if (this.brokenAt !== 0) this.disconnectedMs += Date.now() - this.brokenAt;
    this.closeSession();
    this.settle?.resolve();
  }

  /** Stops reading (grpc flow control then pushes back on the server) until resume(). */
  pause(): void {
    this.paused = true;
    for (const call of this.session?.calls ?? []) call.pause();
  }

  resume(): void {
    this.paused = false;
    for (const call of this.session?.calls ?? []) call.resume();
  }

  get connected(): boolean {
    return this.session !== undefined && this.brokenAt === 0 && this.everUp;
  }

  private fail(err: Error): void {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.closeSession();
    this.settle?.reject(err);
  }

  private connect(): void {
    if (this.stopped) return;
    const types = feederTypes();
    const client = new grpc.Client(this.opts.target, this.credentials, {
      // Our own backoff decides when to retry; a new channel per session starts at once.
      'grpc.initial_reconnect_backoff_ms': 100,
      'grpc.max_reconnect_backoff_ms': 1000,
    });
    const session: Session = { client, calls: [], closing: false, up: false };
    this.session = session;

    for (const name of openOrder) {
      if (!this.opts.streams[name]) continue;
      const { path, type } = streamRpc[name];
      const msgType = types[type];
      const call = client.makeServerStreamRequest<{ Filter: string }, WireRecord>(
        path,
        (req) => Buffer.from(types.RequestMessage.encode(types.RequestMessage.create(req)).finish()),
        (buf) => decodeWire(msgType, buf),
        { Filter: name === 'messages' ? '' : this.opts.logFilter },
        this.streamMetadata(name),
      );
      call.on('data', (rec: WireRecord) => {
        if (!session.closing) this.events.onEvent(name, rec);
      });
      call.on('error', () => {
        // The 'status' handler decides; this listener only keeps 'error' from throwing.
      });
      call.on('status', (status: grpc.StatusObject) => {
        if (session.closing) return;
        const why = status.code === grpc.status.OK ? 'ended by the server' : `${grpc.status[status.code]}: ${status.details}`;
        this.broken(session, `${streamRpc[name].rpc} ${why}`, status.code);
      });
      if (this.paused) call.pause();
      session.calls.push(call);
    }

    const nonce = randomInt(0, 2 ** 31);
    client.makeUnaryRequest<{ nonce: number }, { Retval?: number }>(
      rpcPath.HealthCheck,
      (req) => Buffer.from(types.NonceMessage.encode(types.NonceMessage.create(req)).finish()),
      (buf) => types.ReplyMessage.toObject(types.ReplyMessage.decode(buf), { defaults: true }),
      { nonce },
      this.commonMetadata.clone(),
      { deadline: Date.now() + this.opts.healthTimeoutMs },
      (err, reply) => {
        if (session.closing) return;
        if (err !== null) {
          if (err.code === grpc.status.UNIMPLEMENTED) {
            this.fail(new FeederStreamError('ERR_FEEDER_UNREACHABLE', `failed to check the liveness of the gRPC server at ${this.opts.target}: ${err.details}; is it a KubeArmor feeder?`, err.code));
            return;
          }
          this.broken(session, `HealthCheck failed (${grpc.status[err.code]}: ${err.details})`, err.code);
          return;
        }
        const got = reply?.Retval ?? 0;
        if (got !== nonce) {
          this.fail(new HealthMismatchError(nonce, got));
          return;
        }
        session.up = true;
        this.up();
      },
    );
  }

  private up(): void {
    if (!this.everUp) {
      this.everUp = true;
      this.events.onStatus(`Created a gRPC client (${this.opts.target})`);
      this.events.onStatus('Checked the liveness of the gRPC server');
      for (const name of openOrder) if (this.opts.streams[name]) this.events.onStatus(`Started to watch ${name}`);
    } else {
      const gap = Date.now() - this.brokenAt;
      this.disconnectedMs += gap;
      this.reconnects++;
      this.events.onStatus(`armorfeed: reconnected to ${this.opts.target} after ${(gap / 1000).toFixed(2)}s disconnected (reconnect ${this.reconnects})`);
    }
    this.brokenAt = 0;
    this.attempt = 0;
  }

  private broken(session: Session, reason: string, code: number): void {
    if (this.stopped || session !== this.session || session.closing) return;
    this.closeSession();
    if (!this.opts.reconnect) {
      this.events.onStatus('releasing grpc client');
      this.fail(new FeederStreamError('ERR_STREAM_BROKEN', `${reason} (${this.opts.target}); not reconnecting because of --no-reconnect`, code));
      return;
    }
    if (this.brokenAt === 0) this.brokenAt = Date.now();
    if (!session.up) this.failedAttempts++;
    const delay = backoffDelay(this.attempt, this.opts.backoff);
    this.attempt++;
    const what = this.everUp ? 'disconnected' : 'cannot reach the feeder';
    this.events.onStatus(`armorfeed: ${what}: ${reason}; reconnecting to ${this.opts.target} in ${(delay / 1000).toFixed(2)}s (attempt ${this.attempt})`);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.connect();
    }, delay);
  }

  private closeSession(): void {
    const session = this.session;
    if (session === undefined) return;
    session.closing = true;
    this.session = undefined;
    for (const call of session.calls) call.cancel();
    session.client.close();
  }
}
