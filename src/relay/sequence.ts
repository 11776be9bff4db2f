/**
 * Per-node sequence accounting of relay --from. The export numbers every event it is
 * offered, per node run (Armorfeed-Node-Id) and stream, 1, 2, 3 ... (export/subjects.ts),
 * so an event the export dropped (export_buffer_full, export_timeout ...) or the stream
 * lost leaves a hole. Each hole is counted here as `upstream_gap`, never hidden:
 *
 *   Armorfeed-Seq seen:  5 6 7 _ _ 10 11        gap += 2 (8 and 9 never arrived)
 *   new node id:         1 2 3                  a restarted node: a new sequence, no gap
 *
 * The first event of a run sets its base: what the run published before the relay's
 * consumer started is not a gap. A number at or below the last one (which an ordered
 * consumer does not deliver) is counted `repeats` and passed on.
 */
import type { NodeRunStats } from '../stats';
import type { EventKind } from './scan';

type PerStream = Record<EventKind, number>;

const zero = (): PerStream => ({ alerts: 0, logs: 0, messages: 0 });

/** Node runs tracked one by one; past it the oldest run's row goes (its gaps stay in the per-host totals). */
const MAX_RUNS = 10_000;
/** Hosts with their own per-host row; past it, `(other)`. */
const MAX_HOSTS = 10_000;
export const OTHER_HOSTS = '(other)';

/** The host name a node id starts with: `<host>@<start ms>-<4 hex>`. */
export function hostOfNodeId(nodeId: string): string {
  const at = nodeId.lastIndexOf('@');
  return at > 0 ? nodeId.slice(0, at) : nodeId;
}

export class NodeSequences {
  readonly runs = new Map<string, NodeRunStats>();
  /** Gaps per host (all its runs): the label of armorfeed_relay_upstream_gap_total. */
  readonly gapsByHost = new Map<string, PerStream>();
  gapsTotal = 0;
  /** Events without Armorfeed-Node-Id or a readable Armorfeed-Seq (published by something else): passed on, not tracked. */
  unsequenced = 0;

  /** Notes one event; returns how many sequence numbers it skipped over (the gap it reveals). */
  observe(nodeId: string, kind: EventKind, seq: number): number {
    if (nodeId === '' || !Number.isSafeInteger(seq) || seq < 1) {
      this.unsequenced++;
      return 0;
    }
    let run = this.runs.get(nodeId);
    if (run === undefined) {
      if (this.runs.size >= MAX_RUNS) {
        const oldest = this.runs.keys().next().value;
        if (oldest !== undefined) this.runs.delete(oldest);
      }
      run = { host: hostOfNodeId(nodeId), events: zero(), lastSeq: zero(), gaps: zero(), repeats: 0 };
      this.runs.set(nodeId, run);
    }
    run.events[kind]++;
    const last = run.lastSeq[kind];
    if (last === 0) {
      run.lastSeq[kind] = seq;
      return 0;
    }
    if (seq <= last) {
      run.repeats++;
      return 0;
    }
    run.lastSeq[kind] = seq;
    const gap = seq - last - 1;
    if (gap > 0) {
      run.gaps[kind] += gap;
      this.gapsTotal += gap;
      let host = this.gapsByHost.get(run.host);
      if (host === undefined) {
        const key = this.gapsByHost.size >= MAX_HOSTS ? OTHER_HOSTS : run.host;
        host = this.gapsByHost.get(key) ?? zero();
        this.gapsByHost.set(key, host);
      }
      host[kind] += gap;
    }
    return gap;
  }
}
