/**
 * What limited each client of a load run, in one sentence, so the report never
 * calls the broker lossy for the tool's own slowness:
 *
 * - client:        the thread that ran the client was saturated (./thread-meter.ts), or
 *                  (a fast client that missed events) its event loop stalled for 200 ms
 *                  or more: whatever it missed is the tool's limit, not the broker's.
 * - broker-ingest: events were lost before fan-out (ring full, malformed).
 * - broker-cpu:    it missed events while the broker's main (fan-out) thread was busy
 *                  nearly a whole core.
 * - machine:       it missed events while every core of the machine was busy (other
 *                  processes included): a fast client, a broker that got too little CPU.
 * - broker-queue:  it missed events the broker dropped from its full queue: the client
 *                  (slow, stalled, or just behind) read slower than events arrived.
 * - nothing:       it received every event.
 */
import type { ProcSummary } from './proc-sampler';
import type { BrokerCounters, ClientReport, LimitKind, ThreadReport } from './report-model';

/** A fast client that missed events while its event loop stalled this long was not reading: the tool's limit. */
export const stalledThreadMs = 200;

/** All of the machine's cores at least this busy (%, every process) during the run: nobody got the CPU it needed. */
export const machineSaturatedPct = 95;

/** The broker's main thread at or above this mean CPU (% of one core) counts as CPU-bound. */
export const brokerCpuBoundPct = 85;

function pct(x: number): string {
  return `${Math.round(x * 100)}%`;
}

export function threadBusyText(t: ThreadReport): string {
  const share = t.saturatedShare >= 0.995 ? 'all' : pct(t.saturatedShare);
  const span = t.samples.length > 0 ? t.samples[t.samples.length - 1].t - t.samples[0].t + 0.5 : 0;
  const cpuPct = t.cpuSec !== null && span > 0 ? (100 * t.cpuSec) / span : null;
  // Busy without CPU: the thread was runnable but waited for a core.
  const cpu = cpuPct === null ? '' : cpuPct < 50 * t.meanElu ? `, but on a CPU only ${Math.round(cpuPct)}% of the time: the machine's cores were oversubscribed` : `, ${Math.round(cpuPct)}% of a core`;
  return `busy ${pct(t.meanElu)} of the run (saturated in ${share} of its 0.5 s samples${cpu})`;
}

export function explainClient(
  c: Pick<ClientReport, 'behaviour' | 'delayUs' | 'missing' | 'expected' | 'server'>,
  thread: ThreadReport | undefined,
  server: BrokerCounters | null,
  broker: ProcSummary | null,
  unattributable: number,
  machineBusyPct: number | null = null,
): { limitedBy: LimitKind; limit: string } {
  const shared = thread !== undefined && thread.clients.length > 1 ? ` (a thread shared by ${thread.clients.length} clients)` : '';
  if (thread?.saturated === true) {
    const loss = c.missing !== null && c.missing > 0 ? `; its ${c.missing.toLocaleString('en-US')} missing events are the load tool's limit, not the broker's` : '';
    return { limitedBy: 'client', limit: `client-limited: this client's thread${shared} was ${threadBusyText(thread)}${loss}.` };
  }
  if (thread !== undefined && c.behaviour === 'fast' && c.missing !== null && c.missing > 0 && thread.delayMaxMs >= stalledThreadMs) {
    return {
      limitedBy: 'client',
      limit:
        `client-limited: this client's thread${shared} stalled for up to ${Math.round(thread.delayMaxMs)} ms (event-loop delay) while only ${pct(thread.meanElu)} busy, ` +
        `so it waited for a CPU (the machine's cores were oversubscribed); its ${c.missing.toLocaleString('en-US')} missing events are not the broker's.`,
    };
  }
  if (c.missing === null) return { limitedBy: 'unknown', limit: 'unknown: without a sequence or --expect the loss of this client is not known.' };
  if (c.missing === 0) {
    return { limitedBy: 'nothing', limit: `nothing: it received all ${(c.expected ?? 0).toLocaleString('en-US')} events it should have.` };
  }
  const missing = c.missing.toLocaleString('en-US');
  if (server !== null && unattributable > 0 && c.server !== null && c.server.attributed === 0) {
    return { limitedBy: 'broker-ingest', limit: `the broker's ingest: ${unattributable.toLocaleString('en-US')} events were lost before fan-out (ring full or malformed), for every client alike.` };
  }
  if (broker !== null && broker.mainThreadMeanCpuPct >= brokerCpuBoundPct && c.behaviour === 'fast') {
    return {
      limitedBy: 'broker-cpu',
      limit: `the broker's CPU: its main thread was busy ${Math.round(broker.mainThreadMeanCpuPct)}% of a core while this client missed ${missing} events.`,
    };
  }
  if (machineBusyPct !== null && machineBusyPct >= machineSaturatedPct && c.behaviour === 'fast') {
    const brokerShare = broker !== null ? ` (the broker's main thread got ${Math.round(broker.mainThreadMeanCpuPct)}% of a core)` : '';
    return {
      limitedBy: 'machine',
      limit:
        `the machine's CPUs: all cores were ${Math.round(machineBusyPct)}% busy during the run, counting every process on it${brokerShare}, ` +
        `so this client missed ${missing} events for want of CPU, not for a broker limit.`,
    };
  }
  const queueFull = c.server?.dropped.client_queue_full ?? null;
  const why =
    c.behaviour === 'slow'
      ? `the client read slower than events arrived (${c.delayUs} us per event)`
      : c.behaviour === 'stalled'
        ? 'the client read nothing until the producer finished'
        : `the client fell behind although its thread was only ${thread !== undefined ? pct(thread.meanElu) : '?'} busy`;
  if (queueFull !== null) {
    return { limitedBy: 'broker-queue', limit: `broker queue full: ${why}, and the broker dropped ${queueFull.toLocaleString('en-US')} events from its full queue (${missing} missing).` };
  }
  return { limitedBy: 'broker-queue', limit: `broker queue (no broker counters to confirm): ${why}; ${missing} events missing.` };
}
