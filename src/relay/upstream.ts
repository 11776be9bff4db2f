/**
 * One upstream feeder (real KubeArmor, `armorfeed serve`, gofeeder, another relay) as
 * the relay's client: one gRPC channel, and on it three streams that live and die on
 * their own. Upstream's relay tears all three down on the first error of any (and
 * KubeArmor #622 is WatchLogs dying while WatchAlerts goes on); here a broken WatchLogs
 * is reopened by itself while WatchAlerts keeps flowing.
 *
 * Each stream, with upstream's filter values (alerts "policy", logs "system", messages "all"):
 *
 *   connecting --HealthCheck ok--> open --status (error or OK)--> backoff --timer--> connecting
 *        \--HealthCheck failed or nonce mismatch--> backoff            (any) --stop()--> stopped
 *                                                      \--another stream of the node opened--> connecting
 *
 * The HealthCheck before each (re)open proves the node answers before a stream is
 * counted open; the backoff is capped, exponential and jittered (client/watch.ts
 * backoffDelay), and starts again from its first step once a stream has been healthy.
 * When a node comes back, the first of its streams to open calls back the others that
 * were waiting after a failed HealthCheck, so all three reopen together (retryNow).
 * Events are handed over as the protobuf bytes they arrived as, read in place from the
 * HTTP/2 DATA chunks (wire/h2-grpc.ts, not the grpc-js client: its per-message Readable,
 * filter promises and copies were a third of the relay's CPU at 3 x 20,000 ev/s, see
 * bench/README.md "Relay (Y2)"). What the log says about it is per upstream, not per
 * stream or attempt (linkLog.ts).
 */
import { backoffDelay, type BackoffOptions } from '../client';
import type { DaemonLog } from '../messages';
import { UpstreamLinkLog, type LinkView } from './linkLog';
import type { UpstreamStats, UpstreamStreamState, UpstreamStreamStats } from '../stats';
import { FeederSession, GrpcCallError, grpcStatus, statusName, type GrpcResponseReader, type GrpcStatus } from '../wire/h2-grpc';
import { filterMetadataKeys, rpcPath } from '../wire/proto';
import { nowMicros } from '../wire/time';
import type { EventKind } from './scan';

export interface UpstreamOptions {
  backoff: BackoffOptions;
  healthTimeoutMs: number;
  /** Mutual TLS towards the nodes (as upstream's relay, from the relay's own TLS material); none: plain HTTP/2. */
  tls?: { ca: Buffer; cert: Buffer; key: Buffer };
  /** x-armorfeed-client on every stream: how an armorfeed node names the relay in its stats. */
  clientName: string;
  /** Called when a stream opened or closed (the relay's health follows the upstreams' links). */
  onLinkChange?: () => void;
}

/** Receives every event as it arrives; returns false when it dropped it as malformed. */
export type UpstreamSink = (kind: EventKind, message: Buffer, arrivedUs: number) => boolean;

const streamRpc: Readonly<Record<EventKind, { path: string; rpc: string; filter: string }>> = {
  alerts: { path: rpcPath.WatchAlerts, rpc: 'WatchAlerts', filter: 'policy' },
  logs: { path: rpcPath.WatchLogs, rpc: 'WatchLogs', filter: 'system' },
  messages: { path: rpcPath.WatchMessages, rpc: 'WatchMessages', filter: 'all' },
};

const KINDS: readonly EventKind[] = ['alerts', 'logs', 'messages'];

/** A stream open this long (or that has carried an event) starts its next backoff from the first step. */
const STABLE_MS = 10_000;

/** A node that vanishes without closing its connections (power loss, partition) is found by a PING it must answer. */
const KEEPALIVE = { intervalMs: 301_000, timeoutMs: 20_000 };

/** Bytes a node may send on the relay's connection ahead of its reading: ~160 ms at 3 x 20k events/s of 550 B. */
export const RELAY_FLOW_CONTROL_WINDOW = 8 * 1024 * 1024;

class UpstreamStream {
  state: UpstreamStreamState = 'connecting';
  events = 0;
  malformed = 0;
  reconnects = 0;
  failedAttempts = 0;
  lastError = '';
  private disconnectedMs = 0;
  /** Since when the stream is not open (0 while open). */
  private downSince = Date.now();
  private openedAt = 0;
  private everOpen = false;
  private eventsThisOpen = 0;
  private attempt = 0;
  private timer: NodeJS.Timeout | undefined;
  private call: GrpcResponseReader | undefined;
  /** Bumped per attempt, so callbacks of an abandoned attempt are ignored. */
  private generation = 0;
  /** In backoff because an attempt failed (HealthCheck), not because an open stream broke. */
  private waitingAfterFailure = false;

  constructor(
    private readonly upstream: Upstream,
    readonly kind: EventKind,
  ) {}

  connect(): void {
    if (this.state === 'stopped') return;
    this.state = 'connecting';
    const generation = ++this.generation;
    this.upstream.healthCheck((problem) => {
      if (generation !== this.generation || this.state === 'stopped') return;
      if (problem !== undefined) {
        this.failedAttempts++;
        this.broken(problem);
        return;
      }
      this.open(generation);
    });
  }

  private open(generation: number): void {
    const { path, filter } = streamRpc[this.kind];
    const kind = this.kind;
    const upstream = this.upstream;
    const call = upstream.openStream(
      path,
      filter,
      (buf, start, end) => {
        if (generation !== this.generation) return false;
        this.events++;
        this.eventsThisOpen++;
        // Daemon messages may wait in client queues: their own copy, not a view that keeps the chunk.
        const message = kind === 'messages' ? Buffer.from(buf.subarray(start, end)) : buf.subarray(start, end);
        if (!upstream.sink(kind, message, nowMicros())) this.malformed++;
        return true;
      },
      (status: GrpcStatus) => {
        if (generation !== this.generation || this.state === 'stopped') return;
        this.broken(status.code === grpcStatus.OK ? 'ended by the upstream (OK)' : `${statusName(status.code)}: ${status.details}`);
      },
    );
    this.call = call;
    this.state = 'open';
    this.openedAt = Date.now();
    this.eventsThisOpen = 0;
    if (this.downSince !== 0) this.disconnectedMs += Date.now() - this.downSince;
    this.downSince = 0;
    if (this.everOpen) this.reconnects++;
    this.everOpen = true;
    upstream.linkLog.changed();
    upstream.options.onLinkChange?.();
    upstream.retryWaiting();
  }

  private broken(reason: string): void {
    const wasOpen = this.state === 'open';
    this.generation++;
    this.call?.cancel();
    this.call = undefined;
    this.lastError = reason;
    if (wasOpen) {
      if (this.eventsThisOpen > 0 || Date.now() - this.openedAt >= STABLE_MS) this.attempt = 0;
      this.downSince = Date.now();
    }
    this.state = 'backoff';
    this.waitingAfterFailure = !wasOpen;
    const delay = backoffDelay(this.attempt, this.upstream.options.backoff);
    this.attempt++;
    // Told per upstream and per change of its link (linkLog.ts), not per attempt.
    this.upstream.linkLog.problem(`${streamRpc[this.kind].rpc}: ${reason}`, wasOpen);
    if (wasOpen) this.upstream.options.onLinkChange?.();
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.connect();
    }, delay);
  }

  /**
   * In backoff after a failed attempt: try now (the timer is dropped). A stream that broke
   * after opening keeps its backoff, so streams that open and break at once cannot call
   * each other back in a loop: every call back is one stream's open, which its own
   * backoff paces.
   */
  retryNow(): void {
    if (this.state !== 'backoff' || !this.waitingAfterFailure) return;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.connect();
  }

  stop(): void {
    if (this.state === 'stopped') return;
    if (this.downSince !== 0) this.disconnectedMs += Date.now() - this.downSince;
    this.downSince = 0;
    this.state = 'stopped';
    this.generation++;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.call?.cancel();
    this.call = undefined;
  }

  stats(): UpstreamStreamStats {
    const down = this.downSince !== 0 ? Date.now() - this.downSince : 0;
    return {
      state: this.state,
      events: this.events,
      malformed: this.malformed,
      reconnects: this.reconnects,
      failedAttempts: this.failedAttempts,
      disconnectedSec: (this.disconnectedMs + down) / 1000,
      lastError: this.lastError,
    };
  }
}

export class Upstream {
  private readonly session: FeederSession;
  private readonly streams: Record<EventKind, UpstreamStream>;
  /** The log lines about this upstream's link: one per change, rate-limited. */
  readonly linkLog: UpstreamLinkLog;
  /** Set once a stream opened or an attempt failed: before that the link is 'connecting', not 'down'. */
  private settled = false;

  constructor(
    readonly id: string,
    readonly options: UpstreamOptions,
    readonly sink: UpstreamSink,
    readonly log: DaemonLog,
  ) {
    this.session = new FeederSession(id, {
      // HTTP/2 flow control: with Node's 64 KiB window a node can send ~130 events before
      // the relay's next WINDOW_UPDATE, so a relay held off the CPU for a few ms stalls
      // every node's stream and their queues for it overflow (bench:relay: 2/3 of 3 x 20k ev/s
      // dropped at the nodes). grpc-go's clients grow theirs to 16 MiB (BDP estimation).
      windowBytes: RELAY_FLOW_CONTROL_WINDOW,
      metadata: { [filterMetadataKeys.clientName]: options.clientName },
      userAgent: 'armorfeed-relay',
      // Upstream's server allows one ping per 5 min (grpc-go's MinTime default) and answers
      // more with GOAWAY too_many_pings, so just over that.
      keepalive: KEEPALIVE,
      ...(options.tls !== undefined ? { tls: options.tls } : {}),
    });
    this.streams = { alerts: new UpstreamStream(this, 'alerts'), logs: new UpstreamStream(this, 'logs'), messages: new UpstreamStream(this, 'messages') };
    this.linkLog = new UpstreamLinkLog(id, log, () => this.link());
  }

  /** The three streams taken together: connected (all open), partial, down (none open). */
  link(): LinkView {
    const open = KINDS.filter((k) => this.streams[k].state === 'open');
    const connecting = KINDS.some((k) => this.streams[k].state === 'connecting');
    if (open.length > 0) this.settled = true;
    if (open.length > 0) return { link: open.length === KINDS.length ? 'connected' : 'partial', open, connecting };
    if (!this.settled) this.settled = KINDS.some((k) => this.streams[k].state === 'backoff');
    return { link: this.settled ? 'down' : 'connecting', open, connecting };
  }

  /**
   * A stream opened: the node answers, so streams waiting out a backoff try now instead of
   * up to relayBackoffMaxMs later (in feeders mode what a node sends while a stream is not
   * open is lost). Streams that are open, already trying, or waiting after a break, are
   * left alone (retryNow).
   */
  retryWaiting(): void {
    for (const kind of KINDS) this.streams[kind].retryNow();
  }

  start(): void {
    for (const kind of KINDS) this.streams[kind].connect();
  }

  stop(): void {
    for (const kind of KINDS) this.streams[kind].stop();
    this.linkLog.stop();
    this.session.close();
  }

  /** HealthCheck with a random int31 nonce; `done()` without a problem when it was echoed. */
  healthCheck(done: (problem?: string) => void): void {
    this.session.healthCheck(this.options.healthTimeoutMs).then(
      ({ nonce, retval }) => done(retval === nonce ? undefined : `HealthCheck returned ${retval} for nonce ${nonce}: not a KubeArmor feeder`),
      (err: unknown) => {
        if (err instanceof GrpcCallError) done(`HealthCheck failed (${statusName(err.status.code)}: ${err.status.details})`);
        else done(`HealthCheck answered with a message that is not a ReplyMessage (${(err as Error).message}): not a KubeArmor feeder`);
      },
    );
  }

  /** A Watch* call: `visit` gets each message in place, `onEnd` the status once. */
  openStream(path: string, filter: string, visit: (buf: Buffer, start: number, end: number) => boolean, onEnd: (status: GrpcStatus) => void): GrpcResponseReader {
    return this.session.watch(path, filter, visit, onEnd);
  }

  stats(): UpstreamStats {
    const streams = { alerts: this.streams.alerts.stats(), logs: this.streams.logs.stats(), messages: this.streams.messages.stats() };
    return { id: this.id, connected: KINDS.every((k) => streams[k].state === 'open'), streams };
  }
}
