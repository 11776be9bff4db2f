/**
 * Warms up the export thread's publish path on a new connection, before the first real
 * event: a scratch ExportBuffer and Publisher send sample events to subjects of their own
 * (`_ARMORFEED_WARMUP.<random>.<stream>`), where a responder of ours on the same
 * connection answers each with a PubAck, so the code every event then runs (the buffer,
 * Publisher.send and onReply, nats.js's publish, header and reply paths) is compiled.
 *
 * Cold, that code took the export thread's CPU just as traffic began: the gRPC client's
 * p99 at 20,000 ev/s with the export on was 6-7.8 ms over a fresh serve's first 8 s,
 * against 2.6 ms after a warm-up run of the producer (and 1.2-1.3 ms with the export off).
 *
 * Nothing of it reaches the stream or the export's counts: no stream takes those subjects
 * (when the stream's own subjects would, e.g. `>`, there is no warm-up), the buffer and
 * publisher are scratch ones, and it is bounded in events and time. A warm-up that cannot
 * finish is given up; the export only starts cold then.
 */
import { createInbox, type NatsConnection } from '@nats-io/transport-node';
import { ExportBuffer, newEntry, type ExportEntry } from './buffer';
import { deadlineSignal } from './pause';
import { Publisher } from './publisher';
import { subjectCovers } from './stream';
import type { ExportStreamKind } from './subjects';

export const EXPORT_WARM_UP_EVENTS = 8192;
const DEADLINE_MS = 3000;
const ROUND = 512;

export interface ExportWarmUpResult {
  events: number;
  ms: number;
  skipped?: string;
}

/** The code is warm once per thread (isolate), whatever the number of exports or connections on it. */
let warmed = false;

/** The thread's first call warms up (see above); later calls return at once, skipped. */
export async function warmUpPublishPath(nc: NatsConnection, streamSubjects: readonly string[], window: number): Promise<ExportWarmUpResult> {
  const started = performance.now();
  if (warmed) return { events: 0, ms: 0, skipped: 'warm already' };
  warmed = true;
  const sample = new Uint8Array(320).fill(0x61);
  const base = `_ARMORFEED_WARMUP.${createInbox().slice('_INBOX.'.length)}`;
  const result = (events: number, skipped?: string): ExportWarmUpResult => ({ events, ms: Math.round(performance.now() - started), ...(skipped !== undefined ? { skipped } : {}) });
  const taken = streamSubjects.find((f) => subjectCovers(f, `${base}.logs`));
  if (taken !== undefined) return result(0, `the stream takes ${taken}`);
  let seq = 0;
  const responder = nc.subscribe(`${base}.*`, {
    callback: (err, msg) => {
      if (err === null) msg.respond(`{"stream":"warm-up","seq":${++seq}}`);
    },
  });
  /** Settled once the round's events are acked, or at the deadline. */
  let round: { want: number; acked: () => void } | undefined;
  const buffer = new (class extends ExportBuffer {
    override ack(entry: ExportEntry, duplicate: boolean): boolean {
      const settled = super.ack(entry, duplicate);
      if (round !== undefined && this.counts.acked >= round.want) round.acked();
      return settled;
    }
  })(ROUND * 2, 64 << 20);
  const subjects: Record<ExportStreamKind, string> = { alerts: `${base}.alerts`, logs: `${base}.logs`, messages: `${base}.messages` };
  const publisher = new Publisher({ nodeId: `warm-up-${base}`, subjects, window, ackTimeoutMs: DEADLINE_MS, maxAttempts: 1 }, buffer, () => undefined);
  const deadline = started + DEADLINE_MS;
  try {
    publisher.attach(nc);
    let sent = 0;
    while (sent < EXPORT_WARM_UP_EVENTS) {
      for (let i = 0; i < ROUND; i++, sent++) buffer.take(newEntry(sent % 5 === 0 ? 'alerts' : 'logs', sent + 1, sample, '2026-01-02T03:04:05.123456Z'));
      const want = sent;
      const acked = deadlineSignal(deadline);
      round = { want, acked: acked.fire };
      publisher.pump();
      const ok = await acked.settled;
      round = undefined;
      if (!ok) return result(buffer.counts.acked, `only ${buffer.counts.acked} of ${EXPORT_WARM_UP_EVENTS} acked in ${DEADLINE_MS} ms`);
    }
    return result(buffer.counts.acked);
  } finally {
    publisher.abandon();
    responder.unsubscribe();
  }
}
