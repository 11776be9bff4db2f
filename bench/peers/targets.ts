/**
 * The five targets of the issue, each measured for armorfeed and gofeeder in the same
 * run with the same loadclient, and turned into table rows with a verdict. The real-path
 * targets R1-R5 (realtargets.ts) share the plan, the verdicts and the helpers below.
 *
 * Verdicts: `holds` / `missed` compare armorfeed with the goal; `failed run` means a
 * server crashed or hung or an RPC failed, so the numbers are not a measurement; `smoke`
 * is printed instead of a verdict with --quick, whose counts are too small to judge.
 */
import { ownConnectionPorts } from './children';
import { worstClientMissingPct } from './loadclient';
import { measure, type Log, type Measurement } from './measure';
import { int, mb, median, ms, pct, ratio, us, type Row, type Verdict } from './report';
import type { Binaries, ServerStop, StreamRow, SystemName } from './servers';
import { openStalledClients, type StalledClients } from './stalled';

export interface Plan {
  quick: boolean;
  t1: { count: number; reps: number };
  t2: { seconds: number; maxProbes: number; startRate: Record<1 | 4, number>; maxMissingPct: number };
  t3: { rate: number; count: number; runs: number; p99GoalUs: number };
  t4: { rate: number; count: number; p99GoalUs: number };
  t5: { clients: number; stalled: number; rate: number; seconds: number; windowS: number; rssLimitBytes: number };
  /** R1-R5: the Go producer writing into each server's Unix socket (realtargets.ts). */
  r1: { rate: number; count: number; p99GoalUs: number };
  r2: { rate: number; count: number; runs: number; p99GoalUs: number };
  r3: { clients: number; rate: number; count: number; runs: number; p99GoalUs: number };
  /** Unpaced producer; `capS` bounds the producer (and, plus a margin, loadclient). */
  r4: { count: number; per: number; reps: number; ratioGoal: number; capS: number };
  r5: {
    idleS: number;
    idleLimitBytes: number;
    r4LimitBytes: number;
    clients: number;
    stalled: number;
    rate: number;
    seconds: number;
    windowS: number;
    rssLimitBytes: number;
  };
}

export const FULL_PLAN: Plan = {
  quick: false,
  t1: { count: 1_000_000, reps: 3 },
  t2: { seconds: 10, maxProbes: 6, startRate: { 1: 25_000, 4: 12_500 }, maxMissingPct: 0.1 },
  t3: { rate: 50_000, count: 250_000, runs: 3, p99GoalUs: 5_000 },
  t4: { rate: 1_000, count: 10_000, p99GoalUs: 1_000 },
  t5: { clients: 16, stalled: 8, rate: 50_000, seconds: 60, windowS: 10, rssLimitBytes: 250 * 2 ** 20 },
  r1: { rate: 1_000, count: 10_000, p99GoalUs: 500 },
  r2: { rate: 50_000, count: 500_000, runs: 3, p99GoalUs: 3_000 },
  r3: { clients: 4, rate: 50_000, count: 250_000, runs: 3, p99GoalUs: 5_000 },
  r4: { count: 1_000_000, per: 64, reps: 3, ratioGoal: 2.0, capS: 120 },
  r5: { idleS: 2, idleLimitBytes: 90 * 2 ** 20, r4LimitBytes: 150 * 2 ** 20, clients: 16, stalled: 8, rate: 50_000, seconds: 60, windowS: 10, rssLimitBytes: 200 * 2 ** 20 },
};

/** A smoke run: every code path, small counts, about two minutes in all. */
export const QUICK_PLAN: Plan = {
  quick: true,
  t1: { count: 100_000, reps: 1 },
  t2: { seconds: 1, maxProbes: 2, startRate: { 1: 20_000, 4: 10_000 }, maxMissingPct: 0.1 },
  t3: { rate: 50_000, count: 50_000, runs: 1, p99GoalUs: 5_000 },
  t4: { rate: 1_000, count: 2_000, p99GoalUs: 1_000 },
  t5: { clients: 16, stalled: 8, rate: 20_000, seconds: 5, windowS: 2, rssLimitBytes: 250 * 2 ** 20 },
  r1: { rate: 1_000, count: 2_000, p99GoalUs: 500 },
  r2: { rate: 50_000, count: 50_000, runs: 1, p99GoalUs: 3_000 },
  r3: { clients: 4, rate: 50_000, count: 50_000, runs: 1, p99GoalUs: 5_000 },
  r4: { count: 200_000, per: 64, reps: 1, ratioGoal: 2.0, capS: 60 },
  r5: { idleS: 2, idleLimitBytes: 90 * 2 ** 20, r4LimitBytes: 150 * 2 ** 20, clients: 16, stalled: 8, rate: 20_000, seconds: 5, windowS: 2, rssLimitBytes: 200 * 2 ** 20 },
};

export interface TargetResult {
  /** 1-5, or 'R1'-'R5' for the real-path targets. */
  id: number | string;
  title: string;
  rows: Row[];
  /** Extra lines printed under the table (per-probe and per-run detail). */
  details: string[];
  measurements: Measurement[];
  data: Record<string, unknown>;
}

export interface TargetContext {
  bin: Binaries;
  plan: Plan;
  log: Log;
  /** Figures one target leaves for a later one in the same run (R4's peak RSS for R5). */
  memo: Map<string, unknown>;
}

export const SYSTEMS_IN_ORDER = (rep: number): SystemName[] => (rep % 2 === 0 ? ['armorfeed', 'gofeeder'] : ['gofeeder', 'armorfeed']);

export function verdict(plan: Plan, failed: boolean, ok: boolean): Verdict {
  if (failed) return 'failed run';
  if (plan.quick) return 'smoke';
  return ok ? 'holds' : 'missed';
}

export const failedAny = (ms_: Measurement[]): boolean => ms_.some((m) => m.problems.length > 0);

export function brief(m: Measurement): string {
  const r = m.loadclient?.report;
  const s = m.server;
  const parts = [`${m.system.padEnd(9)} ${m.label}:`];
  if (r !== undefined) {
    parts.push(`agg ${int(r.aggregateRateEps)} ev/s, missing ${pct(r.missingPct)} (worst client ${pct(worstClientMissingPct(r))}), p50 ${us(r.latencyUs.p50)}, p99 ${us(r.latencyUs.p99)}`);
  }
  const p = m.producer?.report;
  if (p !== undefined) parts.push(`producer sent ${int(p.sent)} in ${p.seconds.toFixed(2)} s (${int(p.rateEps)} ev/s, blocked ${int(p.blockedMs)} ms)`);
  const i = m.ingest;
  if (i !== undefined) parts.push(`ingested ${int(i.ingested)}${i.ringFull !== undefined ? ` ring_full ${int(i.ringFull)}` : ''} malformed ${int(i.malformed)}`);
  if (s !== undefined) parts.push(`server ${s.runCpuSec.toFixed(2)} CPU-s from ${p !== undefined ? 'producer' : 'generation'} start (${s.cpuSec.toFixed(2)} in all), peak RSS ${mb(s.peakRssBytes)}`);
  if (m.loadclient !== undefined) parts.push(`loadclient ${m.loadclient.cpuSec.toFixed(2)} CPU-s`);
  parts.push(`load ${m.loadavg1.start.toFixed(2)}→${m.loadavg1.end.toFixed(2)}`);
  if (m.problems.length > 0) parts.push(`FAILED: ${m.problems.join(' | ')}`);
  return parts.join(' ');
}

export async function measured(ctx: TargetContext, p: Promise<Measurement>): Promise<Measurement> {
  const m = await p;
  ctx.log(brief(m));
  for (const o of m.observations) ctx.log(`  observation: ${o}`);
  return m;
}

// ---- 1. one client, generation as fast as possible ------------------------------------

export async function target1(ctx: TargetContext): Promise<TargetResult> {
  const { plan, bin } = ctx;
  const { count, reps } = plan.t1;
  const runs: Measurement[] = [];
  for (let rep = 0; rep < reps; rep++) {
    for (const system of SYSTEMS_IN_ORDER(rep)) {
      runs.push(
        await measured(
          ctx,
          measure(bin, system, `t1 rep ${rep + 1}/${reps}`, { rate: 0, count, alertEvery: 0, waitClients: 1 },
            { clients: 1, expect: count, streams: 'logs', durationS: plan.quick ? 30 : 120 }),
        ),
      );
    }
  }
  const of = (s: SystemName): Measurement[] => runs.filter((m) => m.system === s);
  const eps = (s: SystemName): number => median(of(s).flatMap((m) => (m.loadclient?.report ? [m.loadclient.report.aggregateRateEps] : [])));
  const miss = (s: SystemName): number => median(of(s).flatMap((m) => (m.loadclient?.report ? [m.loadclient.report.missingPct] : [])));
  const cpu = (s: SystemName): number => median(of(s).flatMap((m) => (m.server ? [m.server.runCpuSec] : [])));
  const rss = (s: SystemName): number => Math.max(...of(s).map((m) => m.server?.peakRssBytes ?? 0));
  const delivered = (s: SystemName): number => median(of(s).flatMap((m) => (m.loadclient?.report ? [m.loadclient.report.received] : [])));
  const cpuPerM = (s: SystemName): number => (cpu(s) / delivered(s)) * 1e6;
  const [a, g] = [eps('armorfeed'), eps('gofeeder')];
  const failed = failedAny(runs);
  const t = '1. 1 client, rate 0';
  const what = reps > 1 ? `median of ${reps}` : '1 run';
  return {
    id: 1,
    title: `One client, unpaced generation of ${int(count)} logs`,
    measurements: runs,
    details: runs.map(brief),
    data: { count, reps, medianEps: { armorfeed: a, gofeeder: g } },
    rows: [
      { target: t, measure: `delivered ev/s (loadclient aggregate, ${what})`, armorfeed: int(a), gofeeder: int(g), ratio: ratio(a, g), goal: '≥ 2.0x', verdict: verdict(plan, failed, a / g >= 2) },
      { target: t, measure: `missing of ${int(count)}`, armorfeed: pct(miss('armorfeed')), gofeeder: pct(miss('gofeeder')), ratio: '', goal: '', verdict: '' },
      { target: t, measure: 'server CPU-s per 1M delivered (from generation start)', armorfeed: cpuPerM('armorfeed').toFixed(2), gofeeder: cpuPerM('gofeeder').toFixed(2), ratio: ratio(cpuPerM('armorfeed'), cpuPerM('gofeeder')), goal: '', verdict: '' },
      { target: t, measure: 'server peak RSS', armorfeed: mb(rss('armorfeed')), gofeeder: mb(rss('gofeeder')), ratio: ratio(rss('armorfeed'), rss('gofeeder')), goal: '', verdict: '' },
    ],
  };
}

// ---- 2. highest clean rate, one and four clients --------------------------------------

interface Probe {
  rate: number;
  pass: boolean;
  worstMissingPct: number;
  p99Us: number;
  failed: boolean;
}

/**
 * Doubling, then bisection: lo is the highest rate that passed, hi the lowest that
 * failed. Rates are rounded to 500 ev/s; the search stops after `maxProbes` or once
 * the bracket is within 5% of lo.
 */
async function searchRate(ctx: TargetContext, system: SystemName, clients: 1 | 4): Promise<{ best: number; hi?: number; probes: Probe[]; runs: Measurement[] }> {
  const { plan, bin } = ctx;
  const { seconds, maxProbes, maxMissingPct } = plan.t2;
  let lo = 0;
  let hi = Infinity;
  let rate = plan.t2.startRate[clients];
  const probes: Probe[] = [];
  const runs: Measurement[] = [];
  while (probes.length < maxProbes) {
    const count = rate * seconds;
    const m = await measured(
      ctx,
      measure(bin, system, `t2 ${clients} client(s) @ ${int(rate)}/s`, { rate, count, alertEvery: 5, waitClients: 2 * clients },
        { clients, expect: count, streams: 'both', durationS: seconds * 2 + 10 }),
    );
    runs.push(m);
    const r = m.loadclient?.report;
    const failed = m.problems.length > 0;
    const worst = r === undefined ? 100 : worstClientMissingPct(r);
    const pass = !failed && worst <= maxMissingPct;
    probes.push({ rate, pass, worstMissingPct: worst, p99Us: r?.latencyUs.p99 ?? NaN, failed });
    if (failed) break;
    if (pass) lo = rate;
    else hi = rate;
    const next = hi === Infinity ? rate * 2 : lo === 0 ? rate / 2 : (lo + hi) / 2;
    if (hi !== Infinity && lo > 0 && hi - lo <= lo * 0.05) break;
    rate = Math.max(500, Math.round(next / 500) * 500);
    if (rate === lo || rate === hi) break;
  }
  return { best: lo, hi: hi === Infinity ? undefined : hi, probes, runs };
}

export async function target2(ctx: TargetContext): Promise<TargetResult> {
  const { plan } = ctx;
  const rows: Row[] = [];
  const details: string[] = [];
  const measurements: Measurement[] = [];
  const data: Record<string, unknown> = { seconds: plan.t2.seconds, maxProbes: plan.t2.maxProbes, maxMissingPct: plan.t2.maxMissingPct };
  for (const clients of [1, 4] as const) {
    const found: Partial<Record<SystemName, Awaited<ReturnType<typeof searchRate>>>> = {};
    for (const system of ['armorfeed', 'gofeeder'] as const) {
      found[system] = await searchRate(ctx, system, clients);
      measurements.push(...(found[system]?.runs ?? []));
    }
    const a = found.armorfeed;
    const g = found.gofeeder;
    const failed = [a, g].some((x) => x?.probes.some((p) => p.failed) ?? true);
    const goal = clients === 1 ? 2.0 : 1.5;
    const show = (x: typeof a): string => (x === undefined ? 'n/a' : x.best === 0 ? `< ${int(x.probes[x.probes.length - 1]?.rate ?? 0)}` : `${int(x.best)}${x.hi !== undefined ? '' : '+'}`);
    rows.push({
      target: '2. highest clean rate',
      measure: `${clients} client${clients > 1 ? 's' : ''}: ev/s with every client ≤ ${plan.t2.maxMissingPct}% missing`,
      armorfeed: show(a),
      gofeeder: show(g),
      ratio: ratio(a?.best, g?.best),
      goal: `≥ ${goal.toFixed(1)}x`,
      verdict: verdict(plan, failed, a !== undefined && g !== undefined && g.best > 0 && a.best / g.best >= goal),
    });
    for (const [system, x] of Object.entries(found)) {
      details.push(
        `${system} ${clients} client(s): ${x.probes.map((p) => `${int(p.rate)}/s ${p.failed ? 'FAILED' : p.pass ? 'pass' : 'fail'} (worst ${pct(p.worstMissingPct)}, p99 ${ms(p.p99Us)})`).join(', ')}` +
          ` -> ${x.best > 0 ? int(x.best) : 'none passed'}${x.hi !== undefined ? ` (first failing ${int(x.hi)})` : ' (no failing probe: a lower bound)'}`,
      );
      data[`${system}_${clients}`] = { best: x.best, firstFailing: x.hi, probes: x.probes };
    }
  }
  return { id: 2, title: 'Highest rate at which every client receives everything', rows, details, measurements, data };
}

// ---- 3. four clients at 50,000 ev/s ---------------------------------------------------

export async function target3(ctx: TargetContext): Promise<TargetResult> {
  const { plan, bin } = ctx;
  const { rate, count, runs: n, p99GoalUs } = plan.t3;
  const runs: Measurement[] = [];
  for (let rep = 0; rep < n; rep++) {
    for (const system of SYSTEMS_IN_ORDER(rep)) {
      runs.push(
        await measured(
          ctx,
          measure(bin, system, `t3 run ${rep + 1}/${n}`, { rate, count, alertEvery: 5, waitClients: 8 },
            { clients: 4, expect: count, streams: 'both', durationS: (count / rate) * 2 + 10 }),
        ),
      );
    }
  }
  const t = `3. 4 clients @ ${int(rate / 1000)}k/s`;
  const of = (s: SystemName): Measurement[] => runs.filter((m) => m.system === s);
  const cell = (m: Measurement | undefined): string => {
    const r = m?.loadclient?.report;
    if (m === undefined || r === undefined) return 'n/a';
    return `${int(r.missing)} missing, p99 ${ms(r.latencyUs.p99)}${m.problems.length > 0 ? ' FAILED' : ''}`;
  };
  const rows: Row[] = [];
  for (let i = 0; i < n; i++) {
    const a = of('armorfeed')[i];
    const g = of('gofeeder')[i];
    const ra = a?.loadclient?.report;
    const ok = ra !== undefined && ra.missing === 0 && ra.latencyUs.p99 <= p99GoalUs;
    rows.push({
      target: t,
      measure: `run ${i + 1}: missing of ${int(count * 4)}, p99`,
      armorfeed: cell(a),
      gofeeder: cell(g),
      ratio: ratio(ra?.latencyUs.p99, g?.loadclient?.report?.latencyUs.p99),
      goal: `0, ≤ ${ms(p99GoalUs)}`,
      verdict: verdict(plan, a === undefined || a.problems.length > 0, ok),
    });
  }
  const clean = (s: SystemName): number => of(s).filter((m) => m.loadclient?.report?.missing === 0 && m.problems.length === 0).length;
  const worstP99 = (s: SystemName): number => Math.max(...of(s).map((m) => m.loadclient?.report?.latencyUs.p99 ?? Infinity));
  const cpu = (s: SystemName): number => median(of(s).map((m) => m.server?.runCpuSec ?? NaN));
  rows.push({
    target: t,
    measure: `runs with 0 missing / worst p99`,
    armorfeed: `${clean('armorfeed')}/${n}, ${ms(worstP99('armorfeed'))}`,
    gofeeder: `${clean('gofeeder')}/${n}, ${ms(worstP99('gofeeder'))}`,
    ratio: ratio(worstP99('armorfeed'), worstP99('gofeeder')),
    goal: `${n}/${n}, ≤ ${ms(p99GoalUs)}`,
    verdict: verdict(plan, failedAny(of('armorfeed')), clean('armorfeed') === n && worstP99('armorfeed') <= p99GoalUs),
  });
  rows.push({
    target: t,
    measure: 'server CPU-s from generation start (median)',
    armorfeed: cpu('armorfeed').toFixed(2),
    gofeeder: cpu('gofeeder').toFixed(2),
    ratio: ratio(cpu('armorfeed'), cpu('gofeeder')),
    goal: '',
    verdict: '',
  });
  return { id: 3, title: `Four clients at ${int(rate)} ev/s, ${n} run(s)`, rows, details: runs.map(brief), measurements: runs, data: { rate, count, runs: n } };
}

// ---- 4. light load ---------------------------------------------------------------------

export async function target4(ctx: TargetContext): Promise<TargetResult> {
  const { plan, bin } = ctx;
  const { rate, count, p99GoalUs } = plan.t4;
  const runs: Measurement[] = [];
  for (const system of SYSTEMS_IN_ORDER(0)) {
    runs.push(
      await measured(
        ctx,
        measure(bin, system, `t4 1 client @ ${int(rate)}/s`, { rate, count, alertEvery: 5, waitClients: 2 },
          { clients: 1, expect: count, streams: 'both', durationS: (count / rate) * 2 + 10 }),
      ),
    );
  }
  const rep = (s: SystemName) => runs.find((m) => m.system === s)?.loadclient?.report;
  const [a, g] = [rep('armorfeed'), rep('gofeeder')];
  const t = `4. 1 client @ ${int(rate)}/s`;
  return {
    id: 4,
    title: `Light load: one client at ${int(rate)} ev/s`,
    measurements: runs,
    details: runs.map(brief),
    data: { rate, count },
    rows: [
      { target: t, measure: `p99 latency (${int(count)} events)`, armorfeed: us(a?.latencyUs.p99 ?? NaN), gofeeder: us(g?.latencyUs.p99 ?? NaN), ratio: ratio(a?.latencyUs.p99, g?.latencyUs.p99), goal: `≤ ${us(p99GoalUs)}`, verdict: verdict(plan, failedAny(runs), a !== undefined && a.missing === 0 && a.latencyUs.p99 <= p99GoalUs) },
      { target: t, measure: 'p50 / max latency', armorfeed: `${us(a?.latencyUs.p50 ?? NaN)} / ${us(a?.latencyUs.max ?? NaN)}`, gofeeder: `${us(g?.latencyUs.p50 ?? NaN)} / ${us(g?.latencyUs.max ?? NaN)}`, ratio: ratio(a?.latencyUs.p50, g?.latencyUs.p50), goal: '', verdict: '' },
      { target: t, measure: 'missing', armorfeed: int(a?.missing ?? NaN), gofeeder: int(g?.missing ?? NaN), ratio: '', goal: '0', verdict: '' },
    ],
  };
}

// ---- 5. slow clients -------------------------------------------------------------------

export interface RssShape {
  maxBytes: number;
  firstMeanBytes: number;
  lastMeanBytes: number;
  growthBytes: number;
  flat: boolean;
  /** [seconds since generation start, RSS MB], one point per second. */
  perSecond: [number, number][];
}

/**
 * RSS over the generation window: the mean of the first `windowS` seconds against the
 * mean of the last `windowS`. "Flat" means it grew by at most max(10 MB, 10%).
 */
export function rssShape(stop: ServerStop, windowS: number, fallbackEndMs: number): RssShape | undefined {
  const startMs = stop.generationStartMs;
  if (startMs === undefined) return undefined;
  const endMs = stop.generationEndMs ?? fallbackEndMs;
  const inWindow = stop.samples.filter((s) => s.atMs >= startMs && s.atMs <= endMs);
  if (inWindow.length < 2) return undefined;
  const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  const first = inWindow.filter((s) => s.atMs - startMs <= windowS * 1000).map((s) => s.rssBytes);
  const last = inWindow.filter((s) => endMs - s.atMs <= windowS * 1000).map((s) => s.rssBytes);
  const perSecond: [number, number][] = [];
  let nextS = 0;
  for (const s of inWindow) {
    const t = (s.atMs - startMs) / 1000;
    if (t >= nextS) {
      perSecond.push([Math.round(t * 10) / 10, Math.round((s.rssBytes / 2 ** 20) * 10) / 10]);
      nextS = Math.floor(t) + 1;
    }
  }
  const firstMean = mean(first);
  const lastMean = mean(last);
  const growth = lastMean - firstMean;
  return {
    maxBytes: Math.max(...inWindow.map((s) => s.rssBytes)),
    firstMeanBytes: firstMean,
    lastMeanBytes: lastMean,
    growthBytes: growth,
    flat: growth <= Math.max(10 * 2 ** 20, firstMean * 0.1),
    perSecond,
  };
}

export interface StalledCheck {
  streams: number;
  /** Streams where delivered + client_queue_full = generated (the issue's wording). */
  strict: number;
  /** Streams where delivered + every per-client drop counter = generated. */
  exact: number;
  rows: (StreamRow & { generated: number; accountedStrict: number; accounted: number })[];
}

export function checkStalled(stop: ServerStop, ports: Set<number>): StalledCheck | undefined {
  const gen = stop.summary.generated;
  if (gen === undefined) return undefined;
  const rows = stop.summary.rows
    .filter((r) => ports.has(r.peerPort) || r.name.startsWith('stalled-'))
    .map((r) => {
      const generated = r.stream === 'alerts' ? gen.alerts : gen.logs;
      const accountedStrict = r.delivered + r.queueFull;
      return { ...r, generated, accountedStrict, accounted: accountedStrict + r.throttled + r.filtered + r.closed };
    });
  return {
    streams: rows.length,
    strict: rows.filter((r) => r.accountedStrict === r.generated).length,
    exact: rows.filter((r) => r.accounted === r.generated).length,
    rows,
  };
}

export async function target5(ctx: TargetContext): Promise<TargetResult> {
  const { plan, bin } = ctx;
  const { clients, stalled: nStalled, rate, seconds, windowS, rssLimitBytes } = plan.t5;
  const readers = clients - nStalled;
  const count = rate * seconds;
  const runs: Measurement[] = [];
  const shapes: Partial<Record<SystemName, RssShape>> = {};
  const checks: Partial<Record<SystemName, StalledCheck>> = {};
  for (const system of SYSTEMS_IN_ORDER(0)) {
    let stalled: StalledClients | undefined;
    let ports = new Set<number>();
    let loadclientEndMs = 0;
    const m = await measured(
      ctx,
      measure(bin, system, `t5 ${readers} readers + ${nStalled} stalled @ ${int(rate)}/s for ${seconds} s`,
        { rate, count, alertEvery: 5, waitClients: 2 * clients },
        { clients: readers, expect: count, streams: 'both', durationS: seconds + 30 },
        {
          beforeClient: (server) => {
            stalled = openStalledClients(server.addr, nStalled);
          },
          beforeStop: (server, meas) => {
            loadclientEndMs = performance.now() - server.process.spawnedAt;
            ports = ownConnectionPorts(server.port);
            meas.extra.stalledPorts = [...ports];
            for (const f of stalled?.failures() ?? []) meas.problems.push(f);
            const taken = stalled?.streams.map((s) => s.received) ?? [];
            meas.extra.stalledReceived = taken;
            if (ports.size !== nStalled) meas.observations.push(`${system}: found ${ports.size} stalled connections open at the end, expected ${nStalled}`);
            meas.extra.benchRssBytes = process.memoryUsage().rss;
          },
          afterStop: () => stalled?.close(),
        }),
    );
    runs.push(m);
    if (m.server !== undefined) {
      const shape = rssShape(m.server, windowS, loadclientEndMs);
      if (shape !== undefined) shapes[system] = shape;
      const check = checkStalled(m.server, ports);
      if (check !== undefined) checks[system] = check;
      m.extra.rss = shape;
      m.extra.stalledCheck = check;
      if (system === 'armorfeed' && check !== undefined && check.exact !== check.streams) {
        for (const r of check.rows.filter((x) => x.accounted !== x.generated)) {
          const o = `armorfeed stalled stream ${r.name} ${r.stream} (${r.peer}): delivered ${r.delivered} + client_queue_full ${r.queueFull} + throttled ${r.throttled} + filtered ${r.filtered} + client_closed ${r.closed} = ${r.accounted}, but ${r.generated} were generated`;
          m.observations.push(o);
          ctx.log(`  observation: ${o}`);
        }
      }
    }
  }
  const of = (s: SystemName): Measurement | undefined => runs.find((m) => m.system === s);
  const t = `5. ${readers}+${nStalled} stalled @ ${int(rate / 1000)}k/s, ${seconds} s`;
  const readerCell = (s: SystemName): string => {
    const r = of(s)?.loadclient?.report;
    return r === undefined ? 'n/a' : `${int(r.missing)} (worst ${pct(worstClientMissingPct(r))})`;
  };
  const stalledCell = (s: SystemName): string => {
    const c = checks[s];
    if (c === undefined) return 'n/a';
    if (s === 'gofeeder') {
      const residual = c.rows.map((r) => r.generated - r.accountedStrict);
      const lo = Math.min(...residual);
      const hi = Math.max(...residual);
      return `${lo === hi ? int(lo) : `${int(lo)}..${int(hi)}`} queued, uncounted`;
    }
    const closed = c.rows.map((r) => r.closed);
    return `${c.exact}/${c.streams} exact (strict ${c.strict}/${c.streams}; client_closed ${Math.min(...closed)}..${Math.max(...closed)})`;
  };
  const shapeCell = (s: SystemName): string => {
    const x = shapes[s];
    return x === undefined ? 'n/a' : `${mb(x.firstMeanBytes)} → ${mb(x.lastMeanBytes)}`;
  };
  const a = of('armorfeed');
  const aReport = a?.loadclient?.report;
  const aCheck = checks.armorfeed;
  const aShape = shapes.armorfeed;
  const aFailed = a === undefined || a.problems.length > 0;
  const peak = (s: SystemName): number => of(s)?.server?.peakRssBytes ?? NaN;
  return {
    id: 5,
    title: `Slow clients: ${readers} readers and ${nStalled} stalled clients at ${int(rate)} ev/s for ${seconds} s`,
    measurements: runs,
    details: [
      ...runs.map(brief),
      ...Object.entries(shapes).map(([s, x]) => `${s} RSS per second (MB): ${x.perSecond.map(([, v]) => v.toFixed(0)).join(' ')}`),
      ...Object.entries(checks).map(([s, c]) => `${s} stalled streams (delivered/dropped): ${c.rows.map((r) => `${r.stream[0]}${r.delivered}/${r.queueFull}`).join(' ')}`),
    ],
    data: { readers, stalled: nStalled, rate, seconds, count, windowS, rss: shapes, stalledChecks: checks },
    rows: [
      { target: t, measure: `readers: events missing of ${int(count * readers)}`, armorfeed: readerCell('armorfeed'), gofeeder: readerCell('gofeeder'), ratio: '', goal: '0', verdict: verdict(plan, aFailed, aReport !== undefined && aReport.missing === 0) },
      { target: t, measure: 'stalled streams: delivered + drop counters = generated', armorfeed: stalledCell('armorfeed'), gofeeder: stalledCell('gofeeder'), ratio: '', goal: 'all exact', verdict: verdict(plan, aFailed, aCheck !== undefined && aCheck.streams === 2 * nStalled && aCheck.exact === aCheck.streams) },
      { target: t, measure: 'server peak RSS (VmHWM)', armorfeed: mb(peak('armorfeed')), gofeeder: mb(peak('gofeeder')), ratio: ratio(peak('armorfeed'), peak('gofeeder')), goal: `< ${mb(rssLimitBytes)}`, verdict: verdict(plan, aFailed, peak('armorfeed') < rssLimitBytes) },
      { target: t, measure: `RSS, mean of first → last ${windowS} s`, armorfeed: shapeCell('armorfeed'), gofeeder: shapeCell('gofeeder'), ratio: '', goal: 'flat (≤ +10 MB or +10%)', verdict: verdict(plan, aFailed, aShape?.flat === true) },
      { target: t, measure: 'server CPU-s from generation start', armorfeed: (a?.server?.runCpuSec ?? NaN).toFixed(1), gofeeder: (of('gofeeder')?.server?.runCpuSec ?? NaN).toFixed(1), ratio: ratio(a?.server?.runCpuSec, of('gofeeder')?.server?.runCpuSec), goal: '', verdict: '' },
    ],
  };
}

export const TARGETS: Record<string, (ctx: TargetContext) => Promise<TargetResult>> = {
  1: target1,
  2: target2,
  3: target3,
  4: target4,
  5: target5,
};
