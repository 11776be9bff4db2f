/**
 * How busy one of the load tool's own threads was, so a run can tell when the
 * tool (not the broker) was the limit. Each worker meters itself:
 *
 * - event-loop utilization (performance.eventLoopUtilization), the share of
 *   wall time the thread spent outside its idle wait: 1.0 = it never waited for I/O;
 * - its CPU time, from /proc/thread-self/stat (process.threadCpuUsage is not in Node 20;
 *   a synchronous fs call runs on the calling thread, so thread-self is this worker);
 * - event-loop delay (perf_hooks.monitorEventLoopDelay): how late timers fire.
 *
 * One sample per interval (500 ms); the summary says which share of them were saturated.
 */
import { monitorEventLoopDelay, performance, type EventLoopUtilization, type IntervalHistogram } from 'node:perf_hooks';
import { statCpuSeconds } from './proc-sampler';
import { epochMs } from './send-times';

export interface ThreadSample {
  /** Epoch ms at the end of the sample. */
  at: number;
  /** Event-loop utilization over the sample, 0..1. */
  elu: number;
  /** CPU time over the sample, in % of one core; null where /proc is unavailable. */
  cpuPct: number | null;
}

export interface ThreadSummary {
  samples: ThreadSample[];
  /** Event-loop utilization over the whole metered span, 0..1. */
  meanElu: number;
  /** Share of the samples with ELU at or over `saturatedElu`, 0..1. */
  saturatedShare: number;
  cpuSec: number | null;
  /** Event-loop delay, ms. */
  delayP99Ms: number;
  delayMaxMs: number;
}

/** A sample at or above this event-loop utilization counts as saturated. */
export const saturatedElu = 0.9;

/**
 * A thread was the limit of a run when it was saturated over the whole run, or for
 * at least this share of its samples (a client that falls behind for a second loses events).
 */
export const saturatedShareLimit = 0.25;

export function isSaturated(t: Pick<ThreadSummary, 'meanElu' | 'saturatedShare'>): boolean {
  return t.meanElu >= saturatedElu || t.saturatedShare >= saturatedShareLimit;
}

function threadCpuSeconds(): number | null {
  return statCpuSeconds('/proc/thread-self/stat') ?? null;
}

export class ThreadMeter {
  private readonly samples: ThreadSample[] = [];
  private timer: NodeJS.Timeout | undefined;
  private startElu: EventLoopUtilization | undefined;
  private lastElu: EventLoopUtilization | undefined;
  private startCpu: number | null = null;
  private lastCpu: number | null = null;
  private lastAt = 0;
  private delay: IntervalHistogram | undefined;

  constructor(private readonly intervalMs = 500) {}

  start(): void {
    this.startElu = performance.eventLoopUtilization();
    this.lastElu = this.startElu;
    this.startCpu = threadCpuSeconds();
    this.lastCpu = this.startCpu;
    this.lastAt = epochMs();
    this.delay = monitorEventLoopDelay({ resolution: 10 });
    this.delay.enable();
    this.timer = setInterval(() => this.sample(), this.intervalMs);
    this.timer.unref();
  }

  private sample(): void {
    if (this.lastElu === undefined) return;
    const now = epochMs();
    const elu = performance.eventLoopUtilization();
    const cpu = threadCpuSeconds();
    const dt = (now - this.lastAt) / 1000;
    this.samples.push({
      at: now,
      elu: performance.eventLoopUtilization(elu, this.lastElu).utilization,
      cpuPct: cpu !== null && this.lastCpu !== null && dt > 0 ? ((cpu - this.lastCpu) / dt) * 100 : null,
    });
    this.lastElu = elu;
    this.lastCpu = cpu;
    this.lastAt = now;
  }

  finish(): ThreadSummary {
    if (this.timer !== undefined) clearInterval(this.timer);
    if (this.startElu === undefined) return { samples: [], meanElu: 0, saturatedShare: 0, cpuSec: null, delayP99Ms: 0, delayMaxMs: 0 };
    if (epochMs() - this.lastAt >= this.intervalMs / 5) this.sample();
    this.delay?.disable();
    const total = performance.eventLoopUtilization(this.startElu);
    const cpu = threadCpuSeconds();
    const n = this.samples.length;
    return {
      samples: this.samples,
      meanElu: total.utilization,
      saturatedShare: n > 0 ? this.samples.filter((s) => s.elu >= saturatedElu).length / n : 0,
      cpuSec: cpu !== null && this.startCpu !== null ? cpu - this.startCpu : null,
      delayP99Ms: this.delay !== undefined && this.delay.count > 0 ? this.delay.percentile(99) / 1e6 : 0,
      delayMaxMs: this.delay !== undefined && this.delay.count > 0 ? this.delay.max / 1e6 : 0,
    };
  }
}
