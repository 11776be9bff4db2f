/**
 * The feeder's health and its watchdog. grpc.health.v1 says SERVING only while every
 * part works: no source down (dead, or wedged and not yet restarted) and no encoder task
 * overdue; and not after close() began. The watchdog ends wedged ingest threads (no
 * heartbeat) and encoder tasks (over encoderTaskTimeoutMs), and health follows what is up.
 */
import type { FeederConfig } from '../config';
import type { EncodeStage } from '../encode';
import type { DaemonLog } from '../messages';
import type { RunningServer } from '../server';
import type { IngestSources } from './sources';

/** The main thread's check of wedged threads and tasks. */
const WATCHDOG_MS = 250;

export class HealthWatch {
  private serving = true;
  private stopped = false;
  private server: RunningServer | undefined;
  private watchdog: NodeJS.Timeout | undefined;
  private lastTickMs = 0;

  constructor(
    private readonly config: FeederConfig,
    private readonly log: DaemonLog,
    private readonly encode: EncodeStage,
    private readonly sources: IngestSources,
  ) {}

  /** Sets health from what is up now; the server, once there is one, is told of a change. */
  refresh(): void {
    const now = this.sources.working && !this.encode.hasOverdueTask();
    if (now === this.serving || this.stopped) return;
    this.serving = now;
    this.server?.setServing(now);
  }

  /** The server that says it from now on (SERVING unless a part went down during the start). */
  serveOn(server: RunningServer): void {
    this.server = server;
    if (!this.serving) server.setServing(false);
  }

  start(): void {
    this.lastTickMs = Date.now();
    this.watchdog = setInterval(() => this.tick(), WATCHDOG_MS);
    this.watchdog.unref();
  }

  /** close() began: health no longer changes, the watchdog no longer runs. */
  stop(): void {
    this.stopped = true;
    clearInterval(this.watchdog);
  }

  private tick(): void {
    const now = Date.now();
    // The health port's thread said NOT_SERVING during a stall this long; say it here too, afterwards.
    const lateMs = now - this.lastTickMs - WATCHDOG_MS;
    this.lastTickMs = now;
    const { mainLoopStallMs, encoderTaskTimeoutMs } = this.config;
    if (lateMs > mainLoopStallMs) this.log.warn(`the main loop did not run for ${lateMs} ms (over mainLoopStallMs ${mainLoopStallMs}): the health port said NOT_SERVING meanwhile`);
    this.sources.checkHeartbeats(now);
    const aborted = this.encode.abortOverdueTasks(encoderTaskTimeoutMs);
    if (aborted > 0) this.log.error(`${aborted} encoder task(s) ran over ${encoderTaskTimeoutMs} ms (encoderTaskTimeoutMs): their threads are replaced, their events dropped as encode_error`);
    this.refresh();
  }
}
