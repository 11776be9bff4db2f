/**
 * Signals a slow client once per crossing (nats.js protocol.ts, SlowNotifier): the
 * first overflow of its queue fires; further overflows stay quiet until the queue has
 * drained below `rearmBelow` events, which re-arms it. So a client that recovered is
 * not warned about again, one that falls behind again is, and a flapping queue near
 * its capacity does not fire on every offer.
 */
export class SlowNotifier {
  private armed = true;
  private listener: (() => void) | undefined;
  /** Times it fired. */
  crossings = 0;

  constructor(private readonly rearmBelow: number) {}

  /** Called with each crossing (at most one listener: the fan-out's). */
  onCrossing(listener: () => void): void {
    this.listener = listener;
  }

  overflowed(): void {
    if (!this.armed) return;
    this.armed = false;
    this.crossings++;
    this.listener?.();
  }

  drainedTo(depth: number): void {
    if (depth < this.rearmBelow) this.armed = true;
  }
}
