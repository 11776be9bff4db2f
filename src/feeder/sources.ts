/**
 * The feeder's sources: one supervised ingest thread per configured source, each with
 * its ring on the encode stage, and the main thread's own ring for Feeder.push(), made
 * on the first push. Holds back the sources that run on their own until enough clients
 * are connected (--wait-clients), tells when the sources that end have ended, and
 * reports each source for the stats.
 */
import { ringSizeFor, whenFullFor, type FeederConfig, type SourceKind } from '../config';
import type { EncodeStage } from '../encode';
import { InputError } from '../errors';
import type { IngestEvent } from '../event';
import type { FanoutHub } from '../fanout';
import { Admission, SupervisedSource, type SupervisorEvents } from '../ingest';
import type { DaemonLog } from '../messages';
import { allocateRing, type RingConsumer } from '../ring';
import { inProcessSource, sourceStats, type SourceStats } from '../stats';
import { nowMicros } from '../wire/time';
import type { FeederNotices } from './notices';

/**
 * The sources that run on their own (a synthetic count, a jsonl replay of a file or
 * stdin): they can end, and could be over before a client connects, so --wait-clients
 * holds them back. Socket and TCP producers are never held back and never end.
 */
const SELF_DRIVEN: readonly SourceKind[] = ['synthetic', 'jsonl'];
/** The ring of Feeder.push(), by its name in the stats. */
const PUSHED = 'embedded';

export class IngestSources {
  private readonly threads: SupervisedSource[] = [];
  private readonly consumers = new Map<string, RingConsumer>();
  /** Producer connections the broker closed or refused, per source and code. */
  private readonly disconnects = new Map<string, Map<string, number>>();
  private readonly finishWaiters: (() => void)[] = [];
  private readonly gated: boolean;
  private pushed: Admission | undefined;

  constructor(
    private readonly config: FeederConfig,
    private readonly encode: EncodeStage,
    private readonly log: DaemonLog,
    notices: FeederNotices,
    /** A source went down or came back: health may change. */
    onHealthChange: () => void,
  ) {
    this.gated = config.waitClients > 0;
    const events: SupervisorEvents = {
      onRejected: (source, msg) => notices.rejected(source, msg),
      onDisconnected: (source, msg) => {
        const byCode = this.disconnects.get(source) ?? new Map<string, number>();
        this.disconnects.set(source, byCode);
        byCode.set(msg.code, (byCode.get(msg.code) ?? 0) + 1);
        notices.disconnected(source, msg);
      },
      onFinished: (source, msg) => {
        log.info(
          `source ${source} finished: ${msg.events} events admitted of ${msg.read} ${msg.unit} (${msg.rejected} rejected as malformed_input, ${msg.ringFull} dropped as ring_full) in ${(msg.elapsedMs / 1000).toFixed(3)} s`,
        );
        this.checkFinished();
      },
      onRotated: (source, msg) => notices.rotated(source, msg),
      onFatal: (source, msg) => log.error(`source ${source} failed: ${msg.code}: ${msg.message}`),
      onFailed: (source, why) => {
        // A source that is gone is not a state to serve in: probes and load balancers
        // should see it, and the events it would have read are nowhere else.
        log.error(`${why}; no events are read from ${source}: health is NOT_SERVING`);
        onHealthChange();
        this.checkFinished();
      },
      onRestartScheduled: (source, reason, delayMs) => log.info(`restarting the ingest thread of source ${source} (${reason}) in ${delayMs} ms`),
      onRestartFailed: (source, message) => log.error(`the restarted ingest thread of source ${source} did not start: ${message}`),
      onRecovered: (source, reason, address) => {
        log.info(`source ${source} restarted (${reason}) on ${address}: reading again`);
        onHealthChange();
      },
    };
    for (const kind of config.source) {
      if (kind === 'none') continue;
      const ring = allocateRing(ringSizeFor(config, kind));
      const consumer = encode.addRing(kind, ring);
      this.consumers.set(kind, consumer);
      this.threads.push(new SupervisedSource(kind, kind, ring, consumer, config, this.gated && SELF_DRIVEN.includes(kind), events));
    }
  }

  /** Resolves once every source's thread is up (listening, or reading its file). */
  async ready(): Promise<void> {
    await Promise.all(this.threads.map((t) => t.whenReady()));
  }

  /** Where each source reads, by name. */
  addresses(): Record<string, string> {
    return Object.fromEntries(this.threads.map((t) => [t.name, t.address]));
  }

  /** No source is down (dead, or wedged and not yet restarted). */
  get working(): boolean {
    return this.threads.every((t) => !t.failed);
  }

  /** The watchdog's tick: a thread whose heartbeat stopped is ended (and restarted, where it can be). */
  checkHeartbeats(nowMs: number): void {
    for (const t of this.threads) t.checkHeartbeat(nowMs);
  }

  /** --wait-clients: starts the held-back sources once that many Watch* streams are open. */
  startWhenClients(hub: FanoutHub): void {
    if (!this.gated) return;
    let started = false;
    hub.onSubscribersChanged(() => {
      if (started || hub.count() < this.config.waitClients) return;
      started = true;
      const held = this.threads.filter((t) => SELF_DRIVEN.includes(t.kind));
      // "generating with N streams" is gofeeder's wording, which bench:peers waits for.
      this.log.info(`generating with ${hub.count()} streams connected: starting ${held.map((t) => t.name).join(', ')}`);
      for (const t of held) t.start();
    });
  }

  /** Feeder.push(): admitted as an ingest thread admits a frame; false when the ring is full, InputError thrown on bad input. */
  push(event: IngestEvent): boolean {
    if (this.pushed === undefined) {
      const ring = allocateRing(ringSizeFor(this.config, PUSHED));
      this.consumers.set(PUSHED, this.encode.addRing(PUSHED, ring));
      // Rejections are thrown to the caller, who is the one to tell: no samples to report.
      this.pushed = new Admission(ring, { postMessage: () => undefined }, 'drop');
    }
    const admitted = this.pushed.admit(event, nowMicros(), PUSHED);
    if (admitted instanceof InputError) throw admitted;
    return admitted === 'queued';
  }

  /** Resolves when every source that ends (count, file) has ended and everything it produced was encoded and handed on. */
  finished(): Promise<void> {
    return new Promise((resolve) => {
      this.finishWaiters.push(resolve);
      this.checkFinished();
    });
  }

  /** Stops every source thread (each within `timeoutMs`) and ends push()'s ring. */
  async stop(timeoutMs: number): Promise<void> {
    await Promise.all(this.threads.map((t) => t.stop(timeoutMs)));
    this.pushed?.close();
  }

  stats(): Record<string, SourceStats> {
    const out: Record<string, SourceStats> = {};
    for (const [name, consumer] of this.consumers) {
      const t = this.threads.find((x) => x.name === name);
      const state = t !== undefined ? { kind: t.kind, address: t.address, whenFull: whenFullFor(this.config, t.kind), finished: t.finished, failed: t.failed, restarts: t.restarts } : inProcessSource(name);
      out[name] = sourceStats(consumer.stats(), state, this.disconnects.get(name));
    }
    return out;
  }

  private checkFinished(): void {
    if (this.threads.every((t) => t.finished || t.failed || !SELF_DRIVEN.includes(t.kind)) && !this.config.follow) {
      void this.encode.drain().then(() => this.finishWaiters.splice(0).forEach((f) => f()));
    }
  }
}
