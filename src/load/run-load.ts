/**
 * One load run, end to end:
 *
 *   connect K clients (HealthCheck, open streams) -> wait until the broker lists them
 *   -> produce (rate / burst / max, bounded by count and duration)
 *   -> release stalled clients, drain until every client has all its events or has
 *      been idle for idleMs -> read the broker's final counters -> stop.
 *
 * Draining before the final /stats read matters: an event still in a client's
 * HTTP/2 window or the broker's queue is neither received nor dropped, and would
 * make client-side loss and broker drop counters disagree.
 */
import * as os from 'node:os';
import { formatHostPort } from './addresses';
import { kindOfSeq } from './events';
import { LatencyRecorder, percentileCurveX, type LatencySummary } from './latency';
import type { LoadOptions } from './options';
import { findListenerPid, ProcSampler, type ProcSummary } from './proc-sampler';
import { Producer, type ProducerResult } from './producer';
import type { BrokerCounters, ClientReport, LoadReport, ServerDropsForClient } from './report-model';
import { SendTimes } from './send-times';
import { entriesFor, fetchServerStats, ingestTotals, type ServerStats } from './server-stats';
import { Subscriber, type ClientBehaviour, type StreamKind } from './subscriber';

export interface LoadProgress {
  phase: 'connect' | 'produce' | 'drain';
  elapsedSec: number;
  plannedSec: number;
  /** 0..1 of the produce phase (by count or by time, whichever is ahead). */
  fraction: number;
  sent: number;
  receivedMin: number;
  receivedMax: number;
  serverDropped: number | null;
}

export interface LoadObserver {
  onProgress?(p: LoadProgress): void;
  onNote?(line: string): void;
}

interface StatsSample {
  t: number;
  droppedByName: Map<string, number>;
}

const registrationTimeoutMs = 5000;
/** Without /stats we cannot see the broker register the streams; this is how long we give it. */
const registrationSettleMs = 300;

function behaviourFor(i: number, o: LoadOptions): ClientBehaviour {
  if (i < o.slowClients) return { kind: 'slow', delayUs: o.slowDelayUs };
  if (i < o.slowClients + o.stalledClients) return { kind: 'stalled' };
  return { kind: 'fast' };
}

function streamKinds(o: LoadOptions): StreamKind[] {
  return o.streams === 'both' ? ['alerts', 'logs'] : [o.streams];
}

function clientName(o: LoadOptions, i: number): string {
  return `${o.runTag}-c${i}`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function sumDrops(stats: ServerStats, name: string): number {
  let n = 0;
  for (const e of entriesFor(stats, name)) n += e.dropped.client_queue_full + e.dropped.throttled + e.dropped.filtered;
  return n;
}

export async function runLoad(o: LoadOptions, observer: LoadObserver = {}): Promise<LoadReport> {
  const startedAt = new Date();
  const wallStart = performance.now();
  const failures: string[] = [];
  const notes: string[] = [];
  const note = (line: string): void => {
    notes.push(line);
    observer.onNote?.(line);
  };
  const cpuAtStart = process.cpuUsage();
  const kinds = streamKinds(o);
  const sendTimes = o.ingest !== undefined ? new SendTimes() : undefined;

  let statsUrl = o.statsUrl;
  if (statsUrl !== undefined && (await fetchServerStats(statsUrl)) === undefined) {
    note(`no stats at ${statsUrl}: the broker's drop counters are unknown for this run`);
    statsUrl = undefined;
  }
  const brokerPid = o.brokerPid ?? findListenerPid(o.addr.port);
  if (brokerPid === undefined) note(`no process on this machine is visible listening on port ${o.addr.port}: no CPU/RSS figures`);

  const subscribers = Array.from({ length: o.clients }, (_, i) =>
    new Subscriber({
      index: i,
      addr: o.addr,
      name: clientName(o, i),
      streams: kinds,
      behaviour: behaviourFor(i, o),
      alertFilter: o.alertFilter,
      logFilter: o.logFilter,
      trackSequence: o.ingest !== undefined,
      sendTimes,
    }),
  );
  const connected = await Promise.allSettled(subscribers.map((s) => s.connect()));
  connected.forEach((r, i) => {
    if (r.status === 'rejected') {
      const err = r.reason as Error;
      failures.push(`client ${i}: ${err.message}`);
    }
  });
  const anyConnected = connected.some((r) => r.status === 'fulfilled');

  if (anyConnected) await waitRegistered(statsUrl, subscribers, kinds.length);

  const t0 = performance.now();
  for (const s of subscribers) s.setTimeOrigin(t0);
  const sampler = brokerPid !== undefined ? new ProcSampler(brokerPid) : undefined;
  sampler?.begin();

  // Poll /stats once a second for the per-second broker drop series and the progress line.
  const statsSamples: StatsSample[] = [];
  let lastStats: ServerStats | undefined;
  let polling = false;
  const poller = setInterval(() => {
    if (statsUrl === undefined || polling) return;
    polling = true;
    void fetchServerStats(statsUrl, 900).then((st) => {
      polling = false;
      if (st === undefined) return;
      lastStats = st;
      const droppedByName = new Map<string, number>();
      for (const s of subscribers) droppedByName.set(s.settings.name, sumDrops(st, s.settings.name));
      statsSamples.push({ t: (performance.now() - t0) / 1000, droppedByName });
    });
  }, 1000);

  let producer: Producer | undefined;
  let phase: LoadProgress['phase'] = 'produce';
  const plannedSec = o.durationMs / 1000;
  const progressTimer = setInterval(() => {
    const elapsedSec = (performance.now() - t0) / 1000;
    const sent = producer?.sent ?? 0;
    const byCount = o.count !== undefined && o.ingest !== undefined ? sent / o.count : 0;
    const received = subscribers.map((s) => s.received);
    const serverDropped = lastStats === undefined ? null : subscribers.reduce((n, s) => n + sumDrops(lastStats as ServerStats, s.settings.name), 0);
    observer.onProgress?.({
      phase,
      elapsedSec,
      plannedSec,
      fraction: phase === 'drain' ? 1 : Math.min(1, Math.max(byCount, elapsedSec / plannedSec)),
      sent,
      receivedMin: Math.min(...received),
      receivedMax: Math.max(...received),
      serverDropped,
    });
  }, 250);

  let produced: ProducerResult | undefined;
  if (anyConnected && o.ingest !== undefined) {
    producer = new Producer(
      { target: o.ingest, rate: o.rate, burst: o.burst, count: o.count ?? Number.MAX_SAFE_INTEGER, durationMs: o.durationMs, alertEvery: o.alertEvery },
      sendTimes as SendTimes,
    );
    try {
      await producer.connect();
      produced = await producer.run();
      if (produced.error !== undefined) failures.push(`producer: ${produced.error}`);
    } catch (err) {
      failures.push(`producer: cannot connect to the ingest socket: ${(err as Error).message}`);
    }
  } else if (anyConnected) {
    await waitSubscriberOnly(o, subscribers, t0);
  }

  // Drain: stalled clients start reading; wait until each client has everything or is idle.
  phase = 'drain';
  const producerEnd = performance.now();
  for (const s of subscribers) s.release();
  const expectedOf = (kindsOf: StreamKind[]): number | null => {
    if (produced === undefined) return o.expect ?? null;
    return (kindsOf.includes('alerts') ? produced.alerts : 0) + (kindsOf.includes('logs') ? produced.logs : 0);
  };
  if (anyConnected) {
    const expected = expectedOf(kinds);
    const deadline = producerEnd + o.drainTimeoutMs;
    for (;;) {
      const now = performance.now();
      const pending = subscribers.filter((s) => {
        if (expected !== null && (produced !== undefined ? s.hasAll(expected) : s.received >= expected)) return false;
        const lastActivity = Number.isNaN(s.lastReceiveAt) ? producerEnd : Math.max(s.lastReceiveAt, producerEnd);
        return now - lastActivity < o.idleMs;
      });
      if (pending.length === 0) break;
      if (now > deadline) {
        note(`drain timeout: ${pending.length} client(s) were still receiving after ${o.drainTimeoutMs / 1000}s`);
        break;
      }
      await sleep(50);
    }
  }

  clearInterval(poller);
  clearInterval(progressTimer);
  const finalStats = statsUrl !== undefined ? await fetchServerStats(statsUrl) : undefined;
  if (statsUrl !== undefined && finalStats === undefined) note('the final /stats read failed: broker counters are unknown');
  for (const s of subscribers) {
    s.stop();
    failures.push(...s.failures);
  }
  producer?.close();
  const broker = sampler?.finish() ?? null;
  const cpu = process.cpuUsage(cpuAtStart);

  return buildReport({
    o,
    startedAt,
    wallSec: (performance.now() - wallStart) / 1000,
    t0,
    subscribers,
    produced,
    finalStats,
    statsSamples,
    broker,
    loadgenCpuSec: (cpu.user + cpu.system) / 1e6,
    expected: expectedOf(kinds),
    failures,
    notes,
  });
}

/** Waits until /stats lists every stream of every client as open (or a short settle without /stats). */
async function waitRegistered(statsUrl: string | undefined, subscribers: Subscriber[], streamsPerClient: number): Promise<void> {
  if (statsUrl === undefined) {
    await sleep(registrationSettleMs);
    return;
  }
  const deadline = performance.now() + registrationTimeoutMs;
  while (performance.now() < deadline) {
    const st = await fetchServerStats(statsUrl, 1000);
    if (st !== undefined && subscribers.every((s) => entriesFor(st, s.settings.name).filter((e) => e.open).length >= streamsPerClient)) return;
    await sleep(50);
  }
}

/** Subscriber-only: until every client has --expect events, all went idle after their first, or the duration ends. */
async function waitSubscriberOnly(o: LoadOptions, subscribers: Subscriber[], t0: number): Promise<void> {
  const deadline = t0 + o.durationMs;
  for (;;) {
    const now = performance.now();
    if (now >= deadline) return;
    const done = subscribers.every(
      (s) =>
        (o.expect !== undefined && s.received >= o.expect) ||
        (!Number.isNaN(s.lastReceiveAt) && now - s.lastReceiveAt >= o.idleMs),
    );
    if (done) return;
    await sleep(20);
  }
}

interface BuildInput {
  o: LoadOptions;
  startedAt: Date;
  wallSec: number;
  t0: number;
  subscribers: Subscriber[];
  produced: ProducerResult | undefined;
  finalStats: ServerStats | undefined;
  statsSamples: StatsSample[];
  broker: ProcSummary | null;
  loadgenCpuSec: number;
  expected: number | null;
  failures: string[];
  notes: string[];
}

function buildReport(b: BuildInput): LoadReport {
  const { o, produced, finalStats } = b;
  const kinds = streamKinds(o);
  const server: BrokerCounters | null =
    finalStats === undefined
      ? null
      : {
          ingestEvents: ingestTotals(finalStats).events,
          ringFull: finalStats.dropped.ring_full,
          malformedInput: finalStats.dropped.malformed_input,
          throttled: finalStats.dropped.throttled,
        };
  // Drops before fan-out hit every client alike and carry no client name.
  const unattributable = server === null ? 0 : server.ringFull + server.malformedInput + Math.max(0, (produced?.sent ?? 0) - server.ingestEvents);
  if (server !== null && unattributable > 0) {
    b.notes.push(`${unattributable} events were lost before fan-out (ring_full ${server.ringFull}, malformed ${server.malformedInput}); they count as missing for every client but belong to none`);
  }
  const wanted = (seq: number): boolean => {
    const k = kindOfSeq(seq, o.alertEvery);
    return (k === 'alert' && kinds.includes('alerts')) || (k === 'log' && kinds.includes('logs'));
  };
  const seconds = Math.max(produced?.sentPerSecond.length ?? 0, ...b.subscribers.map((s) => s.receivedPerSecond.length));
  const aggregate = new LatencyRecorder();
  const clients: ClientReport[] = b.subscribers.map((s) => {
    aggregate.add(s.latencyFromUpdated);
    const behaviour = s.behaviour;
    let expected = b.expected;
    let missing: number | null = null;
    let ranges: [number, number][] = [];
    let truncated = false;
    let bySecond: number[] = [];
    if (produced !== undefined) {
      const m = s.tracker.missing(produced.firstSeq, produced.lastSeq, wanted, produced.secondStarts);
      missing = m.missing;
      ranges = m.ranges;
      truncated = m.rangesTruncated;
      bySecond = m.bySecond;
    } else if (expected !== null) {
      missing = Math.max(0, expected - s.received);
    } else {
      expected = null;
    }
    let serverPart: ServerDropsForClient | null = null;
    if (finalStats !== undefined) {
      const entries = entriesFor(finalStats, s.settings.name);
      const dropped = { client_queue_full: 0, throttled: 0, filtered: 0 };
      let delivered = 0;
      let depth = 0;
      for (const e of entries) {
        dropped.client_queue_full += e.dropped.client_queue_full;
        dropped.throttled += e.dropped.throttled;
        dropped.filtered += e.dropped.filtered;
        delivered += e.delivered;
        depth += e.queueDepth;
      }
      const attributed = dropped.client_queue_full + dropped.throttled + dropped.filtered;
      const agrees =
        entries.length > 0 && missing !== null && missing >= attributed && missing <= attributed + unattributable;
      serverPart = { delivered, dropped, attributed, queueDepthAtEnd: depth, agrees };
    }
    const span = (s.lastReceiveAt - s.firstReceiveAt) / 1000;
    return {
      index: s.settings.index,
      name: s.settings.name,
      behaviour: behaviour.kind,
      delayUs: behaviour.kind === 'slow' ? behaviour.delayUs : 0,
      streams: s.streams.map((st) => ({ ...st })),
      received: s.received,
      bytes: s.bytes,
      expected,
      missing,
      missingPct: missing !== null && expected !== null && expected > 0 ? (100 * missing) / expected : null,
      missingRanges: ranges,
      missingRangesTruncated: truncated,
      duplicates: s.tracker.duplicates,
      outOfOrder: s.tracker.outOfOrder,
      reconnects: s.streams.reduce((n, st) => n + st.reconnects, 0),
      rateEps: s.received > 1 && span > 0 ? (s.received - 1) / span : 0,
      latencyFromUpdatedUs: s.latencyFromUpdated.summary(),
      latencyFromSendUs: produced !== undefined ? s.latencyFromSend.summary() : null,
      curveFromUpdatedUs: s.latencyFromUpdated.curve(),
      curveFromSendUs: produced !== undefined ? s.latencyFromSend.curve() : null,
      receivedPerSecond: padTo(s.receivedPerSecond, seconds),
      missingBySentSecond: padTo(bySecond, seconds),
      serverDroppedPerSecond: finalStats === undefined ? null : perSecond(b.statsSamples, s.settings.name, seconds, serverPart?.attributed ?? 0),
      server: serverPart,
    };
  });

  const firsts = b.subscribers.map((s) => s.firstReceiveAt).filter((x) => !Number.isNaN(x));
  const lasts = b.subscribers.map((s) => s.lastReceiveAt).filter((x) => !Number.isNaN(x));
  const totalReceived = clients.reduce((n, c) => n + c.received, 0);
  const aggSpan = firsts.length > 0 ? (Math.max(...lasts) - Math.min(...firsts)) / 1000 : 0;

  const known = clients.every((c) => c.missing !== null);
  const lossAccounted = finalStats !== undefined && known && produced !== undefined ? clients.every((c) => c.server?.agrees === true) : null;
  const fast = clients.filter((c) => c.behaviour === 'fast');
  const fastClientsLossless = known && fast.length > 0 ? fast.every((c) => c.missing === 0) : null;

  return {
    kind: 'load',
    version: 1,
    startedAt: b.startedAt.toISOString(),
    wallSec: b.wallSec,
    mode: o.ingest !== undefined ? 'end-to-end' : 'subscriber-only',
    settings: {
      addr: formatHostPort(o.addr),
      ingest: o.ingest === undefined ? null : o.ingest.kind === 'tcp' ? `tcp://${formatHostPort(o.ingest)}` : `unix://${o.ingest.path}`,
      statsUrl: o.statsUrl ?? null,
      clients: o.clients,
      streams: o.streams,
      slow: o.slowClients > 0 ? `${o.slowClients}:${o.slowDelayUs}us` : null,
      stalled: o.stalledClients,
      rate: o.rate,
      burst: o.burst,
      count: o.count ?? null,
      durationSec: o.durationMs / 1000,
      alertEvery: o.alertEvery,
      runTag: o.runTag,
    },
    producer:
      produced === undefined
        ? null
        : {
            ingest: o.ingest?.kind === 'unix' ? `unix://${o.ingest.path}` : `tcp://${o.ingest === undefined ? '' : formatHostPort(o.ingest)}`,
            sent: produced.sent,
            alerts: produced.alerts,
            logs: produced.logs,
            bytes: produced.bytes,
            elapsedSec: produced.elapsedMs / 1000,
            rateEps: produced.elapsedMs > 0 ? (produced.sent * 1000) / produced.elapsedMs : 0,
            sentPerSecond: padTo(produced.sentPerSecond, seconds),
            error: produced.error ?? null,
          },
    server,
    clients,
    aggregate: { received: totalReceived, rateEps: aggSpan > 0 ? totalReceived / aggSpan : 0, latencyFromUpdatedUs: aggregate.summary() },
    broker: b.broker,
    loadgenCpuSec: b.loadgenCpuSec,
    percentileCurveX: [...percentileCurveX],
    verdict: { lossAccounted, fastClientsLossless, notes: b.notes },
    failures: b.failures,
    machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? 'unknown', node: process.version, platform: `${os.platform()} ${os.release()}` },
  };
}

function padTo(xs: number[], n: number): number[] {
  const out = xs.slice(0, Math.max(n, xs.length));
  while (out.length < n) out.push(0);
  return out;
}

/** Turns cumulative drop samples into drops per second; whatever the last poll missed goes into the last second. */
function perSecond(samples: StatsSample[], name: string, seconds: number, finalTotal: number): number[] {
  const out = new Array<number>(Math.max(seconds, 1)).fill(0);
  let prev = 0;
  for (const s of samples) {
    const v = s.droppedByName.get(name) ?? 0;
    const i = Math.min(out.length - 1, Math.max(0, Math.floor(s.t - 0.001)));
    out[i] += v - prev;
    prev = v;
  }
  out[out.length - 1] += Math.max(0, finalTotal - prev);
  return out;
}

export type { LatencySummary };
