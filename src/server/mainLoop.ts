/**
 * The main thread's event-loop delay as `/stats` reports it (perf_hooks), beside the
 * stalls the health port's thread saw (healthPort.ts), for serve and relay alike.
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';

export interface MainLoopStats {
  delayP50Ms: number;
  delayP99Ms: number;
  delayMaxMs: number;
  /** Stalls over mainLoopStallMs the health port's thread saw (it said NOT_SERVING meanwhile). */
  stalls: number;
}

export class MainLoopMonitor {
  private readonly delay: IntervalHistogram = monitorEventLoopDelay({ resolution: 20 });

  constructor() {
    this.delay.enable();
  }

  stats(stalls: number): MainLoopStats {
    return {
      delayP50Ms: this.delay.percentile(50) / 1e6,
      delayP99Ms: this.delay.percentile(99) / 1e6,
      delayMaxMs: this.delay.max / 1e6,
      stalls,
    };
  }

  stop(): void {
    this.delay.disable();
  }
}
