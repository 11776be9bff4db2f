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
 *
 * The HealthCheck before each (re)open proves the node answers before a stream is
 * counted open; the backoff is capped, exponential and jittered (client/watch.ts
 * backoffDelay), and starts again from its first step once a stream has been healthy.
 * Events are handed over as the protobuf bytes they arrived as (identity deserializer).
 */
import { randomInt } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { backoffDelay, type BackoffOptions } from '../client';
import type { DaemonLog } from '../messages';
import type { UpstreamStats, UpstreamStreamState, UpstreamStreamStats } from '../stats';
import { feederTypes, filterMetadataKeys, rpcPath } from '../wire/proto';
import { nowMicros } from '../wire/time';
import type { EventKind } from './scan';

export interface UpstreamOptions {
  backoff: BackoffOptions;
  healthTimeoutMs: number;
  credentials: grpc.ChannelCredentials;
  /** x-armorfeed-client on every stream: how an armorfeed node names the relay in its stats. */
  clientName: string;
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

const identity = (b: Buffer): Buffer => b;

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
  private call: grpc.ClientReadableStream<Buffer> | undefined;
  /** Bumped per attempt, so callbacks of an abandoned attempt are ignored. */
  private generation = 0;

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
    const { path, rpc, filter } = streamRpc[this.kind];
    const call = this.upstream.openStream(path, filter);
    this.call = call;
    this.state = 'open';
    this.openedAt = Date.now();
    this.eventsThisOpen = 0;
    if (this.downSince !== 0) this.disconnectedMs += Date.now() - this.downSince;
    const gap = (Date.now() - this.downSince) / 1000;
    this.downSince = 0;
    if (this.everOpen) {
      this.reconnects++;
      this.upstream.log.info(`relay: upstream ${this.upstream.id} ${rpc} reopened after ${gap.toFixed(2)}s (reconnect ${this.reconnects})`);
    }
    this.everOpen = true;
    call.on('data', (message: Buffer) => {
      if (generation !== this.generation) return;
      this.events++;
      this.eventsThisOpen++;
      if (!this.upstream.sink(this.kind, message, nowMicros())) this.malformed++;
    });
    call.on('error', () => {
      // 'status' decides; this listener only keeps 'error' from throwing.
    });
    call.on('status', (status: grpc.StatusObject) => {
      if (generation !== this.generation || this.state === 'stopped') return;
      const why = status.code === grpc.status.OK ? 'ended by the upstream (OK)' : `${grpc.status[status.code]}: ${status.details}`;
      this.broken(`${rpc} ${why}`);
    });
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
    const delay = backoffDelay(this.attempt, this.upstream.options.backoff);
    this.attempt++;
    if (wasOpen) this.upstream.log.warn(`relay: upstream ${this.upstream.id}: ${reason}; reopening ${streamRpc[this.kind].rpc} in ${(delay / 1000).toFixed(2)}s`);
    else if (this.attempt === 1 || this.attempt % 10 === 0) {
      // Once per outage, then every tenth attempt: a node that stays away does not flood WatchMessages.
      this.upstream.log.warn(`relay: upstream ${this.upstream.id} ${streamRpc[this.kind].rpc} not open: ${reason} (attempt ${this.attempt}); next in ${(delay / 1000).toFixed(2)}s`);
    }
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.connect();
    }, delay);
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
  private readonly client: grpc.Client;
  private readonly streams: Record<EventKind, UpstreamStream>;
  private readonly metadata = new grpc.Metadata();

  constructor(
    readonly id: string,
    readonly options: UpstreamOptions,
    readonly sink: UpstreamSink,
    readonly log: DaemonLog,
  ) {
    this.client = new grpc.Client(id, options.credentials, {
      // The relay's own backoff decides when a stream is retried; the channel only has to
      // be ready again soon after the node is.
      'grpc.initial_reconnect_backoff_ms': 100,
      'grpc.max_reconnect_backoff_ms': Math.max(100, options.backoff.maxMs),
      // A node that vanishes without closing its connections (power loss, partition) is
      // found by a ping the node must answer. Upstream's server allows one ping per 5 min
      // (grpc-go's MinTime default) and answers more with GOAWAY too_many_pings, so just over that.
      'grpc.keepalive_time_ms': 301_000,
      'grpc.keepalive_timeout_ms': 20_000,
      // HTTP/2 flow control: with Node's 64 KiB window a node can send ~130 events before
      // the relay's next WINDOW_UPDATE, so a relay held off the CPU for a few ms stalls
      // every node's stream and their queues for it overflow (bench:relay: 2/3 of 3 x 20k ev/s
      // dropped at the nodes). grpc-go's clients grow theirs to 16 MiB (BDP estimation).
      'grpc-node.flow_control_window': RELAY_FLOW_CONTROL_WINDOW,
    });
    this.metadata.set(filterMetadataKeys.clientName, options.clientName);
    this.streams = { alerts: new UpstreamStream(this, 'alerts'), logs: new UpstreamStream(this, 'logs'), messages: new UpstreamStream(this, 'messages') };
  }

  start(): void {
    for (const kind of KINDS) this.streams[kind].connect();
  }

  stop(): void {
    for (const kind of KINDS) this.streams[kind].stop();
    this.client.close();
  }

  /** HealthCheck with a random int31 nonce; `done()` without a problem when it was echoed. */
  healthCheck(done: (problem?: string) => void): void {
    const t = feederTypes();
    const nonce = randomInt(1, 2 ** 31);
    this.client.makeUnaryRequest<{ nonce: number }, { Retval?: number }>(
      rpcPath.HealthCheck,
      (req) => Buffer.from(t.NonceMessage.encode(t.NonceMessage.create(req)).finish()),
      (buf) => t.ReplyMessage.toObject(t.ReplyMessage.decode(buf), { defaults: true }),
      { nonce },
      this.metadata.clone(),
      { deadline: Date.now() + this.options.healthTimeoutMs },
      (err, reply) => {
        if (err !== null) done(`HealthCheck failed (${grpc.status[err.code]}: ${err.details})`);
        else if ((reply?.Retval ?? 0) !== nonce) done(`HealthCheck returned ${reply?.Retval ?? 0} for nonce ${nonce}: not a KubeArmor feeder`);
        else done();
      },
    );
  }

  openStream(path: string, filter: string): grpc.ClientReadableStream<Buffer> {
    const t = feederTypes();
    return this.client.makeServerStreamRequest<{ Filter: string }, Buffer>(
      path,
      (req) => Buffer.from(t.RequestMessage.encode(t.RequestMessage.create(req)).finish()),
      identity,
      { Filter: filter },
      this.metadata.clone(),
    );
  }

  stats(): UpstreamStats {
    const streams = { alerts: this.streams.alerts.stats(), logs: this.streams.logs.stats(), messages: this.streams.messages.stats() };
    return { id: this.id, connected: KINDS.every((k) => streams[k].state === 'open'), streams };
  }
}
