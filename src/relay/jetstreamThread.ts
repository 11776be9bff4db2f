/**
 * relay --from, the main thread's side of the JetStream thread (jetstream.worker.ts):
 *
 *   JetStream thread ──events (one buffer per target per turn, transferred)──> JetStreamThread
 *     shared feed:  per-node sequences (NodeSequences) ──> RelayBatcher.publishEvents ──> FanoutHub
 *     a replay:     ReplaySink.batch (its own batcher and hub), then its pacing slots
 *   main ──openReplay / stopReplay / close──> thread;  control slot ATTRS (server-side filters)
 *   thread ──status, log, replayFailed──> main
 *
 * The per-node sequence check runs here, on the typed arrays the batch carries (a few
 * operations per event): its counts are then exact for what the main thread got, and a
 * thread started again goes on from them. The consumers' counts come with the events they
 * delivered, so /stats never counts an event the fan-out has not seen.
 *
 * A thread that dies (a bug) is counted, logged, and started again (at most MAX_RESTARTS a
 * minute): health is NOT_SERVING until the new one serves. Nothing is lost or repeated:
 * the new thread's consumers start after the last stream sequence the main thread got
 * (the shared feed's and each replay's, which go on), so what the dead one held is read
 * again. Past the limit the relay stays NOT_SERVING, its replays end UNAVAILABLE, and
 * `relay.jetstream.thread.failed` says so.
 */
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { DaemonLog } from '../messages';
import { MAX_RESTARTS, RestartBudget } from '../restarts';
import type { RelayBatcher } from './batcher';
import { forEachSequence, type RelayEventBatch } from './eventBatch';
import type { ConsumerStats, JetStreamSourceStats } from '../stats';
import type { FeedStart, SourceStatus } from './jetstream';
import {
  CONTROL_SLOTS,
  ControlSlot,
  REPLAY_ROOM_POLL_MS,
  REPLAY_SLOTS,
  ReplaySlot,
  SHARED_TARGET,
  type FromJetStreamThread,
  type JetStreamThreadSettings,
  type JetStreamWorkerData,
  type ToJetStreamThread,
} from './jetstreamProtocol';
import type { EventKind } from './scan';
import { NodeSequences } from './sequence';


/** Where a replay's events go, on the main thread. */
export interface ReplaySink {
  batch(batch: RelayEventBatch): void;
  /** Its consumers failed (or no thread runs them any more): the stream ends UNAVAILABLE. */
  failed(why: string): void;
}

export interface ReplaySpec {
  kind: EventKind;
  /** Subject filters, one ordered consumer each. */
  filters: string[];
  start: FeedStart;
  /** Whether its client filters on the server (the thread fills attrs). */
  attrs: boolean;
  /** Its client's queue: size, and events in it now. */
  capacity: number;
  depth: () => number;
}

interface ReplayChannel {
  spec: ReplaySpec;
  sink: ReplaySink;
  slots: SharedArrayBuffer;
  view: Int32Array;
  /** Events taken from the current thread (mod 2^32): ReplaySlot.RECEIVED. */
  received: number;
  /** Per filter, the last stream sequence the main thread got (where a new thread resumes). */
  lastSeqs: number[];
  /** Set when a new thread must open it again, once connected to NATS. */
  reopen: boolean;
}

const zeroCounts = (filter: string): ConsumerStats => ({ filter, state: 'starting', delivered: 0, pending: 0, redelivered: 0, recreated: 0, lastStreamSeq: 0 });

export class JetStreamThread {
  private worker: Worker | undefined;
  private generation = 0;
  private readonly control = new SharedArrayBuffer(CONTROL_SLOTS * 4);
  private status: SourceStatus = { state: 'connecting', serving: false, connects: 0, disconnects: 0, lastError: '', consumers: [], starts: [] };
  /** Per shared filter: counts as of the last events the main thread got. */
  private readonly counts: ConsumerStats[];
  private running = false;
  /** Set when no thread runs any more: closed, or dead past the restart limit. */
  private stopped: string | undefined;
  private failed = false;
  private restarts = 0;
  private readonly restartBudget = new RestartBudget();
  private servingNow = false;
  private readonly replays = new Map<number, ReplayChannel>();
  private nextReplay = SHARED_TARGET + 1;
  private roomTimer: NodeJS.Timeout | undefined;
  private closedSignal: (() => void) | undefined;
  readonly sequences = new NodeSequences();
  private unknownSubject = 0;

  /** `batcher`: the shared feed's; `onServing`: health, on every change. */
  constructor(
    private readonly settings: JetStreamThreadSettings,
    private readonly batcher: RelayBatcher,
    private readonly log: DaemonLog,
    private readonly onServing: (serving: boolean) => void,
  ) {
    this.counts = settings.filters.map(zeroCounts);
  }

  get stream(): string {
    return this.settings.stream;
  }

  /** Whether a replay can be opened now: a thread runs and is connected to NATS. */
  get available(): boolean {
    return this.running && this.status.state === 'connected';
  }

  start(): void {
    this.spawn();
  }

  /** Whether the shared feed's batches should carry filter attributes (a client filters on the server). */
  setAttrsWanted(wanted: boolean): void {
    Atomics.store(new Int32Array(this.control), ControlSlot.ATTRS, wanted ? 1 : 0);
  }

  private spawn(): void {
    const resume = this.generation === 0 ? undefined : this.counts.map((counts, i) => ({ counts: { ...counts, recreated: this.status.consumers[i]?.recreated ?? counts.recreated }, start: this.status.starts[i] ?? 0 }));
    const workerData: JetStreamWorkerData = { settings: this.settings, control: this.control, generation: this.generation, ...(resume !== undefined ? { resume } : {}) };
    // No resourceLimits: the process's --max-semi-space-size=2 caps this isolate's young
    // generation too (resourceLimits cannot raise it), and running the relay without the
    // flag changed neither this thread's CPU nor Y1 measurably. Its scavenges pause no
    // gRPC write either way.
    const worker = new Worker(path.resolve(__dirname, 'jetstream.worker.js'), { workerData });
    this.worker = worker;
    this.running = true;
    this.status = { ...this.status, state: 'connecting', serving: false };
    worker.on('message', (msg: FromJetStreamThread) => {
      if (worker === this.worker) this.onMessage(msg);
    });
    worker.on('error', (err) => this.onDeath(worker, `relay JetStream thread failed: ${err.message}`));
    worker.once('exit', (code) => this.onDeath(worker, `relay JetStream thread exited (code ${code})`));
    for (const r of this.replays.values()) r.reopen = true;
  }

  private post(msg: ToJetStreamThread): void {
    if (this.running) this.worker?.postMessage(msg);
  }

  private onMessage(msg: FromJetStreamThread): void {
    switch (msg.type) {
      case 'events':
        if (msg.target === SHARED_TARGET) this.onShared(msg.batch, msg.consumers);
        else this.onReplay(msg.target, msg.batch, msg.consumers);
        return;
      case 'status':
        this.status = msg.status;
        this.refreshServing();
        if (msg.status.state === 'connected') {
          for (const [id, r] of this.replays) if (r.reopen) this.postOpen(id, r);
        }
        return;
      case 'log':
        this.log[msg.level](msg.text);
        return;
      case 'replayFailed': {
        const r = this.replays.get(msg.id);
        if (r === undefined) return;
        this.replays.delete(msg.id);
        r.sink.failed(msg.message);
        return;
      }
      case 'closed':
        this.closedSignal?.();
        return;
    }
  }

  private onShared(batch: RelayEventBatch, consumers: ConsumerStats[]): void {
    const sequences = this.sequences;
    forEachSequence(batch, (nodeId, kind, seq) => sequences.observe(nodeId, kind, seq));
    this.unknownSubject += batch.unknownSubject;
    this.batcher.publishEvents(batch);
    for (let i = 0; i < consumers.length && i < this.counts.length; i++) this.counts[i] = consumers[i];
  }

  private onReplay(id: number, batch: RelayEventBatch, consumers: ConsumerStats[]): void {
    const r = this.replays.get(id);
    if (r === undefined) return;
    r.received = (r.received + batch.events) | 0;
    r.sink.batch(batch);
    for (let i = 0; i < consumers.length && i < r.lastSeqs.length; i++) r.lastSeqs[i] = consumers[i].lastStreamSeq;
    this.writeRoom(r);
  }

  /** DEPTH, then RECEIVED (see ReplaySlot). */
  private writeRoom(r: ReplayChannel): void {
    Atomics.store(r.view, ReplaySlot.DEPTH, r.spec.depth());
    Atomics.store(r.view, ReplaySlot.RECEIVED, r.received);
  }

  private refreshServing(): void {
    const serving = this.running && this.status.serving;
    if (serving === this.servingNow) return;
    this.servingNow = serving;
    this.onServing(serving);
  }

  /** Opens a replay on the thread; its events go to `sink` until stop(). */
  openReplay(spec: ReplaySpec, sink: ReplaySink): { stop(): void } {
    const id = this.nextReplay++;
    const slots = new SharedArrayBuffer(REPLAY_SLOTS * 4);
    const r: ReplayChannel = { spec, sink, slots, view: new Int32Array(slots), received: 0, lastSeqs: spec.filters.map(() => 0), reopen: false };
    this.replays.set(id, r);
    this.postOpen(id, r);
    if (this.roomTimer === undefined) {
      this.roomTimer = setInterval(() => {
        for (const c of this.replays.values()) this.writeRoom(c);
      }, REPLAY_ROOM_POLL_MS);
      this.roomTimer.unref();
    }
    return {
      stop: () => {
        if (!this.replays.delete(id)) return;
        this.post({ type: 'stopReplay', id });
        if (this.replays.size === 0) this.stopRoomTimer();
      },
    };
  }

  /** Opens (or, on a new thread, reopens after what the main thread got) replay `id`. */
  private postOpen(id: number, r: ReplayChannel): void {
    r.reopen = false;
    r.received = 0;
    Atomics.store(r.view, ReplaySlot.CAPACITY, r.spec.capacity);
    this.writeRoom(r);
    const starts = r.lastSeqs.map((seq): FeedStart => (seq > 0 ? { at: 'seq', seq: seq + 1 } : r.spec.start));
    this.post({ type: 'openReplay', id, kind: r.spec.kind, filters: r.spec.filters, starts, attrs: r.spec.attrs, slots: r.slots });
  }

  private stopRoomTimer(): void {
    clearInterval(this.roomTimer);
    this.roomTimer = undefined;
  }

  private onDeath(worker: Worker, why: string): void {
    if (worker !== this.worker || !this.running) return;
    this.running = false;
    this.worker = undefined;
    void worker.terminate();
    if (this.stopped !== undefined) {
      this.closedSignal?.();
      return;
    }
    this.status = { ...this.status, state: 'connecting', serving: false, lastError: why, consumers: this.status.consumers.map((c) => ({ ...c, state: 'starting' })) };
    this.refreshServing();
    if (!this.restartBudget.take()) {
      this.stopped = why;
      this.failed = true;
      this.status = { ...this.status, state: 'closed', consumers: this.status.consumers.map((c) => ({ ...c, state: 'failed' })) };
      this.log.error(`relay: ${why}, the ${MAX_RESTARTS + 1}th time within a minute; not started again: health stays NOT_SERVING and replays end`);
      for (const [id, r] of [...this.replays]) {
        this.replays.delete(id);
        r.sink.failed(why);
      }
      this.stopRoomTimer();
      return;
    }
    this.restarts++;
    this.generation++;
    this.log.error(`relay: ${why}; starting it again (health NOT_SERVING until it serves; its consumers resume after the last event relayed, nothing lost)`);
    this.spawn();
  }

  stats(): JetStreamSourceStats {
    const seq = this.sequences;
    const status = this.status;
    return {
      servers: [...this.settings.servers],
      stream: this.settings.stream,
      state: status.state,
      serving: this.servingNow,
      connects: status.connects,
      disconnects: status.disconnects,
      lastError: status.lastError,
      consumers: status.consumers.map((c, i) => ({ ...(this.counts[i] ?? zeroCounts(c.filter)), filter: c.filter, state: c.state, recreated: c.recreated })),
      nodes: Object.fromEntries([...seq.runs].map(([id, r]) => [id, { host: r.host, events: { ...r.events }, lastSeq: { ...r.lastSeq }, gaps: { ...r.gaps }, repeats: r.repeats }])),
      gaps: Object.fromEntries([...seq.gapsByHost].map(([host, g]) => [host, { ...g }])),
      unsequenced: seq.unsequenced,
      unknownSubject: this.unknownSubject,
      thread: { running: this.running, restarts: this.restarts, failed: this.failed },
    };
  }

  /**
   * Stops the consumers (replays' too), takes what the thread gathered, closes the NATS
   * connection and the thread.
   */
  async close(): Promise<void> {
    this.stopRoomTimer();
    this.replays.clear();
    if (this.stopped !== undefined) return;
    this.stopped = 'closed';
    const worker = this.worker;
    if (worker === undefined || !this.running) return;
    const closed = new Promise<void>((resolve) => (this.closedSignal = resolve));
    this.post({ type: 'close' });
    await closed;
    this.running = false;
    this.status = { ...this.status, state: 'closed', serving: false };
    this.refreshServing();
    await worker.terminate();
  }
}
