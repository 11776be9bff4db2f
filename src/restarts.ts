/**
 * The crash-loop bound every thread supervisor shares (an ingest source's thread, the
 * export thread, relay --from's JetStream thread): at most MAX_RESTARTS_PER_MINUTE
 * restarts in any minute.
 */
export const MAX_RESTARTS_PER_MINUTE = 5;
const WINDOW_MS = 60_000;

export class RestartWindow {
  private readonly times: number[] = [];

  /** Restarts within the minute before `now`. */
  recent(now: number): number {
    while (this.times.length > 0 && now - this.times[0] >= WINDOW_MS) this.times.shift();
    return this.times.length;
  }

  /** Whether one more restart fits in the minute before `now`. */
  allows(now: number): boolean {
    return this.recent(now) < MAX_RESTARTS_PER_MINUTE;
  }

  /** How long from `now` until one more fits (0 when it does). */
  waitMs(now: number): number {
    return this.allows(now) ? 0 : this.times[0] + WINDOW_MS - now;
  }

  record(now: number): void {
    this.times.push(now);
  }
}
