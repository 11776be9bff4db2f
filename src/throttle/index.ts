/**
 * The feeder's user-space alert throttle (kubearmor-wire.md 2.6), per bucket (the
 * container; host events share the '' bucket). Upstream's state machine, quirks kept:
 * the throttle period runs from the start of the 1-second window, and the alert that
 * crosses the threshold is not dropped but becomes the AlertThreshold notice.
 */
export const enum ThrottleDecision {
  Pass = 0,
  Drop = 1,
  Notice = 2,
}

interface Bucket {
  count: number;
  windowStartUs: number;
  throttled: boolean;
}

export class AlertThrottle {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    readonly maxAlertPerSec: number,
    readonly throttleSec: number,
  ) {}

  check(key: string, nowUs: number): ThrottleDecision {
    const b = this.buckets.get(key);
    if (b === undefined) {
      this.buckets.set(key, { count: 1, windowStartUs: nowUs, throttled: false });
      return this.maxAlertPerSec < 1 ? this.cross(this.buckets.get(key) as Bucket) : ThrottleDecision.Pass;
    }
    const sinceStart = nowUs - b.windowStartUs;
    if (b.throttled && sinceStart < this.throttleSec * 1e6) return ThrottleDecision.Drop;
    if (sinceStart >= 1e6) {
      b.windowStartUs = nowUs;
      b.count = 1;
      b.throttled = false;
    } else {
      b.count++;
    }
    return b.count > this.maxAlertPerSec ? this.cross(b) : ThrottleDecision.Pass;
  }

  private cross(b: Bucket): ThrottleDecision {
    b.count = 0;
    b.throttled = true;
    return ThrottleDecision.Notice;
  }

  /** Forgets a bucket (upstream: DeleteAlertMapKey when the container goes away). */
  forget(key: string): void {
    this.buckets.delete(key);
  }

  get size(): number {
    return this.buckets.size;
  }
}
