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
 * Each relay has consumers of its own (ephemeral, ordered: the client library recreates
 * one after a reconnect or missed heartbeats from the stream sequence after the last it
 * delivered), so several relays on one stream each get everything and serve their own
 * clients. The shared feed starts after the stream's last message at start-up (or, in a
 * thread started again, after the last message the main thread got): history is for
 * replaying clients only (replay.ts), each of which gets ordered consumers of its own
 * from its start point and stays on them, live included, so there is no seam between
 * history and live to lose or repeat an event at.
 *
 * Health is NOT_SERVING while the relay is not connected to NATS or its consumers are not
 * running (the main thread adds: or the thread is not running).
 */
import { connect, type NatsConnection, type NodeConnectionOptions } from '@nats-io/transport-node';
import { DeliverPolicy, jetstream, jetstreamManager, type ConsumeCallback, type ConsumerMessages, type FetchOptions, type JetStreamClient, type JsMsg, type OrderedConsumerOptions } from '@nats-io/jetstream';
import { WakeableSleep } from '../export';
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

const KINDS: Record<string, EventKind> = { alerts: 'alerts', logs: 'logs', messages: 'messages' };

/** alerts, logs or messages: the last token of `<prefix>.<cluster>.<node>.<kind>`. */
export function kindOfSubject(subject: string): EventKind | undefined {
  return KINDS[subject.slice(subject.lastIndexOf('.') + 1)];
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

/**
 * Lifetime of the shared feed's pull requests (the client's default is 30 s, with idle
 * heartbeats at half of it). A pull the server lost (it restarted) is noticed by missed
 * heartbeats and replaced: with 30 s the relay still stood still 20 s after a NATS restart
 * (test/relay-jetstream.test.ts, which then failed), with 5 s it resumes within a few
 * seconds, for one pull request every 5 s when idle.
 */
const CONSUME_EXPIRES_MS = 5000;

/** Largest pull of a paced feed, and how long one waits for messages (live) before the next. */
const PACED_MAX_MESSAGES = 4096;
const PACED_EXPIRES_MS = 1000;

/**
 * One ordered consumer on one subject filter. Unpaced (the shared feed): `consume` with a
 * callback, messages arrive on the connection's read loop without an iterator's promise
 * per message, and no client can hold the feed back. Paced (a replay): pulls of at most
 * the room left in its client's queue, so a history larger than the queue is read at the
 * client's speed instead of overflowing it (no client_queue_full from a replay).
 */
export class OrderedFeed {
  private messages: ConsumerMessages | undefined;
  private stopped = false;
  readonly counts: ConsumerStats;

  constructor(
    private readonly js: JetStreamClient,
    private readonly stream: string,
    readonly filter: string,
    private readonly start: FeedStart,
    private readonly onMessage: (msg: JsMsg) => void,
    private readonly pacing?: FeedPacing,
    /** Counts to go on from (the same feed on a thread that died). */
    seed?: ConsumerStats,
    private readonly onRecreated?: () => void,
  ) {
    this.counts = { ...(seed ?? { delivered: 0, pending: 0, redelivered: 0, recreated: 0, lastStreamSeq: 0 }), filter, state: 'starting' };
  }

  private deliver(msg: JsMsg): void {
    const counts = this.counts;
    counts.delivered++;
    counts.pending = msg.info.pending;
    counts.lastStreamSeq = msg.seq;
    if (msg.redelivered) counts.redelivered++;
    this.onMessage(msg);
  }

  /**
   * Creates the consumer and starts consuming; throws what the server answered. A paced
   * feed's pull loop runs on; it ends when the feed stops or its client goes away, and
   * rejects `pulled` (see there) if a pull fails.
   */
  async open(): Promise<void> {
    if (this.pacing !== undefined) {
      const consumer = await this.js.consumers.get(this.stream, this.consumerOptions());
      this.counts.state = 'consuming';
      this.pulled = this.pull(consumer, this.pacing);
      return;
    }
    await this.consumeAll();
  }

  /** A paced feed's pull loop: settles when it ends (rejects when a pull failed). */
  pulled: Promise<void> = Promise.resolve();

  private async pull(consumer: Awaited<ReturnType<JetStreamClient['consumers']['get']>>, pacing: FeedPacing): Promise<void> {
    while (!this.stopped && pacing.wanted()) {
      let room = pacing.room();
      if (room <= 0) {
        await pacing.waitForRoom();
        continue;
      }
      room = Math.min(room, PACED_MAX_MESSAGES);
      // A callback, not the iterator: no promise per message. fetch() takes one as consume()
      // does (the same PullConsumerMessagesImpl), though its type does not say so
      // (@nats-io/jetstream is pinned at 3.4.0).
      const options: FetchOptions & ConsumeCallback = { max_messages: room, expires: PACED_EXPIRES_MS, callback: (msg) => {
          if (!this.stopped) this.deliver(msg);
        },
      };
      const batch = await consumer.fetch(options);
      this.messages = batch;
      const failed = await batch.closed();
      if (failed instanceof Error && !this.stopped) throw failed;
      // The batch of what was gathered is posted at the end of the turn: only then does
      // room() count it as sent.
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  private consumerOptions(): Partial<OrderedConsumerOptions> {
    return this.start.at === 'time'
      ? { filter_subjects: this.filter, deliver_policy: DeliverPolicy.StartTime, opt_start_time: this.start.time }
      : { filter_subjects: this.filter, deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: Math.max(1, this.start.seq) };
  }

  private async consumeAll(): Promise<void> {
    const consumer = await this.js.consumers.get(this.stream, this.consumerOptions());
    if (this.stopped) return;
    this.messages = await consumer.consume({ max_messages: 4096, expires: CONSUME_EXPIRES_MS, callback: (msg) => this.deliver(msg) });
    if (this.stopped) {
      void this.messages.close();
      return;
    }
    this.counts.state = 'consuming';
    void this.watch(this.messages);
  }

  private async watch(messages: ConsumerMessages): Promise<void> {
    for await (const s of messages.status()) {
      if (s.type === 'ordered_consumer_recreated') {
        this.counts.recreated++;
        this.onRecreated?.();
      }
    }
  }

  stop(): void {
    this.stopped = true;
    this.counts.state = 'stopped';
    void this.messages?.close();
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

/** How long to wait before trying again when NATS or the stream is not there yet. */
const RETRY_MS = 1000;

/** The NATS connection and the shared feed, in the JetStream thread. */
export class JetStreamSource {
  private nc: NatsConnection | undefined;
  private js: JetStreamClient | undefined;
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
    private readonly onMessage: (filter: number, msg: JsMsg) => void,
    private readonly log: ThreadLog,
    private readonly onStatus: () => void,
  ) {
    this.starts = settings.filters.map((_, i) => settings.resume?.[i]?.start ?? 0);
  }

  /** The connection's JetStream client while connected (replay consumers are made on it). */
  get client(): JetStreamClient | undefined {
    return this.state === 'connected' ? this.js : undefined;
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
    while (!this.closed && this.nc === undefined) {
      try {
        const nc = await connect(this.settings.connection);
        if (this.closed) {
          await nc.close();
          return;
        }
        this.nc = nc;
        this.js = jetstream(nc);
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
        this.log.info(`relay: consuming JetStream stream ${this.settings.stream} (${this.settings.filters.join(', ')}) from ${this.nc?.getServer() ?? ''}`);
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
    const nc = this.nc;
    const js = this.js;
    if (nc === undefined || js === undefined) return;
    const resume = this.settings.resume;
    if (this.starts.some((s, i) => s === 0 && (resume?.[i]?.counts.lastStreamSeq ?? 0) === 0)) {
      const info = await (await jetstreamManager(nc)).streams.info(this.settings.stream);
      this.starts = this.starts.map((s) => (s === 0 ? info.state.last_seq + 1 : s));
    }
    const feeds = this.settings.filters.map((filter, i) => {
      const counts = resume?.[i]?.counts;
      const from = counts !== undefined && counts.lastStreamSeq > 0 ? counts.lastStreamSeq + 1 : this.starts[i];
      return new OrderedFeed(js, this.settings.stream, filter, { at: 'seq', seq: from }, (msg) => this.onMessage(i, msg), undefined, counts, () => this.changed());
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
    await this.nc?.close().catch(() => undefined);
  }
}
