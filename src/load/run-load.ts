/**
 * One load run, end to end:
 *
 * The producer and the subscribers run in worker threads (./load.worker.ts): the
 * producer alone on one, the clients in groups of one (up to 8 threads, then shared
 * round-robin). This thread only orchestrates, polls /stats and merges the results.
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
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { formatHostPort } from './addresses';
import { kindOfSeq } from './events';
import { LatencyRecorder, percentileCurveX, type LatencySummary } from './latency';
import type { LoadOptions } from './options';
import { explainClient, machineSaturatedPct, threadBusyText } from './limits';
import type { FromWorker, ToWorker, WorkerInit } from './load.worker';
import { findListenerPid, machineBusyPctSince, ProcSampler, readMachineCpu, type ProcSummary } from './proc-sampler';
import type { ProducerResult } from './producer';
import type { BrokerCounters, BrokerHeld, ClientReport, LoadReport, ServerDropsForClient, ThreadReport } from './report-model';
import { SequenceTracker } from './sequence';
import { epochMs, SendTimes } from './send-times';
import { entriesFor, fetchServerStats, heldByBroker, ingestTotals, type ServerStats } from './server-stats';
import type { EventStreamKind } from '../wire/proto';
import type { ClientBehaviour, StreamState, LoadClientResult, LoadClientSettings } from './load-client';
import { isSaturated, type ThreadSummary } from './thread-meter';

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

function streamKinds(o: LoadOptions): EventStreamKind[] {
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

/** At most this many subscriber threads; more clients share them round-robin. */
export const maxSubscriberThreads = 8;

/** A client as the main thread sees it: live progress during the run, the worker's result after. */
interface ClientView {
  settings: LoadClientSettings;
  thread: number;
  received: number;
  distinct: number;
  lastReceiveAt: number;
  /** When its worker took the last report (epoch ms); NaN before the first. */
  reportedAt: number;
  result?: LoadClientResult;
}

/** One worker thread and the messages it sends. */
class LoadWorker {
  readonly worker: Worker;
  private readonly waiters = new Map<FromWorker['type'], (m: FromWorker) => void>();
  private readonly seen = new Map<FromWorker['type'], FromWorker>();
  error: string | undefined;

  constructor(
    readonly name: string,
    init: WorkerInit,
    onProgress: (m: Extract<FromWorker, { type: 'progress' }>) => void,
  ) {
    this.worker = new Worker(path.resolve(__dirname, 'load.worker.js'), { workerData: init });
    this.worker.on('message', (m: FromWorker) => {
      if (m.type === 'progress') onProgress(m);
      this.seen.set(m.type, m);
      this.waiters.get(m.type)?.(m);
      this.waiters.delete(m.type);
    });
    const fail = (why: string): void => {
      this.error ??= why;
      for (const w of this.waiters.values()) w({ type: 'connected', errors: [why] });
      this.waiters.clear();
    };
    this.worker.on('error', (err) => fail(`${name} thread: ${err.message}`));
    this.worker.on('exit', (code) => fail(`${name} thread exited (${code})`));
  }

  /** The next message of `type` (or the one already received); undefined if the worker failed. */
  next<T extends FromWorker['type']>(type: T): Promise<Extract<FromWorker, { type: T }> | undefined> {
    const already = this.seen.get(type);
    if (already !== undefined) return Promise.resolve(already as Extract<FromWorker, { type: T }>);
    if (this.error !== undefined) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      this.waiters.set(type, (m) => resolve(m.type === type ? (m as Extract<FromWorker, { type: T }>) : undefined));
    });
  }

  send(m: ToWorker): void {
    if (this.error === undefined) this.worker.postMessage(m);
  }

  async close(): Promise<void> {
    this.worker.removeAllListeners('exit');
    await this.worker.terminate();
  }
}

function threadReport(name: string, role: ThreadReport['role'], clients: number[], t: ThreadSummary, t0: number): ThreadReport {
  return {
    name,
    role,
    clients,
    meanElu: t.meanElu,
    saturatedShare: t.saturatedShare,
    saturated: isSaturated(t),
    cpuSec: t.cpuSec,
    delayP99Ms: t.delayP99Ms,
    delayMaxMs: t.delayMaxMs,
    samples: t.samples.map((x) => ({ t: Math.round((x.at - t0) / 100) / 10, elu: Math.round(x.elu * 1000) / 1000, cpuPct: x.cpuPct === null ? null : Math.round(x.cpuPct) })),
  };
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

  const threadCount = Math.min(o.clients, o.clientThreads ?? maxSubscriberThreads);
  const clients: ClientView[] = Array.from({ length: o.clients }, (_, i) => ({
    settings: {
      index: i,
      addr: o.addr,
      name: clientName(o, i),
      streams: kinds,
      behaviour: behaviourFor(i, o),
      alertFilter: o.alertFilter,
      logFilter: o.logFilter,
      trackSequence: o.ingest !== undefined,
      burnUsPerEvent: i < (o.burnClients ?? 0) ? o.burnUsPerEvent : undefined,
    },
    thread: i % threadCount,
    received: 0,
    distinct: 0,
    lastReceiveAt: Number.NaN,
    reportedAt: Number.NaN,
  }));
  const onProgress = (m: Extract<FromWorker, { type: 'progress' }>): void => {
    for (const p of m.clients) {
      const c = clients[p.index];
      c.received = p.received;
      c.distinct = p.distinct;
      c.lastReceiveAt = p.lastReceiveAt;
      c.reportedAt = p.at;
    }
  };
  const groups = Array.from({ length: threadCount }, (_, g) => clients.filter((c) => c.thread === g));
  const subscriberWorkers = groups.map(
    (group) =>
      new LoadWorker(
        `clients ${group.map((c) => `c${c.settings.index}`).join(',')}`,
        { role: 'subscribers', clients: group.map((c) => c.settings), sendTimes: sendTimes?.buffers ?? null },
        onProgress,
      ),
  );
  const connectedOk = new Array<boolean>(o.clients).fill(false);
  await Promise.all(
    subscriberWorkers.map(async (w, g) => {
      const m = await w.next('connected');
      groups[g].forEach((c, k) => {
        const err = m === undefined ? (w.error ?? 'thread failed') : m.errors[k];
        if (err === null || err === undefined) connectedOk[c.settings.index] = true;
        else failures.push(`client ${c.settings.index}: ${err}`);
      });
    }),
  );
  const anyConnected = connectedOk.some((x) => x);

  if (anyConnected) await waitRegistered(statsUrl, clients.filter((_, i) => connectedOk[i]).map((c) => c.settings.name), kinds.length);

  // The producer connects before the clock starts, so its start is the run's start.
  let producerWorker: LoadWorker | undefined;
  let sent = 0;
  if (anyConnected && o.ingest !== undefined && sendTimes !== undefined) {
    producerWorker = new LoadWorker(
      'producer',
      {
        role: 'producer',
        settings: { target: o.ingest, rate: o.rate, burst: o.burst, count: o.count ?? Number.MAX_SAFE_INTEGER, durationMs: o.durationMs, alertEvery: o.alertEvery },
        sendTimes: sendTimes.buffers,
      },
      (m) => (sent = m.sent),
    );
    const m = await producerWorker.next('connected');
    const err = m === undefined ? (producerWorker.error ?? 'thread failed') : m.errors[0];
    if (err !== null && err !== undefined) {
      failures.push(`producer: cannot connect to the ingest socket: ${err}`);
      await producerWorker.close();
      producerWorker = undefined;
    }
  }

  const t0 = epochMs();
  for (const w of subscriberWorkers) w.send({ type: 'start', timeOrigin: t0 });
  const sampler = brokerPid !== undefined ? new ProcSampler(brokerPid) : undefined;
  sampler?.begin();
  const machineAtStart = readMachineCpu();

  // Poll /stats once a second for the per-second broker drop series and the progress line.
  const statsSamples: StatsSample[] = [];
  let lastStats: ServerStats | undefined;
  let held: BrokerHeld | null = null;
  const names = clients.map((c) => c.settings.name);
  const noteHeld = (st: ServerStats): void => {
    const h = heldByBroker(st, names);
    held = {
      peakSlabBytesInUse: Math.max(held?.peakSlabBytesInUse ?? 0, h.slabBytesInUse),
      slabBytesTotal: h.slabBytesTotal,
      peakQueuedEvents: Math.max(held?.peakQueuedEvents ?? 0, h.queuedEvents),
    };
  };
  let polling = false;
  const poller = setInterval(() => {
    if (statsUrl === undefined || polling) return;
    polling = true;
    void fetchServerStats(statsUrl, 900).then((st) => {
      polling = false;
      if (st === undefined) return;
      lastStats = st;
      noteHeld(st);
      const droppedByName = new Map<string, number>();
      for (const c of clients) droppedByName.set(c.settings.name, sumDrops(st, c.settings.name));
      statsSamples.push({ t: (epochMs() - t0) / 1000, droppedByName });
    });
  }, 1000);

  let phase: LoadProgress['phase'] = 'produce';
  const plannedSec = o.durationMs / 1000;
  const progressTimer = setInterval(() => {
    const elapsedSec = (epochMs() - t0) / 1000;
    const byCount = o.count !== undefined && o.ingest !== undefined ? sent / o.count : 0;
    const received = clients.map((c) => c.received);
    const serverDropped = lastStats === undefined ? null : clients.reduce((n, c) => n + sumDrops(lastStats as ServerStats, c.settings.name), 0);
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
  let producerThread: ThreadSummary | undefined;
  if (producerWorker !== undefined) {
    producerWorker.send({ type: 'run' });
    const m = await producerWorker.next('producer-result');
    if (m === undefined) failures.push(`producer: ${producerWorker.error ?? 'thread failed'}`);
    else {
      produced = m.result;
      producerThread = m.thread;
      sent = produced.sent;
      if (produced.error !== undefined) failures.push(`producer: ${produced.error}`);
    }
    await producerWorker.close();
  } else if (anyConnected && o.ingest === undefined) {
    await waitSubscriberOnly(o, clients, t0);
  }

  // The broker holds the most when the producer has just ended and stalled clients have read nothing yet.
  if (statsUrl !== undefined && produced !== undefined) {
    const st = await fetchServerStats(statsUrl, 900);
    if (st !== undefined) noteHeld(st);
  }

  // Drain: stalled clients start reading; wait until each client has everything or is idle.
  phase = 'drain';
  const producerEnd = epochMs();
  for (const w of subscriberWorkers) w.send({ type: 'release' });
  const expectedOf = (kindsOf: EventStreamKind[]): number | null => {
    if (produced === undefined) return o.expect ?? null;
    return (kindsOf.includes('alerts') ? produced.alerts : 0) + (kindsOf.includes('logs') ? produced.logs : 0);
  };
  if (anyConnected) {
    const expected = expectedOf(kinds);
    const deadline = producerEnd + o.drainTimeoutMs;
    // A client counts as idle once its worker reported it idle for idleMs. The worker's own
    // report says so, not the age of the last report: a saturated client thread reports late,
    // and its stale report must not make a client that is still reading look idle.
    await sleep(300);
    for (;;) {
      const now = epochMs();
      const pending = clients.filter((c, i) => {
        if (!connectedOk[i] || subscriberWorkers[c.thread].error !== undefined) return false;
        if (expected !== null && (produced !== undefined ? c.distinct >= expected : c.received >= expected)) return false;
        const lastActivity = Number.isNaN(c.lastReceiveAt) ? producerEnd : Math.max(c.lastReceiveAt, producerEnd);
        return Number.isNaN(c.reportedAt) || c.reportedAt - lastActivity < o.idleMs;
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
  const threads: ThreadReport[] = [];
  if (producerThread !== undefined) threads.push(threadReport('producer', 'producer', [], producerThread, t0));
  const clientThreadIndex = new Array<number>(o.clients).fill(-1);
  await Promise.all(
    subscriberWorkers.map(async (w) => {
      w.send({ type: 'stop' });
      return w.next('clients-result');
    }),
  ).then((results) => {
    results.forEach((m, g) => {
      const w = subscriberWorkers[g];
      if (m === undefined) {
        failures.push(w.error ?? `${w.name} thread failed`);
        return;
      }
      clientThreadIndex.forEach((_, i) => {
        if (clients[i].thread === g) clientThreadIndex[i] = threads.length;
      });
      threads.push(threadReport(w.name, 'subscribers', groups[g].map((c) => c.settings.index), m.thread, t0));
      for (const r of m.clients) {
        clients[r.index].result = r;
        failures.push(...r.failures);
      }
    });
  });
  await Promise.all(subscriberWorkers.map((w) => w.close()));
  const broker = sampler?.finish() ?? null;
  const machineBusyPct = machineBusyPctSince(machineAtStart);
  const cpu = process.cpuUsage(cpuAtStart);

  return buildReport({
    o,
    startedAt,
    wallSec: (performance.now() - wallStart) / 1000,
    t0,
    subscribers: clients.map((c) => outcomeOf(c, clientThreadIndex[c.settings.index])),
    produced,
    finalStats,
    statsSamples,
    held,
    broker,
    threads,
    machineBusyPct,
    loadgenCpuSec: (cpu.user + cpu.system) / 1e6,
    expected: expectedOf(kinds),
    failures,
    notes,
  });
}

/** A client's final state, from its worker's result (empty if its thread failed). */
interface ClientOutcome {
  settings: LoadClientSettings;
  behaviour: ClientBehaviour;
  thread: number;
  tracker: SequenceTracker;
  latencyFromUpdated: LatencyRecorder;
  latencyFromSend: LatencyRecorder;
  streams: StreamState[];
  received: number;
  bytes: number;
  firstReceiveAt: number;
  lastReceiveAt: number;
  receivedPerSecond: number[];
}

function outcomeOf(c: ClientView, thread: number): ClientOutcome {
  const r = c.result;
  return {
    settings: c.settings,
    behaviour: c.settings.behaviour,
    thread,
    tracker: r !== undefined ? SequenceTracker.fromState(r.sequence) : new SequenceTracker(),
    latencyFromUpdated: LatencyRecorder.decode(r?.latencyFromUpdated ?? ''),
    latencyFromSend: LatencyRecorder.decode(r?.latencyFromSend ?? ''),
    streams: r?.streams ?? c.settings.streams.map((kind) => ({ kind, received: 0, bytes: 0, end: 'error' as const, reconnects: 0 })),
    received: r?.received ?? 0,
    bytes: r?.bytes ?? 0,
    firstReceiveAt: r?.firstReceiveAt ?? Number.NaN,
    lastReceiveAt: r?.lastReceiveAt ?? Number.NaN,
    receivedPerSecond: r?.receivedPerSecond ?? [],
  };
}

/** Waits until /stats lists every stream of every client as open (or a short settle without /stats). */
async function waitRegistered(statsUrl: string | undefined, names: string[], streamsPerClient: number): Promise<void> {
  if (statsUrl === undefined) {
    await sleep(registrationSettleMs);
    return;
  }
  const deadline = performance.now() + registrationTimeoutMs;
  while (performance.now() < deadline) {
    const st = await fetchServerStats(statsUrl, 1000);
    if (st !== undefined && names.every((n) => entriesFor(st, n).filter((e) => e.open).length >= streamsPerClient)) return;
    await sleep(50);
  }
}

/** Subscriber-only: until every client has --expect events, all went idle after their first, or the duration ends. */
async function waitSubscriberOnly(o: LoadOptions, clients: ClientView[], t0: number): Promise<void> {
  const deadline = t0 + o.durationMs;
  for (;;) {
    const now = epochMs();
    if (now >= deadline) return;
    const done = clients.every(
      (c) =>
        (o.expect !== undefined && c.received >= o.expect) ||
        (!Number.isNaN(c.lastReceiveAt) && c.reportedAt - c.lastReceiveAt >= o.idleMs),
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
  subscribers: ClientOutcome[];
  produced: ProducerResult | undefined;
  finalStats: ServerStats | undefined;
  statsSamples: StatsSample[];
  held: BrokerHeld | null;
  broker: ProcSummary | null;
  threads: ThreadReport[];
  machineBusyPct: number | null;
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
    const thread = b.threads[s.thread] as ThreadReport | undefined;
    const limit = explainClient({ behaviour: behaviour.kind, delayUs: behaviour.kind === 'slow' ? behaviour.delayUs : 0, missing, expected, server: serverPart }, thread, server, b.broker, unattributable, b.machineBusyPct);
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
      thread: s.thread,
      limitedBy: limit.limitedBy,
      limit: limit.limit,
    };
  });

  const firsts = b.subscribers.map((s) => s.firstReceiveAt).filter((x) => !Number.isNaN(x));
  const lasts = b.subscribers.map((s) => s.lastReceiveAt).filter((x) => !Number.isNaN(x));
  const totalReceived = clients.reduce((n, c) => n + c.received, 0);
  const aggSpan = firsts.length > 0 ? (Math.max(...lasts) - Math.min(...firsts)) / 1000 : 0;

  const known = clients.every((c) => c.missing !== null);
  const lossAccounted = finalStats !== undefined && known && produced !== undefined ? clients.every((c) => c.server?.agrees === true) : null;
  const clientLimited = clients.filter((c) => c.limitedBy === 'client');
  for (const c of clientLimited) b.notes.push(`${c.name}: ${c.limit}`);
  const fast = clients.filter((c) => c.behaviour === 'fast' && c.limitedBy !== 'client');
  const fastClientsLossless = known && fast.length > 0 ? fast.every((c) => c.missing === 0) : null;
  if (b.machineBusyPct !== null && b.machineBusyPct >= machineSaturatedPct) {
    b.notes.push(`machine-limited: all ${os.cpus().length} cores were ${Math.round(b.machineBusyPct)}% busy during the run (every process counted): broker and clients competed for CPU, so this run says little about the broker`);
  }
  const producerThread = b.threads.find((t) => t.role === 'producer');
  // Saturated and behind: it sent less than asked (a saturated producer that kept the rate only sent in catch-up bursts).
  const achieved = produced !== undefined && produced.elapsedMs > 0 ? Math.round((produced.sent * 1000) / produced.elapsedMs) : 0;
  const producerLimited = producerThread?.saturated === true && o.rate > 0 && achieved < 0.97 * o.rate && (o.count === undefined || (produced?.sent ?? 0) < o.count);
  if (!producerLimited && produced !== undefined && o.rate > 0 && achieved < 0.97 * o.rate && (o.count === undefined || produced.sent < o.count)) {
    b.notes.push(
      `ingest backpressure: the producer sent ${achieved.toLocaleString('en-US')} ev/s of the ${o.rate.toLocaleString('en-US')} asked while its thread was only ${Math.round((producerThread?.meanElu ?? 0) * 100)}% busy: the broker read its ingest socket no faster`,
    );
  }
  if (producerLimited && producerThread !== undefined && produced !== undefined) {
    b.notes.push(
      `producer-limited: the producer's thread was ${threadBusyText(producerThread)}; it sent ${achieved.toLocaleString('en-US')} ev/s of the ${o.rate.toLocaleString('en-US')} asked, so the run measured that rate`,
    );
  }

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
    brokerHeld: finalStats === undefined ? null : b.held,
    clients,
    aggregate: { received: totalReceived, rateEps: aggSpan > 0 ? totalReceived / aggSpan : 0, latencyFromUpdatedUs: aggregate.summary() },
    broker: b.broker,
    loadgenCpuSec: b.loadgenCpuSec,
    threads: b.threads,
    percentileCurveX: [...percentileCurveX],
    verdict: { lossAccounted, fastClientsLossless, clientLimited: clientLimited.map((c) => c.name), producerLimited, notes: b.notes },
    failures: b.failures,
    machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? 'unknown', node: process.version, platform: `${os.platform()} ${os.release()}` },
    machineBusyPct: b.machineBusyPct,
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
