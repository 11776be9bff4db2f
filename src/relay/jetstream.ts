/**
 * relay --from: JetStream as the relay's source. The NATS client runs on the relay's
 * JetStream thread (jetstream.worker.ts); this is its side: the connection, the shared
 * feed's consumers and the replays' ordered feeds.
 *
 *   nodes --serve --export--> JetStream stream (KUBEARMOR, <prefix>.<cluster>.<node>.<kind>)
 *     --one ordered consumer per subject filter, per relay--> JetStreamSource (thread)
 *     --payloads as stored (no re-encoding), one event batch per turn--> main thread:
 *     JetStreamThread --> RelayBatcher --> FanoutHub --> clients
 *
 * Each relay has consumers of its own (ephemeral, ordered: OrderedFeed makes one again
 * after a reconnect, missed heartbeats or a skipped delivery, from the stream sequence
 * after the last it delivered), so several relays on one stream each get everything and serve their own
 * clients. The shared feed starts after the stream's last message at start-up (or, in a
 * thread started again, after the last message the main thread got): history is for
 * replaying clients only (replay.ts), each of which gets ordered consumers of its own
 * from its start point and stays on them, live included, so there is no seam between
 * history and live to lose or repeat an event at.
 *
 * Health is NOT_SERVING while the relay is not connected to NATS or its consumers are not
 * running (the main thread adds: or the thread is not running).
 */
import { connect, createInbox, nanos, nuid, type Msg, type NatsConnection, type NodeConnectionOptions, type Subscription } from '@nats-io/transport-node';
import { AckPolicy, DeliverPolicy, jetstreamManager, type ConsumerConfig, type JetStreamManager } from '@nats-io/jetstream';
import { WakeableSleep } from '../export';
import { readDelivery, type Delivery } from './natsMsg';
import type { EventKind } from './scan';
import type { ConsumerStats, NatsState } from '../stats';

/** Where a consumer starts: after the stream's end at start-up (the shared feed), at a time, or at a stream sequence. */
export type FeedStart = { at: 'time'; time: string } | { at: 'seq'; seq: number };

/** What the JetStream thread says of itself and its source, for the main thread's stats. */
export interface SourceStatus {
  state: NatsState;
  serving: boolean;
  connects: number;
  disconnects: number;
  lastError: string;
  /** The shared feed's consumers: state and recreated (the rest comes with the events). */
  consumers: Pick<ConsumerStats, 'filter' | 'state' | 'recreated'>[];
  /** Where each shared consumer started (stream sequence), 0 before it did. */
  starts: number[];
}

/** Where the thread's own lines go (posted to the main thread's daemon log). */
export interface ThreadLog {
  info(text: string): void;
  warn(text: string): void;
}

/**
 * The part of `filter` that holds events of `kind`, for a consumer of one client's stream
 * (subjects have `prefixTokens` + 3 tokens). Undefined when the filter holds none of them.
 */
export function filterForKind(filter: string, prefixTokens: number, kind: EventKind): string | undefined {
  const tokens = filter.split('.');
  const depth = prefixTokens + 3;
  const last = tokens.length - 1;
  if (tokens[last] === '>') {
    if (tokens.length > depth) return undefined;
    return [...tokens.slice(0, last), ...Array<string>(depth - 1 - last).fill('*'), kind].join('.');
  }
  if (tokens.length !== depth) return undefined;
  if (tokens[last] === '*') return [...tokens.slice(0, last), kind].join('.');
  return tokens[last] === kind ? filter : undefined;
}

/** A subject filter: dot-separated non-empty tokens, `>` only as the last. */
export function isSubjectFilter(filter: string): boolean {
  const tokens = filter.split('.');
  return tokens.every((t, i) => t !== '' && !/[\s\p{Cc}]/u.test(t) && (t === '>' ? i === tokens.length - 1 : !t.includes('>')) && (t === '*' || !t.includes('*')));
}

/**
 * Pacing of a feed that serves one client (a replay): `room()` is how many more events its
 * queue can take now; `waitForRoom()` resolves when it is worth asking for more.
 */
export interface FeedPacing {
  room(): number;
  waitForRoom(): Promise<void>;
  /** False once the client is gone. */
  wanted(): boolean;
}

/** How long to wait before trying again when NATS, the stream or a consumer is not there yet. */
const RETRY_MS = 1000;

/**
 * Lifetime of the shared feed's pull requests, with idle heartbeats at half of it. A pull
 * the server lost (it restarted) is noticed by two missed heartbeats and the consumer made
 * again; a reconnect remakes it at once.
 */
const CONSUME_EXPIRES_MS = 5000;
/** The shared feed asks for this many messages, and for more when half of them came. */
const CONSUME_MAX_MESSAGES = 4096;

/**
 * Largest pull of a paced feed, and how long one waits for messages (live) before the next.
 * One pull is out at a time: asking for the next while one was still arriving (a second
 * request waiting on the server) made nats-server spend 9.7-10.1 us per replayed event
 * instead of 6.0-6.6 (bench:relay-y1), for no higher rate.
 */
const PACED_MAX_MESSAGES = 4096;
const PACED_EXPIRES_MS = 1000;

/** How long an unused consumer of ours outlives us on the server (as the client's ordered consumers). */
const INACTIVE_THRESHOLD_MS = 5 * 60_000;

/** The JetStream API a feed uses: its connection and a manager on it. */
export interface JetStreamApi {
  nc: NatsConnection;
  jsm: JetStreamManager;
}

/**
 * One ordered consumer on one subject filter, in the manner of the client library's
 * ordered consumer (an ephemeral pull consumer, no acks, one replica, in memory, made
 * again from the stream sequence after the last delivered whenever a delivery sequence
 * skips, heartbeats are missed, the server says it is gone, or the connection comes back),
 * but without a JsMsg per message: its messages are read as protocol bytes (natsMsg.ts).
 * In bench:relay-y1 that took the JetStream thread from 6.6-7.8 to 5.1-6.2 us of CPU per
 * replayed event (bench/README.md, "Relay from JetStream").
 *
 * Unpaced (the shared feed): pulls of CONSUME_MAX_MESSAGES, the next asked for when half
 * came, so no client can hold the feed back. Paced (a replay): one pull at a time of at
 * most the room left in its client's queue, so a history larger than the queue is read at
 * the client's speed instead of overflowing it (no client_queue_full from a replay).
 */
export class OrderedFeed {
  private stopped = false;
  readonly counts: ConsumerStats;
  /** Its consumers' names start with this (then _1, _2 ... as it makes them again). */
  readonly consumerPrefix = `af_${nuid.next()}`;
  private serial = 0;
  private consumer = '';
  private sub: Subscription | undefined;
  /** Stream and delivery sequence of the last message delivered by the current consumer. */
  private streamSeq = 0;
  private deliverySeq = 0;
  /** Messages asked for and neither delivered nor released by the server yet. */
  private outstanding = 0;
  private active = false;
  private missed = 0;
  private heartbeat: NodeJS.Timeout | undefined;
  private remaking = false;
  /** When the consumer was last made again (performance.now()). */
  private remadeAt = Number.NEGATIVE_INFINITY;
  private statusWatch: AsyncIterable<unknown> | undefined;
  private readonly delivery: Delivery = { streamSeq: 0, deliverySeq: 0, delivered: 0, pending: 0 };
  private readonly retry = new WakeableSleep();
  private settle: { resolve: () => void; reject: (err: Error) => void } | undefined;
  private pumpScheduled = false;
  /** Set while pulls wait after an answer that says not now (onStatus). */
  private holdTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly api: JetStreamApi,
    private readonly stream: string,
    readonly filter: string,
    private readonly start: FeedStart,
    private readonly onMessage: (msg: Msg) => void,
    private readonly pacing?: FeedPacing,
    /** Counts to go on from (the same feed on a thread that died). */
    seed?: ConsumerStats,
    private readonly onRecreated?: () => void,
  ) {
    this.counts = { ...(seed ?? { delivered: 0, pending: 0, redelivered: 0, recreated: 0, lastStreamSeq: 0 }), filter, state: 'starting' };
  }

  /** A paced feed's pull loop: settles when it ends (rejects when the server refused a pull). */
  pulled: Promise<void> = Promise.resolve();

  /** Makes the consumer and starts pulling; throws what the server answered. */
  async open(): Promise<void> {
    await this.make();
    if (this.stopped) return;
    this.counts.state = 'consuming';
    if (this.pacing !== undefined) this.pulled = new Promise((resolve, reject) => (this.settle = { resolve, reject }));
    const expires = this.pacing !== undefined ? PACED_EXPIRES_MS : CONSUME_EXPIRES_MS;
    this.heartbeat = setInterval(() => this.checkHeartbeat(), expires / 2);
    this.heartbeat.unref();
    void this.watchConnection();
    this.pump();
  }

  private consumerConfig(name: string): Partial<ConsumerConfig> {
    const base: Partial<ConsumerConfig> = { name, filter_subject: this.filter, ack_policy: AckPolicy.None, max_deliver: 1, mem_storage: true, num_replicas: 1, inactive_threshold: nanos(INACTIVE_THRESHOLD_MS) };
    if (this.streamSeq > 0) return { ...base, deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: this.streamSeq + 1 };
    return this.start.at === 'time'
      ? { ...base, deliver_policy: DeliverPolicy.StartTime, opt_start_time: this.start.time }
      : { ...base, deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: Math.max(1, this.start.seq) };
  }

  /** Makes a consumer (after the last message delivered, if any) and a subscription for its messages. */
  private async make(): Promise<void> {
    const name = `${this.consumerPrefix}_${++this.serial}`;
    await this.api.jsm.consumers.add(this.stream, this.consumerConfig(name));
    if (this.stopped) {
      this.forget(name);
      return;
    }
    this.sub?.unsubscribe();
    const sub = this.api.nc.subscribe(createInbox(), {
      callback: (err, msg) => {
        if (sub === this.sub && err === null) this.onDelivery(msg);
      },
    });
    this.sub = sub;
    this.consumer = name;
    this.deliverySeq = 0;
    this.outstanding = 0;
    this.missed = 0;
  }

  private forget(name: string): void {
    if (name !== '' && !this.api.nc.isClosed()) this.api.jsm.consumers.delete(this.stream, name).catch(() => undefined);
  }

  private onDelivery(msg: Msg): void {
    this.active = true;
    const d = this.delivery;
    if (!readDelivery(msg, d)) {
      this.onStatus(msg);
      return;
    }
    if (d.deliverySeq !== this.deliverySeq + 1) {
      // A message the consumer sent was not received: make it again after the last one that was.
      void this.remake();
      return;
    }
    this.deliverySeq = d.deliverySeq;
    this.streamSeq = d.streamSeq;
    if (this.outstanding > 0) this.outstanding--;
    const counts = this.counts;
    counts.delivered++;
    counts.pending = d.pending;
    counts.lastStreamSeq = d.streamSeq;
    if (d.delivered > 1) counts.redelivered++;
    if (!this.stopped) this.onMessage(msg);
    this.afterDelivery();
  }

  private afterDelivery(): void {
    if (this.pacing === undefined) {
      if (this.outstanding <= CONSUME_MAX_MESSAGES / 2) this.pump();
    } else if (this.outstanding === 0) {
      this.schedulePump();
    }
  }

  /** A status on the pull's inbox: heartbeat, a pull that ended, or a consumer that is gone. */
  private onStatus(msg: Msg): void {
    const h = msg.headers;
    const code = h?.code ?? 0;
    if (code === 100) return;
    if (code === 503 || (code === 409 && /deleted|leadership/i.test(h?.description ?? ''))) {
      void this.remake();
      return;
    }
    if (code === 400 && this.settle !== undefined) {
      this.finish(new Error(`JetStream refused a pull on ${this.stream}: ${code} ${h?.description ?? ''}`));
      return;
    }
    // 404, 408, 409 (and anything else): the request ended; what it did not deliver is released.
    const left = Number(h?.get('Nats-Pending-Messages') ?? '');
    this.outstanding = Number.isFinite(left) && left > 0 ? Math.max(0, this.outstanding - left) : 0;
    if (code === 404 || code === 408) {
      this.afterDelivery();
      return;
    }
    // Anything else (409 Exceeded MaxWaiting, 400 ...) would answer the next pull the same
    // way: the next one waits RETRY_MS, not a round trip.
    if (this.holdTimer !== undefined) return;
    this.holdTimer = setTimeout(() => {
      this.holdTimer = undefined;
      this.pump();
    }, RETRY_MS);
  }

  /** The next pull, if one is due (see the class). */
  private pump(): void {
    if (this.stopped || this.remaking || this.consumer === '' || this.holdTimer !== undefined) return;
    const pacing = this.pacing;
    if (pacing === undefined) {
      if (this.outstanding > CONSUME_MAX_MESSAGES / 2) return;
      this.pull(CONSUME_MAX_MESSAGES - this.outstanding, CONSUME_EXPIRES_MS);
      return;
    }
    if (this.outstanding > 0) return;
    if (!pacing.wanted()) {
      this.finish();
      return;
    }
    const room = pacing.room();
    if (room <= 0) {
      void pacing.waitForRoom().then(() => this.pump());
      return;
    }
    this.pull(Math.min(room, PACED_MAX_MESSAGES), PACED_EXPIRES_MS);
  }

  /** The next pull at the end of the turn: the batch gathered so far is posted first, and room() counts it. */
  private schedulePump(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    setImmediate(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  private pull(batch: number, expiresMs: number): void {
    const sub = this.sub;
    if (sub === undefined || this.api.nc.isClosed()) return;
    this.outstanding += batch;
    const request = JSON.stringify({ batch, expires: nanos(expiresMs), idle_heartbeat: nanos(expiresMs / 2) });
    try {
      this.api.nc.publish(`$JS.API.CONSUMER.MSG.NEXT.${this.stream}.${this.consumer}`, request, { reply: sub.getSubject() });
    } catch {
      // The connection is closing or down: heartbeats missed (or the reconnect) make the consumer again.
    }
  }

  /** Two heartbeat intervals with nothing on the inbox while a pull is out: the pull or the consumer is lost. */
  private checkHeartbeat(): void {
    if (this.active) {
      this.active = false;
      this.missed = 0;
      return;
    }
    if (this.outstanding === 0 || this.remaking) return;
    if (++this.missed >= 2) void this.remake();
  }

  private async watchConnection(): Promise<void> {
    const watch = this.api.nc.status();
    this.statusWatch = watch;
    for await (const s of watch as AsyncIterable<{ type: string }>) {
      if (this.stopped) break;
      if (s.type === 'reconnect') void this.remake();
    }
  }

  /**
   * Makes the consumer again after the last message delivered (retrying until it can), at
   * most once a RETRY_MS: a server that takes each new consumer away again (deleted, a
   * leader that keeps changing) costs a consumer a second, not one per round trip.
   */
  private async remake(): Promise<void> {
    if (this.remaking || this.stopped) return;
    this.remaking = true;
    this.counts.recreated++;
    this.onRecreated?.();
    this.forget(this.consumer);
    this.consumer = '';
    this.sub?.unsubscribe();
    this.sub = undefined;
    const wait = this.remadeAt + RETRY_MS - performance.now();
    if (wait > 0) await this.retry.sleep(wait);
    this.remadeAt = performance.now();
    while (!this.stopped) {
      try {
        await this.make();
        break;
      } catch {
        await this.retry.sleep(RETRY_MS);
      }
    }
    this.remaking = false;
    this.pump();
  }

  private finish(err?: Error): void {
    const settle = this.settle;
    this.settle = undefined;
    if (err !== undefined) settle?.reject(err);
    else settle?.resolve();
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.counts.state = 'stopped';
    clearInterval(this.heartbeat);
    clearTimeout(this.holdTimer);
    this.retry.wake();
    (this.statusWatch as { stop?: () => void } | undefined)?.stop?.();
    this.sub?.unsubscribe();
    this.sub = undefined;
    this.forget(this.consumer);
    this.finish();
  }
}

export interface JetStreamSourceSettings {
  connection: NodeConnectionOptions;
  stream: string;
  /** Subject filters of the shared feed (one ordered consumer each). */
  filters: readonly string[];
  /**
   * Per filter, where a thread started again resumes: the counts so far (its next message
   * is lastStreamSeq + 1) and the sequence the first thread started at. Absent: from the
   * message after the stream's last one.
   */
  resume?: { counts: ConsumerStats; start: number }[];
}

/** The NATS connection and the shared feed, in the JetStream thread. */
export class JetStreamSource {
  /** The connection and its manager, once connected. */
  private api: JetStreamApi | undefined;
  private state: NatsState = 'connecting';
  private closed = false;
  private feeds: OrderedFeed[] = [];
  private starts: number[];
  private connects = 0;
  private disconnects = 0;
  private lastError = '';
  private servingNow = false;
  /** Retry waits, cut short by close(). */
  private readonly idle = new WakeableSleep();

  /**
   * `onMessage`: each message of the shared feed, with the index of its filter.
   * `onStatus`: called when status() changed.
   */
  constructor(
    private readonly settings: JetStreamSourceSettings,
    private readonly onMessage: (filter: number, msg: Msg) => void,
    private readonly log: ThreadLog,
    private readonly onStatus: () => void,
  ) {
    this.starts = settings.filters.map((_, i) => settings.resume?.[i]?.start ?? 0);
  }

  /** The connection and its JetStream manager while connected (replay consumers are made on it). */
  get client(): JetStreamApi | undefined {
    return this.state === 'connected' ? this.api : undefined;
  }

  get stream(): string {
    return this.settings.stream;
  }

  /** The shared feed's consumers' counts now (posted with the events they delivered). */
  consumerCounts(): ConsumerStats[] {
    return this.feeds.map((f) => ({ ...f.counts }));
  }

  start(): void {
    void this.run();
  }

  private changed(): void {
    this.servingNow = this.state === 'connected' && this.feeds.length > 0 && this.feeds.every((f) => f.counts.state === 'consuming');
    this.onStatus();
  }

  private async run(): Promise<void> {
    const servers = this.settings.connection.servers;
    let warned = false;
    while (!this.closed && this.api === undefined) {
      try {
        const nc = await connect(this.settings.connection);
        if (this.closed) {
          await nc.close();
          return;
        }
        this.api = { nc, jsm: await jetstreamManager(nc, { checkAPI: false }) };
        this.connects++;
        this.state = 'connected';
        this.changed();
        void this.watchStatus(nc);
      } catch (err) {
        this.noteError(err);
        if (!warned) this.log.warn(`relay: cannot connect to NATS at ${String(servers)}: ${this.lastError}; trying again every ${RETRY_MS} ms`);
        warned = true;
        this.changed();
        await this.idle.sleep(RETRY_MS);
      }
    }
    warned = false;
    while (!this.closed) {
      try {
        await this.openSharedFeed();
        this.lastError = '';
        this.log.info(`relay: consuming JetStream stream ${this.settings.stream} (${this.settings.filters.join(', ')}) from ${this.api?.nc.getServer() ?? ''}`);
        this.changed();
        return;
      } catch (err) {
        this.noteError(err);
        for (const f of this.feeds) f.stop();
        this.feeds = [];
        if (!warned) this.log.warn(`relay: cannot consume JetStream stream ${this.settings.stream}: ${this.lastError}; trying again every ${RETRY_MS} ms`);
        warned = true;
        this.changed();
        await this.idle.sleep(RETRY_MS);
      }
    }
  }

  /**
   * One ordered consumer per filter: from the message after the stream's last one now,
   * or, in a thread started again, after the last one the main thread got.
   */
  private async openSharedFeed(): Promise<void> {
    const api = this.api;
    if (api === undefined) return;
    const resume = this.settings.resume;
    if (this.starts.some((s, i) => s === 0 && (resume?.[i]?.counts.lastStreamSeq ?? 0) === 0)) {
      const info = await api.jsm.streams.info(this.settings.stream);
      this.starts = this.starts.map((s) => (s === 0 ? info.state.last_seq + 1 : s));
    }
    const feeds = this.settings.filters.map((filter, i) => {
      const counts = resume?.[i]?.counts;
      const from = counts !== undefined && counts.lastStreamSeq > 0 ? counts.lastStreamSeq + 1 : this.starts[i];
      return new OrderedFeed(api, this.settings.stream, filter, { at: 'seq', seq: from }, (msg) => this.onMessage(i, msg), undefined, counts, () => this.changed());
    });
    this.feeds = feeds;
    await Promise.all(feeds.map((f) => f.open()));
  }

  private async watchStatus(nc: NatsConnection): Promise<void> {
    for await (const s of nc.status()) {
      if (this.closed) continue;
      if (s.type === 'disconnect') {
        this.disconnects++;
        this.state = 'disconnected';
        this.log.warn(`relay: disconnected from NATS ${s.server}; health is NOT_SERVING until it reconnects (the consumers resume where they were)`);
      } else if (s.type === 'reconnect') {
        this.connects++;
        this.state = 'connected';
        this.log.info(`relay: reconnected to NATS ${s.server}`);
      } else if (s.type === 'error') {
        this.noteError(s.error);
      } else {
        continue;
      }
      this.changed();
    }
  }

  private noteError(err: unknown): void {
    this.lastError = err instanceof Error ? err.message : String(err);
  }

  status(): SourceStatus {
    return {
      state: this.state,
      serving: this.servingNow,
      connects: this.connects,
      disconnects: this.disconnects,
      lastError: this.lastError,
      consumers: this.feeds.map((f) => ({ filter: f.counts.filter, state: f.counts.state, recreated: f.counts.recreated })),
      starts: [...this.starts],
    };
  }

  /** Stops the consumers and closes the connection (replay feeds on it end too). */
  async close(): Promise<void> {
    this.closed = true;
    this.state = 'closed';
    this.idle.wake();
    for (const f of this.feeds) f.stop();
    this.changed();
    await this.api?.nc.close().catch(() => undefined);
  }
}
