/**
 * `armorfeed tune`: runs armorfeed itself under a sweep of broker settings (queue
 * size, encoder threads, batch size, ring size), event rates and consumer speeds,
 * one short load run per point, each against a fresh `armorfeed serve` child. It
 * then answers, per (rate, consumers): the smallest queue size that kept the worst
 * client's drops under the target, with the memory per client and the latency it costs.
 */
import * as os from 'node:os';
import { LoadFlagError, runLoad, startBroker, threadBusyText, validateLoadOptions, type BrokerFlags, type LoadOptions, type LoadReport, type RunningBroker, type StreamChoice } from '../load';
import type { BrokerSettings, MemoryPerClient, MemoryRun, TunePoint, TuneProbe, TuneRecommendation, TuneReport } from './model';

export interface TuneOptions {
  queueSizes: number[];
  encoderThreads: (number | null)[];
  batchSizes: (number | null)[];
  ringSizes: (number | null)[];
  /** Event rates to sweep; empty = find the highest rate the machine sustains first, then sweep from 10,000 ev/s up to it. */
  rates: number[];
  burst: number;
  clients: number;
  slowClients: number;
  /** Consumer speeds to sweep: the per-event delay of the slow clients. */
  slowDelaysUs: number[];
  streams: StreamChoice;
  alertEvery: number;
  pointDurationMs: number;
  targetDropPct: number;
  /** The sweep is refused up front if its estimate exceeds this, and cut short if it runs over. */
  maxWallMs: number;
  /** Test hook: a different CLI entry point for `serve`. */
  cliMain?: string;
}

export const tuneDefaults: Readonly<Omit<TuneOptions, 'encoderThreads' | 'batchSizes' | 'ringSizes' | 'cliMain'>> = {
  queueSizes: [64, 256, 1024, 4096],
  rates: [],
  burst: 500,
  clients: 3,
  slowClients: 1,
  slowDelaysUs: [50],
  streams: 'both',
  alertEvery: 5,
  pointDurationMs: 3000,
  targetDropPct: 0.1,
  maxWallMs: 110_000,
};

/** Broker start, registration, drain and stop around each point's measured seconds. */
const overheadPerPointMs = 2500;

export interface TuneObserver {
  onPoint?(done: number, total: number, point: TunePoint): void;
  onNote?(line: string): void;
}

export interface PlannedPoint {
  settings: BrokerSettings;
  rate: number;
  slowDelayUs: number;
}

/** The lowest rate of the automatic sweep, and how many rates it has at most. */
export const autoRateFloor = 10_000;
const autoRateCount = 3;
/** The probe for the automatic sweep: one short run as fast as the broker takes events. */
const probeDurationMs = 2000;

/** Rates from 10,000 ev/s up to `max`, doubling, with `max` itself last. */
export function autoRates(max: number): number[] {
  if (max <= autoRateFloor) return [Math.max(1000, Math.floor(max / 1000) * 1000)];
  const rates = [autoRateFloor];
  // Doubling, but no step within 20% of the top: 10k, 20k, 45k rather than 10k, 20k, 21k.
  for (let r = 2 * autoRateFloor; r < 0.8 * max && rates.length < autoRateCount - 1; r *= 2) rates.push(r);
  if (max - rates[rates.length - 1] >= 1000) rates.push(max);
  return rates;
}

export function planSweep(o: TuneOptions): PlannedPoint[] {
  const points: PlannedPoint[] = [];
  // Before the probe, an automatic sweep is planned with its largest number of rates.
  const rates = o.rates.length > 0 ? o.rates : Array.from({ length: autoRateCount }, (_, i) => autoRateFloor * 2 ** i);
  for (const rate of rates)
    for (const slowDelayUs of o.slowDelaysUs)
      for (const encoderThreads of o.encoderThreads)
        for (const batchSize of o.batchSizes)
          for (const ringSize of o.ringSizes)
            for (const queueSize of o.queueSizes) points.push({ settings: { queueSize, encoderThreads, batchSize, ringSize }, rate, slowDelayUs });
  return points;
}

/**
 * Memory per client is measured with this many stalled clients (they read nothing while
 * the producer runs, so every queue fills): the difference per added client.
 */
export const memoryClientCounts: readonly number[] = [1, 4];
const memoryRunMinMs = 1000;
const memoryRunMaxMs = 3000;

/** Long enough for the slower-filling stream's queue to fill twice over at `rate`, within bounds. */
function memoryRunMs(queueSize: number, rate: number, alertEvery: number): number {
  const eventsToFill = 2 * queueSize * Math.max(1, alertEvery);
  return Math.min(memoryRunMaxMs, Math.max(memoryRunMinMs, Math.ceil((1000 * eventsToFill) / Math.max(1, rate))));
}

/** The whole sweep, with the probe and one memory measurement. */
export function estimateWallMs(o: TuneOptions): number {
  const probe = o.rates.length === 0 ? probeDurationMs + overheadPerPointMs : 0;
  const memory = memoryClientCounts.length * (memoryRunMaxMs + overheadPerPointMs);
  return probe + planSweep(o).length * (o.pointDurationMs + overheadPerPointMs) + memory;
}

export function validateTuneOptions(o: TuneOptions): TuneOptions {
  if (o.queueSizes.length === 0 || o.queueSizes.some((q) => q < 1)) throw new LoadFlagError('--queue-sizes', 'needs at least one size above 0');
  if (o.rates.some((r) => r < 1)) throw new LoadFlagError('--rates', 'rates must be above 0 (tune compares fixed rates; omit --rates or say auto to find them)');
  if (o.targetDropPct < 0 || o.targetDropPct >= 100) throw new LoadFlagError('--target', 'must be a percentage in [0, 100)');
  if (o.pointDurationMs < 500 || o.pointDurationMs > 60_000) throw new LoadFlagError('--point-duration', 'must be 0.5s..60s');
  const estimate = estimateWallMs(o);
  if (estimate > o.maxWallMs) {
    throw new LoadFlagError(
      '--max-time',
      `the sweep has ${planSweep(o).length} points and would take about ${Math.round(estimate / 1000)}s, over the ${Math.round(o.maxWallMs / 1000)}s bound; ` +
        'sweep fewer values, shorten --point-duration or raise --max-time',
    );
  }
  return o;
}

function consumersText(o: TuneOptions, slowDelayUs: number): string {
  const fast = o.clients - o.slowClients;
  const slow = o.slowClients > 0 ? `${o.slowClients} slow at ${slowDelayUs}us/event` : '';
  return `${o.clients} clients (${o.streams}): ${[fast > 0 ? `${fast} fast` : '', slow].filter((x) => x !== '').join(', ')}`;
}

function toFlags(s: BrokerSettings): BrokerFlags {
  return {
    queueSize: s.queueSize,
    encoderThreads: s.encoderThreads ?? undefined,
    batchSize: s.batchSize ?? undefined,
    ringSize: s.ringSize ?? undefined,
  };
}

export function pointFromReport(r: LoadReport, plan: PlannedPoint, consumers: string, o: TuneOptions): TunePoint {
  const pctOf = (c: LoadReport['clients'][number]): number => c.missingPct ?? 100;
  const fast = r.clients.filter((c) => c.behaviour === 'fast');
  const worst = r.clients.reduce((a, b) => (pctOf(b) > pctOf(a) || (pctOf(b) === pctOf(a) && b.latencyFromUpdatedUs.p99 > a.latencyFromUpdatedUs.p99) ? b : a));
  const received = r.clients.reduce((n, c) => n + c.received, 0);
  const bytes = r.clients.reduce((n, c) => n + c.bytes, 0);
  const meanEventBytes = received > 0 ? bytes / received : 0;
  const worstDropPct = Math.max(...r.clients.map(pctOf));
  const failures = [...r.failures];
  const limited = r.clients.filter((c) => c.limitedBy === 'client');
  const producer = r.threads.find((t) => t.role === 'producer');
  const notMeasured = r.verdict.producerLimited
    ? `producer-limited: the producer's thread was ${producer !== undefined ? threadBusyText(producer) : 'saturated'}`
    : limited.length > 0
      ? `client-limited: ${limited.map((c) => `c${c.index}`).join(', ')} (${limited[0].limit.replace(/^client-limited: /, '').replace(/;.*$/, '').replace(/\.$/, '')})`
      : null;
  return {
    settings: plan.settings,
    rate: plan.rate,
    burst: o.burst,
    consumers,
    sent: r.producer?.sent ?? 0,
    worstDropPct,
    fastDropPct: fast.length > 0 ? Math.max(...fast.map(pctOf)) : 0,
    worstP99Us: worst.latencyFromUpdatedUs.p99,
    fastP99Us: fast.length > 0 ? Math.max(...fast.map((c) => c.latencyFromUpdatedUs.p99)) : 0,
    meanEventBytes: Math.round(meanEventBytes),
    queueBytesPerClient: Math.round(plan.settings.queueSize * meanEventBytes),
    brokerMaxRssBytes: r.broker?.maxRssBytes ?? null,
    brokerMeanCpuPct: r.broker?.meanCpuPct ?? null,
    lossAccounted: r.verdict.lossAccounted,
    notMeasured,
    meetsTarget: notMeasured === null && failures.length === 0 && (r.producer?.sent ?? 0) > 0 && worstDropPct <= o.targetDropPct,
    failures,
  };
}

function fmtBytesShort(n: number): string {
  return n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : `${Math.round(n / 1024)} KiB`;
}

function fmtLatency(us: number): string {
  return us >= 1000 ? `${(us / 1000).toFixed(us >= 10_000 ? 0 : 1)} ms` : `${us} us`;
}

function settingsText(s: BrokerSettings): string {
  const parts = [`--queueSize ${s.queueSize}`];
  if (s.encoderThreads !== null) parts.push(`--encoderThreads ${s.encoderThreads}`);
  if (s.batchSize !== null) parts.push(`--batchSize ${s.batchSize}`);
  if (s.ringSize !== null) parts.push(`--ringSize ${s.ringSize}`);
  return parts.join(' ');
}

/**
 * Per (rate, burst, consumers): the point meeting the target with the smallest queue
 * (ties: lowest worst-client p99). Without one, the point with the fewest drops.
 */
export function recommend(points: TunePoint[], targetDropPct: number): TuneRecommendation[] {
  const groups = new Map<string, TunePoint[]>();
  for (const p of points) {
    const key = `${p.rate}|${p.burst}|${p.consumers}`;
    groups.set(key, [...(groups.get(key) ?? []), p]);
  }
  return [...groups.values()].map((ps) => {
    const { rate, burst, consumers } = ps[0];
    const where = `At ${rate.toLocaleString('en-US')} ev/s${burst > 0 ? ` in bursts of ${burst}` : ''} with ${consumers}`;
    const measured = ps.filter((p) => p.notMeasured === null);
    if (measured.length === 0) {
      return {
        rate,
        burst,
        consumers,
        chosen: null,
        best: null,
        text:
          `${where}: not measured: at every point the load tool itself was the limit (${ps[0].notMeasured ?? ''}); ` +
          'lower the rate, use fewer clients, or run on a machine with more free cores.',
      };
    }
    const meeting = measured.filter((p) => p.meetsTarget).sort((a, b) => a.settings.queueSize - b.settings.queueSize || a.worstP99Us - b.worstP99Us);
    if (meeting.length > 0) {
      const c = meeting[0];
      return {
        rate,
        burst,
        consumers,
        chosen: c,
        best: c,
        text:
          `${where}: ${settingsText(c.settings)} keeps drops at ${c.worstDropPct.toFixed(3)}% (target ${targetDropPct}%), ` +
          `a client's queue referencing up to ${fmtBytesShort(c.queueBytesPerClient)} of encoded events (${c.settings.queueSize} x ${c.meanEventBytes} B), ` +
          `p99 latency ${fmtLatency(c.worstP99Us)} for the slowest client and ${fmtLatency(c.fastP99Us)} for the fast ones.`,
      };
    }
    const best = [...measured].sort((a, b) => a.worstDropPct - b.worstDropPct || a.settings.queueSize - b.settings.queueSize)[0];
    return {
      rate,
      burst,
      consumers,
      chosen: null,
      best,
      text:
        `${where}: no tested setting keeps drops under ${targetDropPct}%; the best was ${settingsText(best.settings)} with ` +
        `${best.worstDropPct.toFixed(2)}% drops. When a consumer is slower than the rate on average, no queue absorbs it: ` +
        'speed up the consumer, lower the rate, or try larger queues if the drops come from bursts.',
    };
  });
}

function loadOptionsFor(broker: RunningBroker, o: TuneOptions, over: Partial<LoadOptions>): LoadOptions {
  const a = broker.addresses;
  if (a.tcp === undefined || a.metrics === undefined) throw new Error('the broker did not report its tcp ingest and metrics addresses');
  return validateLoadOptions({
    addr: a.grpc,
    ingest: { kind: 'tcp', ...a.tcp },
    statsUrl: `http://${a.metrics.host}:${a.metrics.port}/stats`,
    brokerPid: broker.pid,
    clients: o.clients,
    streams: o.streams,
    slowClients: o.slowClients,
    slowDelayUs: 0,
    stalledClients: 0,
    rate: 0,
    burst: o.burst,
    durationMs: o.pointDurationMs,
    alertEvery: o.alertEvery,
    idleMs: 500,
    drainTimeoutMs: 15_000,
    runTag: 'tune',
    alertFilter: 'policy',
    logFilter: 'system',
    ...over,
  });
}

/**
 * The highest rate this machine sustains: one short run as fast as the broker takes events,
 * with every client fast, against the largest queue of the sweep. The rate is what the
 * slowest client received per second (90% of it, in thousands): above it, the broker,
 * the clients or the machine cannot keep up, whatever the queue.
 */
export async function probeMaxRate(o: TuneOptions, observer: TuneObserver = {}): Promise<TuneProbe> {
  const queueSize = Math.max(...o.queueSizes);
  const broker = await startBroker({ queueSize }, { main: o.cliMain });
  let r: LoadReport;
  try {
    r = await runLoad(loadOptionsFor(broker, o, { slowClients: 0, burst: 0, durationMs: probeDurationMs, runTag: 'tune-probe' }), { onNote: observer.onNote });
  } finally {
    await broker.stop();
  }
  const delivered = Math.min(r.producer?.rateEps ?? 0, ...r.clients.map((c) => c.rateEps));
  const rateEps = Math.max(1000, Math.floor((0.9 * delivered) / 1000) * 1000);
  const limits = [...new Set(r.clients.filter((c) => c.limitedBy !== 'nothing').map((c) => c.limitedBy))];
  const note =
    `probe: as fast as possible for ${probeDurationMs / 1000}s (queue ${queueSize}, ${o.clients} fast clients), the slowest client received ` +
    `${Math.round(delivered).toLocaleString('en-US')} ev/s${limits.length > 0 ? ` (limited by: ${limits.join(', ')})` : ''}; the sweep goes up to ${rateEps.toLocaleString('en-US')} ev/s`;
  return { deliveredEps: Math.round(delivered), rateEps, note };
}

/** Memory per client at one queue size: runs with memoryClientCounts stalled clients, each on a fresh broker. */
export async function measureMemoryPerClient(o: TuneOptions, settings: BrokerSettings, rate: number): Promise<MemoryPerClient> {
  const runs: MemoryRun[] = [];
  const durationMs = memoryRunMs(settings.queueSize, rate, o.alertEvery);
  for (const n of memoryClientCounts) {
    const broker = await startBroker(toFlags(settings), { main: o.cliMain });
    let r: LoadReport;
    try {
      r = await runLoad(loadOptionsFor(broker, o, { clients: n, slowClients: 0, stalledClients: n, rate, burst: 0, durationMs, runTag: `tune-mem-${n}` }));
    } finally {
      await broker.stop();
    }
    runs.push({
      clients: n,
      maxRssBytes: r.broker?.maxRssBytes ?? null,
      peakSlabBytesInUse: r.brokerHeld?.peakSlabBytesInUse ?? null,
      slabBytesTotal: r.brokerHeld?.slabBytesTotal ?? null,
      peakQueuedEvents: r.brokerHeld?.peakQueuedEvents ?? null,
    });
  }
  const [lo, hi] = [runs[0], runs[runs.length - 1]];
  const added = hi.clients - lo.clients;
  const per = (a: number | null, b: number | null): number | null => (a === null || b === null || added <= 0 ? null : Math.round((b - a) / added));
  const rssBytesPerClient = per(lo.maxRssBytes, hi.maxRssBytes);
  const slabBytesPerClient = per(lo.peakSlabBytesInUse, hi.peakSlabBytesInUse);
  const poolFull = runs.find((x) => x.slabBytesTotal !== null && x.slabBytesTotal > 0 && x.peakSlabBytesInUse === x.slabBytesTotal)?.slabBytesTotal ?? 0;
  const signed = (n: number | null): string => (n === null ? '?' : `${n < 0 ? '-' : '+'}${fmtBytesShort(Math.abs(n))}`);
  const at = (x: MemoryRun): string =>
    `${x.clients}: RSS ${x.maxRssBytes === null ? '?' : fmtBytesShort(x.maxRssBytes)}, slabs ${x.peakSlabBytesInUse === null ? '?' : fmtBytesShort(x.peakSlabBytesInUse)}, ${x.peakQueuedEvents ?? '?'} events queued`;
  return {
    queueSize: settings.queueSize,
    rate,
    runs,
    rssBytesPerClient,
    slabBytesPerClient,
    text:
      `--queueSize ${settings.queueSize}: memory per client, measured with full queues (stalled clients at ${rate.toLocaleString('en-US')} ev/s): ` +
      `broker RSS ${signed(rssBytesPerClient)} and output slabs ${signed(slabBytesPerClient)} per added client ` +
      `(peaks with ${runs.map(at).join('; with ')}). Encoded events are shared by every queue that holds them, so the slabs grow little per client` +
      (poolFull ? `; the slab pool (${fmtBytesShort(poolFull)}) was full at a peak, so encoders also used buffers of their own, which only the RSS shows.` : '.'),
  };
}

export async function runTune(o: TuneOptions, observer: TuneObserver = {}): Promise<TuneReport> {
  const startedAt = new Date();
  const start = performance.now();
  let probe: TuneProbe | null = null;
  if (o.rates.length === 0) {
    probe = await probeMaxRate(o, observer);
    observer.onNote?.(probe.note);
    o = { ...o, rates: autoRates(probe.rateEps) };
  }
  const plan = planSweep(o);
  const points: TunePoint[] = [];
  const reports: LoadReport[] = [];
  for (const [i, p] of plan.entries()) {
    if (performance.now() - start + o.pointDurationMs + overheadPerPointMs > o.maxWallMs) {
      observer.onNote?.(`stopping after ${i} of ${plan.length} points: the next one would pass the ${o.maxWallMs / 1000}s bound`);
      break;
    }
    const consumers = consumersText(o, p.slowDelayUs);
    const broker = await startBroker(toFlags(p.settings), { main: o.cliMain });
    let report: LoadReport;
    try {
      report = await runLoad(loadOptionsFor(broker, o, { slowDelayUs: p.slowDelayUs, rate: p.rate, runTag: `tune-${i}` }), { onNote: observer.onNote });
    } finally {
      await broker.stop();
    }
    const point = pointFromReport(report, p, consumers, o);
    points.push(point);
    reports.push(report);
    observer.onPoint?.(i + 1, plan.length, point);
  }
  const recommendations = recommend(points, o.targetDropPct);
  const memory: MemoryPerClient[] = [];
  const chosen = recommendations.flatMap((r) => (r.chosen !== null ? [r.chosen] : []));
  for (const size of [...new Set(chosen.map((c) => c.settings.queueSize))]) {
    const at = chosen.find((c) => c.settings.queueSize === size) as TunePoint;
    if (performance.now() - start + memoryClientCounts.length * (memoryRunMaxMs + overheadPerPointMs) > o.maxWallMs) {
      observer.onNote?.(`memory per client for --queueSize ${size} not measured: it would pass the ${o.maxWallMs / 1000}s bound`);
      continue;
    }
    const m = await measureMemoryPerClient(o, at.settings, at.rate);
    memory.push(m);
    observer.onNote?.(m.text);
  }
  const firstChosen = recommendations.find((r) => r.chosen !== null)?.chosen;
  const detailIndex = firstChosen !== undefined && firstChosen !== null ? points.indexOf(firstChosen) : points.length - 1;
  return {
    kind: 'tune',
    version: 1,
    startedAt: startedAt.toISOString(),
    wallSec: (performance.now() - start) / 1000,
    targetDropPct: o.targetDropPct,
    probe,
    pointDurationSec: o.pointDurationMs / 1000,
    points,
    recommendations,
    memory,
    detail: reports[detailIndex] ?? null,
    machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? 'unknown', node: process.version, platform: `${os.platform()} ${os.release()}` },
  };
}
