/**
 * Keeps one source's ingest thread alive: tells a dead or wedged thread (no heartbeat,
 * ring/layout.ts Slot.HEARTBEAT) from a live one, and restarts a socket or TCP source's
 * thread on the same ring and the same address, with backoff.
 *
 *   thread up --(exits, or no heartbeat for ingestWedgedMs: terminated)--> down
 *   down --(backoff: 0.5 s, 1 s, 2 s ... 30 s; at most 5 restarts a minute)--> restart
 *   restart --(new thread ready)--> up        restart --(fails to start)--> down
 *
 * The ring carries over: what the old thread published is consumed as usual, and a
 * record it had begun but not published is overwritten (the write index only moves
 * once a record is whole). What it had read but not yet published (a partial frame per
 * connection, the rest of one socket read) is lost with its connections, which the
 * producers see close. jsonl and synthetic sources are not restarted: a new thread
 * would read the file, or generate the count, again from the start.
 */
import type { FeederConfig, SourceKind } from '../config';
import type { RingConsumer } from '../ring';
import { IngestThread, type SourceEvents } from './thread';

export type RestartReason = 'exited' | 'wedged';
export const restartReasons: readonly RestartReason[] = ['exited', 'wedged'];

const BASE_BACKOFF_MS = 500;
const MAX_BACKOFF_MS = 30_000;
const MAX_RESTARTS_PER_MINUTE = 5;

export interface SupervisorEvents extends SourceEvents {
  /** A restart is due in `delayMs` (after the thread went down for `reason`). */
  onRestartScheduled(source: string, reason: RestartReason, delayMs: number): void;
  /** A restarted thread is up: the source reads again. */
  onRecovered(source: string, reason: RestartReason, address: string): void;
  /** A restart failed (the new thread did not start); another one is scheduled. */
  onRestartFailed(source: string, message: string): void;
}

export class SupervisedSource {
  /** Restarts begun, by why the thread went down. */
  readonly restarts: Record<RestartReason, number> = { exited: 0, wedged: 0 };
  private thread: IngestThread;
  private down = false;
  private stopping = false;
  private downFor: RestartReason = 'exited';
  private restartTimer: NodeJS.Timeout | undefined;
  private readonly restartTimes: number[] = [];
  /** The address the source first listened on (a restart listens there again). */
  private listenedOn = '';
  private lastBeat = -1;
  private lastBeatChangeMs = Date.now();
  private readonly threadEvents: SourceEvents;

  constructor(
    readonly name: string,
    readonly kind: Exclude<SourceKind, 'none'>,
    readonly ring: SharedArrayBuffer,
    private readonly consumer: RingConsumer,
    private readonly config: FeederConfig,
    gated: boolean,
    private readonly events: SupervisorEvents,
  ) {
    this.threadEvents = { ...events, onFailed: (_source, why) => this.threadFailed(why) };
    this.thread = new IngestThread(name, kind, ring, config, gated, this.threadEvents);
  }

  get address(): string {
    return this.thread.address;
  }

  get finished(): boolean {
    return this.thread.finished;
  }

  /** The source is not reading now: its thread died or is wedged, and no restart has succeeded yet. */
  get failed(): boolean {
    return this.down;
  }

  get restartable(): boolean {
    return this.kind === 'socket' || this.kind === 'tcp';
  }

  whenReady(): Promise<void> {
    return this.thread.whenReady().then(() => {
      this.listenedOn = this.thread.address;
      this.lastBeatChangeMs = Date.now();
    });
  }

  start(): void {
    this.thread.start();
  }

  async stop(timeoutMs: number): Promise<void> {
    this.stopping = true;
    clearTimeout(this.restartTimer);
    await this.thread.stop(timeoutMs);
  }

  /**
   * Called on the main thread's watchdog tick: a thread whose heartbeat has not moved for
   * ingestWedgedMs is terminated (and restarted, where it can be). A stall of the main
   * thread itself cannot make a live thread look wedged: the beats are counted in the
   * ring, and the next tick sees them.
   */
  checkHeartbeat(nowMs: number): void {
    const limit = this.config.ingestWedgedMs;
    if (limit <= 0 || this.down || this.stopping || this.thread.finished || this.thread.ended) return;
    const beat = this.consumer.heartbeat();
    if (beat !== this.lastBeat) {
      this.lastBeat = beat;
      this.lastBeatChangeMs = nowMs;
      return;
    }
    const silentMs = nowMs - this.lastBeatChangeMs;
    if (silentMs < limit) return;
    this.downFor = 'wedged';
    void this.thread.terminate(`ingest thread of source ${this.name} is wedged: no heartbeat for ${silentMs} ms (ingestWedgedMs ${limit}); terminated`);
  }

  private threadFailed(why: string): void {
    if (this.down) return;
    this.down = true;
    const reason = this.downFor;
    this.downFor = 'exited';
    this.events.onFailed(this.name, why);
    if (this.restartable && !this.stopping) this.scheduleRestart(reason);
  }

  private scheduleRestart(reason: RestartReason): void {
    const now = Date.now();
    while (this.restartTimes.length > 0 && this.restartTimes[0] <= now - 60_000) this.restartTimes.shift();
    let delayMs = Math.min(MAX_BACKOFF_MS, BASE_BACKOFF_MS * 2 ** this.restartTimes.length);
    // A crash loop restarts at most MAX_RESTARTS_PER_MINUTE times in any minute.
    if (this.restartTimes.length >= MAX_RESTARTS_PER_MINUTE) delayMs = Math.max(delayMs, this.restartTimes[0] + 60_000 - now);
    this.events.onRestartScheduled(this.name, reason, delayMs);
    this.restartTimer = setTimeout(() => void this.restart(reason), delayMs);
    this.restartTimer.unref();
  }

  private async restart(reason: RestartReason): Promise<void> {
    if (this.stopping) return;
    // A thread that was terminated is gone by now; one that died is too, but make sure.
    await this.thread.terminate('replaced by a restart');
    this.restartTimes.push(Date.now());
    this.restarts[reason]++;
    this.consumer.producerGone();
    // The same address: a TCP source that asked for port 0 keeps the port it was given.
    const config: FeederConfig = this.kind === 'tcp' && this.listenedOn !== '' ? { ...this.config, tcp: this.listenedOn } : this.config;
    const thread = new IngestThread(this.name, this.kind, this.ring, config, false, this.threadEvents);
    this.thread = thread;
    try {
      await thread.whenReady();
    } catch (err) {
      this.events.onRestartFailed(this.name, (err as Error).message);
      if (!this.stopping) this.scheduleRestart(reason);
      return;
    }
    if (this.stopping) return;
    this.down = false;
    this.lastBeat = this.consumer.heartbeat();
    this.lastBeatChangeMs = Date.now();
    this.events.onRecovered(this.name, reason, thread.address);
  }
}
