/**
 * How often a thread that dies (a bug) is started again: at most `max` times within any
 * `windowMs`, then not (the export thread and the relay's JetStream thread; the ingest
 * threads' supervisor delays instead of stopping, ingest/supervisor.ts).
 */
export const MAX_RESTARTS = 5;
export const RESTART_WINDOW_MS = 60_000;

export class RestartBudget {
  private readonly times: number[] = [];

  constructor(
    readonly max = MAX_RESTARTS,
    readonly windowMs = RESTART_WINDOW_MS,
  ) {}

  /** Whether one more restart is allowed now; when it is, it is counted. */
  take(now = Date.now()): boolean {
    while (this.times.length > 0 && now - this.times[0] > this.windowMs) this.times.shift();
    if (this.times.length >= this.max) return false;
    this.times.push(now);
    return true;
  }
}
