/**
 * The real-path targets R1-R5: the same Go producer writes msgpack frames into each
 * server's Unix socket (`armorfeed serve --source socket`, `gofeeder --socket`), and the
 * same loadclient reads. Latency starts when the server stamps `UpdatedTime` on reading a
 * frame. Rows, verdicts and the run order follow targets 1-5 (targets.ts); see
 * bench/PEERS.md for what each row means.
 */
import { ownConnectionPorts, readMemory, sleep } from './children';
import { worstClientMissingPct } from './loadclient';
import type { Measurement } from './measure';
import { measureRealPath } from './realpath';
import { int, mb, median, ms, pct, ratio, us, type Row } from './report';
import type { SystemName } from './servers';
import { openStalledClients, type StalledClients } from './stalled';
import {
  brief,
  checkStalled,
  failedAny,
  measured,
  rssShape,
  SYSTEMS_IN_ORDER,
  verdict,
  type RssShape,
  type StalledCheck,
  type TargetContext,
  type TargetResult,
} from './targets';

/** Every real-path producer: alerts every 5th event (gofeeder's mix), one frame per write unless stated. */
const ALERT_EVERY = 5;

const lcDuration = (count: number, rate: number): number => (count / rate) * 2 + 10;
const report = (m: Measurement | undefined) => m?.loadclient?.report;

function p99Cell(m: Measurement | undefined): string {
  const r = report(m);
  if (m === undefined || r === undefined) return 'n/a';
  return `${int(r.missing)} missing, p99 ${ms(r.latencyUs.p99)}${m.problems.length > 0 ? ' FAILED' : ''}`;
}

// ---- R1. light load on the real path -------------------------------------------------

export async function targetR1(ctx: TargetContext): Promise<TargetResult> {
  const { plan, bin } = ctx;
  const { rate, count, p99GoalUs } = plan.r1;
  const runs: Measurement[] = [];
  for (const system of SYSTEMS_IN_ORDER(0)) {
    runs.push(
      await measured(
        ctx,
        measureRealPath(bin, system, `R1 1 client @ ${int(rate)}/s`, { rate, count, alertEvery: ALERT_EVERY, per: 1 },
          { clients: 1, expect: count, streams: 'both', durationS: lcDuration(count, rate) }, { unpacedCapS: 0 }),
      ),
    );
  }
  const of = (s: SystemName) => report(runs.find((m) => m.system === s));
  const [a, g] = [of('armorfeed'), of('gofeeder')];
  const t = `R1. socket, 1 client @ ${int(rate)}/s`;
  const ok = a !== undefined && g !== undefined && a.missing === 0 && a.latencyUs.p99 <= g.latencyUs.p99 && a.latencyUs.p99 <= p99GoalUs;
  return {
    id: 'R1',
    title: `Real path, light load: producer --rate ${int(rate)} --per 1 into the socket, one client`,
    measurements: runs,
    details: runs.map(brief),
    data: { rate, count, per: 1 },
    rows: [
      { target: t, measure: `p99 latency (${int(count)} events)`, armorfeed: us(a?.latencyUs.p99 ?? NaN), gofeeder: us(g?.latencyUs.p99 ?? NaN), ratio: ratio(a?.latencyUs.p99, g?.latencyUs.p99), goal: `≤ gf and ≤ ${us(p99GoalUs)}`, verdict: verdict(plan, failedAny(runs), ok) },
      { target: t, measure: 'p50 / max latency', armorfeed: `${us(a?.latencyUs.p50 ?? NaN)} / ${us(a?.latencyUs.max ?? NaN)}`, gofeeder: `${us(g?.latencyUs.p50 ?? NaN)} / ${us(g?.latencyUs.max ?? NaN)}`, ratio: ratio(a?.latencyUs.p50, g?.latencyUs.p50), goal: '', verdict: '' },
      { target: t, measure: 'missing', armorfeed: int(a?.missing ?? NaN), gofeeder: int(g?.missing ?? NaN), ratio: '', goal: '0', verdict: '' },
    ],
  };
}

// ---- R2 and R3. sustained 50k/s on the real path, repeated -----------------------------

async function repeatedRuns(ctx: TargetContext, id: string, clients: number, rate: number, count: number, n: number, orderOffset: number): Promise<Measurement[]> {
  const runs: Measurement[] = [];
  for (let rep = 0; rep < n; rep++) {
    for (const system of SYSTEMS_IN_ORDER(rep + orderOffset)) {
      runs.push(
        await measured(
          ctx,
          measureRealPath(ctx.bin, system, `${id} ${clients} client(s) @ ${int(rate)}/s, run ${rep + 1}/${n}`, { rate, count, alertEvery: ALERT_EVERY, per: 1 },
            { clients, expect: count, streams: 'both', durationS: lcDuration(count, rate) }, { unpacedCapS: 0 }),
        ),
      );
    }
  }
  return runs;
}

const cpuRow = (t: string, runs: Measurement[]): Row => {
  const cpu = (s: SystemName): number => median(runs.filter((m) => m.system === s).map((m) => m.server?.runCpuSec ?? NaN));
  return { target: t, measure: 'server CPU-s from producer start (median)', armorfeed: cpu('armorfeed').toFixed(2), gofeeder: cpu('gofeeder').toFixed(2), ratio: ratio(cpu('armorfeed'), cpu('gofeeder')), goal: '', verdict: '' };
};

export async function targetR2(ctx: TargetContext): Promise<TargetResult> {
  const { plan } = ctx;
  const { rate, count, runs: n, p99GoalUs } = plan.r2;
  const runs = await repeatedRuns(ctx, 'R2', 1, rate, count, n, 0);
  const of = (s: SystemName): Measurement[] => runs.filter((m) => m.system === s);
  const t = `R2. socket, 1 client @ ${int(rate / 1000)}k/s`;
  const rows: Row[] = [];
  // A run holds when armorfeed misses nothing and its p99 is within both the fixed goal
  // and gofeeder's p99 in the same repetition (measured back to back).
  const holds: boolean[] = [];
  for (let i = 0; i < n; i++) {
    const a = of('armorfeed')[i];
    const g = of('gofeeder')[i];
    const [ra, rg] = [report(a), report(g)];
    const ok = ra !== undefined && rg !== undefined && ra.missing === 0 && ra.latencyUs.p99 <= rg.latencyUs.p99 && ra.latencyUs.p99 <= p99GoalUs;
    holds.push(ok && a.problems.length === 0);
    rows.push({
      target: t,
      measure: `run ${i + 1}: missing of ${int(count)}, p99`,
      armorfeed: p99Cell(a),
      gofeeder: p99Cell(g),
      ratio: ratio(ra?.latencyUs.p99, rg?.latencyUs.p99),
      goal: `0, ≤ gf and ≤ ${ms(p99GoalUs)}`,
      verdict: verdict(plan, a === undefined || a.problems.length > 0, ok),
    });
  }
  const clean = (s: SystemName): number => of(s).filter((m) => report(m)?.missing === 0 && m.problems.length === 0).length;
  const worstP99 = (s: SystemName): number => Math.max(...of(s).map((m) => report(m)?.latencyUs.p99 ?? Infinity));
  const held = holds.filter(Boolean).length;
  rows.push({
    target: t,
    measure: 'runs with 0 missing / worst p99 (af: runs that hold)',
    armorfeed: `${clean('armorfeed')}/${n}, ${ms(worstP99('armorfeed'))} (${held}/${n} hold)`,
    gofeeder: `${clean('gofeeder')}/${n}, ${ms(worstP99('gofeeder'))}`,
    ratio: ratio(worstP99('armorfeed'), worstP99('gofeeder')),
    goal: `${n}/${n} hold`,
    verdict: verdict(plan, failedAny(of('armorfeed')), held === n),
  });
  rows.push(cpuRow(t, runs));
  return { id: 'R2', title: `Real path: producer --rate ${int(rate)} --per 1, one client, ${n} run(s)`, rows, details: runs.map(brief), measurements: runs, data: { rate, count, runs: n, per: 1, holds } };
}

export async function targetR3(ctx: TargetContext): Promise<TargetResult> {
  const { plan } = ctx;
  const { clients, rate, count, runs: n, p99GoalUs } = plan.r3;
  const runs = await repeatedRuns(ctx, 'R3', clients, rate, count, n, 1);
  const of = (s: SystemName): Measurement[] => runs.filter((m) => m.system === s);
  const t = `R3. socket, ${clients} clients @ ${int(rate / 1000)}k/s`;
  const rows: Row[] = [];
  for (let i = 0; i < n; i++) {
    const a = of('armorfeed')[i];
    const g = of('gofeeder')[i];
    const ra = report(a);
    const ok = ra !== undefined && ra.missing === 0 && ra.latencyUs.p99 <= p99GoalUs;
    rows.push({
      target: t,
      measure: `run ${i + 1}: missing of ${int(count * clients)}, p99`,
      armorfeed: p99Cell(a),
      gofeeder: p99Cell(g),
      ratio: ratio(ra?.latencyUs.p99, report(g)?.latencyUs.p99),
      goal: `0, ≤ ${ms(p99GoalUs)}`,
      verdict: verdict(plan, a === undefined || a.problems.length > 0, ok),
    });
  }
  const clean = (s: SystemName): number => of(s).filter((m) => report(m)?.missing === 0 && m.problems.length === 0).length;
  const worstP99 = (s: SystemName): number => Math.max(...of(s).map((m) => report(m)?.latencyUs.p99 ?? Infinity));
  rows.push({
    target: t,
    measure: 'runs with 0 missing / worst p99',
    armorfeed: `${clean('armorfeed')}/${n}, ${ms(worstP99('armorfeed'))}`,
    gofeeder: `${clean('gofeeder')}/${n}, ${ms(worstP99('gofeeder'))}`,
    ratio: ratio(worstP99('armorfeed'), worstP99('gofeeder')),
    goal: `${n}/${n}, ≤ ${ms(p99GoalUs)}`,
    verdict: verdict(plan, failedAny(of('armorfeed')), clean('armorfeed') === n && worstP99('armorfeed') <= p99GoalUs),
  });
  rows.push(cpuRow(t, runs));
  return { id: 'R3', title: `Real path: producer --rate ${int(rate)} --per 1, ${clients} clients, ${n} run(s)`, rows, details: runs.map(brief), measurements: runs, data: { clients, rate, count, runs: n, per: 1 } };
}

// ---- R4. unpaced producer ---------------------------------------------------------------

/** Peak RSS (VmHWM) per system under an unpaced producer: what R5 reports beside its own runs. */
const R4_PEAK = 'r4PeakRssBytes';

async function unpacedRun(ctx: TargetContext, system: SystemName, label: string): Promise<Measurement> {
  const { count, per, capS } = ctx.plan.r4;
  return measured(
    ctx,
    measureRealPath(ctx.bin, system, label, { rate: 0, count, alertEvery: ALERT_EVERY, per },
      { clients: 1, expect: count, streams: 'both', durationS: capS + 15 }, { unpacedCapS: capS }),
  );
}

export async function targetR4(ctx: TargetContext): Promise<TargetResult> {
  const { plan } = ctx;
  const { count, per, reps, ratioGoal } = plan.r4;
  const runs: Measurement[] = [];
  for (let rep = 0; rep < reps; rep++) {
    for (const system of SYSTEMS_IN_ORDER(rep + 1)) runs.push(await unpacedRun(ctx, system, `R4 unpaced --per ${per}, rep ${rep + 1}/${reps}`));
  }
  const of = (s: SystemName): Measurement[] => runs.filter((m) => m.system === s);
  const med = (s: SystemName, f: (m: Measurement) => number | undefined): number => median(of(s).flatMap((m) => {
    const v = f(m);
    return v === undefined ? [] : [v];
  }));
  const eps = (s: SystemName): number => med(s, (m) => report(m)?.aggregateRateEps);
  const peak = (s: SystemName): number => Math.max(...of(s).map((m) => m.server?.peakRssBytes ?? NaN));
  ctx.memo.set(R4_PEAK, { armorfeed: peak('armorfeed'), gofeeder: peak('gofeeder'), runs: reps, failed: failedAny(of('armorfeed')) });
  // The run that lost the most between the producer and the server (ingested / sent).
  const worstIngest = (s: SystemName) =>
    of(s)
      .flatMap((m) => (m.ingest === undefined ? [] : [m.ingest]))
      .sort((x, y) => x.ingested / Math.max(1, x.sent) - y.ingested / Math.max(1, y.sent))[0];
  const ingestCell = (s: SystemName): string => {
    const i = worstIngest(s);
    return i === undefined ? 'n/a' : `${int(i.sent)} / ${int(i.ingested)} / ${i.ringFull === undefined ? '–' : int(i.ringFull)}`;
  };
  const aRuns = of('armorfeed');
  const allIngested = aRuns.length === reps && aRuns.every((m) => m.ingest !== undefined && m.ingest.ingested === m.ingest.sent && m.ingest.sent === count);
  const [a, g] = [eps('armorfeed'), eps('gofeeder')];
  const cpuPerM = (s: SystemName): number => (med(s, (m) => m.server?.runCpuSec) / med(s, (m) => report(m)?.received)) * 1e6;
  const blocked = (s: SystemName): string => `${int(med(s, (m) => m.producer?.report?.blockedMs))} ms, ${int(med(s, (m) => m.producer?.report?.rateEps))} ev/s`;
  const t = `R4. socket, unpaced --per ${per}`;
  const what = reps > 1 ? `median of ${reps}` : '1 run';
  const failed = failedAny(runs);
  return {
    id: 'R4',
    title: `Real path, unpaced: producer --rate 0 --per ${per}, ${int(count)} events, one client`,
    measurements: runs,
    details: runs.map(brief),
    data: { count, per, reps, medianEps: { armorfeed: a, gofeeder: g }, ingest: runs.map((m) => ({ system: m.system, label: m.label, ...m.ingest })) },
    rows: [
      { target: t, measure: `delivered ev/s (loadclient aggregate, ${what})`, armorfeed: int(a), gofeeder: int(g), ratio: ratio(a, g), goal: `≥ ${ratioGoal.toFixed(1)}x`, verdict: verdict(plan, failed, a / g >= ratioGoal) },
      { target: t, measure: `sent / ingested / ring_full${reps > 1 ? ` (worst of ${reps})` : ''}`, armorfeed: ingestCell('armorfeed'), gofeeder: ingestCell('gofeeder'), ratio: '', goal: 'ingested = sent', verdict: verdict(plan, failed, allIngested) },
      { target: t, measure: `missing of ${int(count)} (${what})`, armorfeed: pct(med('armorfeed', (m) => report(m)?.missingPct)), gofeeder: pct(med('gofeeder', (m) => report(m)?.missingPct)), ratio: '', goal: '', verdict: '' },
      { target: t, measure: `producer blocked_ms, rate (${what})`, armorfeed: blocked('armorfeed'), gofeeder: blocked('gofeeder'), ratio: '', goal: '', verdict: '' },
      { target: t, measure: 'server CPU-s per 1M delivered (from producer start)', armorfeed: cpuPerM('armorfeed').toFixed(2), gofeeder: cpuPerM('gofeeder').toFixed(2), ratio: ratio(cpuPerM('armorfeed'), cpuPerM('gofeeder')), goal: '', verdict: '' },
    ],
  };
}

// ---- R5. memory: idle, unpaced, and beside stalled clients -------------------------------

export async function targetR5(ctx: TargetContext): Promise<TargetResult> {
  const { plan, bin } = ctx;
  const { idleS, idleLimitBytes, r4LimitBytes, clients, stalled: nStalled, rate, seconds, windowS, rssLimitBytes } = plan.r5;
  const readers = clients - nStalled;
  const count = rate * seconds;
  const runs: Measurement[] = [];
  const details: string[] = [];

  // Under R4: R4's runs when it ran before in this invocation, else one unpaced run each.
  let r4 = ctx.memo.get(R4_PEAK) as { armorfeed: number; gofeeder: number; runs: number; failed: boolean } | undefined;
  let r4From = r4 === undefined ? '' : `R4's ${r4.runs} run(s)`;
  if (r4 === undefined) {
    const own: Partial<Record<SystemName, Measurement>> = {};
    for (const system of SYSTEMS_IN_ORDER(1)) {
      own[system] = await unpacedRun(ctx, system, `R5 RSS under R4 (unpaced --per ${plan.r4.per})`);
      runs.push(own[system]);
    }
    const peakOf = (s: SystemName): number => own[s]?.server?.peakRssBytes ?? NaN;
    r4 = { armorfeed: peakOf('armorfeed'), gofeeder: peakOf('gofeeder'), runs: 1, failed: own.armorfeed === undefined || own.armorfeed.problems.length > 0 };
    r4From = 'an R4 run of its own';
  }

  const idle: Partial<Record<SystemName, number>> = {};
  const shapes: Partial<Record<SystemName, RssShape>> = {};
  const checks: Partial<Record<SystemName, StalledCheck>> = {};
  for (const system of SYSTEMS_IN_ORDER(0)) {
    let stalled: StalledClients | undefined;
    let ports = new Set<number>();
    const m = await measured(
      ctx,
      measureRealPath(bin, system, `R5 ${readers} readers + ${nStalled} stalled @ ${int(rate)}/s for ${seconds} s`,
        { rate, count, alertEvery: ALERT_EVERY, per: 1 },
        { clients: readers, expect: count, streams: 'both', durationS: seconds + 30 },
        { unpacedCapS: 0, extraStreams: 2 * nStalled },
        {
          beforeClient: async (server) => {
            // Idle: started, nothing connected, no traffic.
            await sleep(idleS * 1000);
            idle[system] = readMemory(server.pid)?.rssBytes ?? NaN;
            stalled = openStalledClients(server.addr, nStalled);
          },
          beforeStop: (server, meas) => {
            ports = ownConnectionPorts(server.port);
            meas.extra.stalledPorts = [...ports];
            meas.extra.idleRssBytes = idle[system];
            for (const f of stalled?.failures() ?? []) meas.problems.push(f);
            meas.extra.stalledReceived = stalled?.streams.map((s) => s.received) ?? [];
            if (ports.size !== nStalled) meas.observations.push(`${system}: found ${ports.size} stalled connections open at the end, expected ${nStalled}`);
          },
          afterStop: () => stalled?.close(),
        }),
    );
    runs.push(m);
    if (m.server !== undefined) {
      const shape = rssShape(m.server, windowS, m.server.generationEndMs ?? Infinity);
      if (shape !== undefined) shapes[system] = shape;
      m.extra.rss = shape;
      const check = checkStalled(m.server, ports);
      if (check !== undefined) checks[system] = check;
      m.extra.stalledCheck = check;
    }
  }

  const of = (s: SystemName): Measurement | undefined => runs.find((m) => m.system === s && m.label.includes('stalled'));
  const a = of('armorfeed');
  const aReport = report(a);
  const aFailed = a === undefined || a.problems.length > 0;
  const peak = (s: SystemName): number => of(s)?.server?.peakRssBytes ?? NaN;
  const readerCell = (s: SystemName): string => {
    const r = report(of(s));
    return r === undefined ? 'n/a' : `${int(r.missing)} (worst ${pct(worstClientMissingPct(r))})`;
  };
  const shapeCell = (s: SystemName): string => {
    const x = shapes[s];
    return x === undefined ? 'n/a' : `${mb(x.firstMeanBytes)} → ${mb(x.lastMeanBytes)}`;
  };
  const t = `R5. socket, memory`;
  const ts = `R5. socket, ${readers}+${nStalled} stalled @ ${int(rate / 1000)}k/s, ${seconds} s`;
  details.push(
    ...runs.map(brief),
    `RSS idle (${idleS} s after start, nothing connected): ${Object.entries(idle).map(([s, v]) => `${s} ${mb(v)}`).join(', ')}; under R4 from ${r4From}`,
    ...Object.entries(shapes).map(([s, x]) => `${s} RSS per second (MB): ${x.perSecond.map(([, v]) => v.toFixed(0)).join(' ')}`),
    ...Object.entries(checks).map(([s, c]) => `${s} stalled streams (delivered/dropped): ${c.rows.map((r) => `${r.stream[0]}${r.delivered}/${r.queueFull}`).join(' ')}`),
  );
  return {
    id: 'R5',
    title: `Real path, memory: idle, under R4, and ${readers} readers beside ${nStalled} stalled clients at ${int(rate)} ev/s for ${seconds} s`,
    measurements: runs,
    details,
    data: { idleS, idleRssBytes: idle, r4PeakRssBytes: r4, r4From, readers, stalled: nStalled, rate, seconds, count, windowS, rss: shapes, stalledChecks: checks },
    rows: [
      { target: t, measure: `idle RSS (${idleS} s after start, no traffic)`, armorfeed: mb(idle.armorfeed ?? NaN), gofeeder: mb(idle.gofeeder ?? NaN), ratio: ratio(idle.armorfeed, idle.gofeeder), goal: `≤ ${mb(idleLimitBytes)}`, verdict: verdict(plan, aFailed, (idle.armorfeed ?? Infinity) <= idleLimitBytes) },
      { target: t, measure: `peak RSS under R4 (VmHWM, ${r4.runs > 1 ? `max of ${r4.runs} runs` : '1 run'})`, armorfeed: mb(r4.armorfeed), gofeeder: mb(r4.gofeeder), ratio: ratio(r4.armorfeed, r4.gofeeder), goal: `≤ ${mb(r4LimitBytes)}`, verdict: verdict(plan, r4.failed, r4.armorfeed <= r4LimitBytes) },
      { target: ts, measure: `readers: events missing of ${int(count * readers)}`, armorfeed: readerCell('armorfeed'), gofeeder: readerCell('gofeeder'), ratio: '', goal: '0', verdict: verdict(plan, aFailed, aReport !== undefined && aReport.missing === 0) },
      { target: ts, measure: 'server peak RSS (VmHWM)', armorfeed: mb(peak('armorfeed')), gofeeder: mb(peak('gofeeder')), ratio: ratio(peak('armorfeed'), peak('gofeeder')), goal: `< ${mb(rssLimitBytes)}`, verdict: verdict(plan, aFailed, peak('armorfeed') < rssLimitBytes) },
      { target: ts, measure: `RSS, mean of first → last ${windowS} s`, armorfeed: shapeCell('armorfeed'), gofeeder: shapeCell('gofeeder'), ratio: '', goal: 'flat (≤ +10 MB or +10%)', verdict: verdict(plan, aFailed, shapes.armorfeed?.flat === true) },
      { target: ts, measure: 'server CPU-s from producer start', armorfeed: (a?.server?.runCpuSec ?? NaN).toFixed(1), gofeeder: (of('gofeeder')?.server?.runCpuSec ?? NaN).toFixed(1), ratio: ratio(a?.server?.runCpuSec, of('gofeeder')?.server?.runCpuSec), goal: '', verdict: '' },
    ],
  };
}

export const REAL_TARGETS: Record<string, (ctx: TargetContext) => Promise<TargetResult>> = {
  R1: targetR1,
  R2: targetR2,
  R3: targetR3,
  R4: targetR4,
  R5: targetR5,
};
