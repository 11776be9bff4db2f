/**
 * Replay (relay --from): a client that sends `x-armorfeed-since: <RFC 3339>` or
 * `x-armorfeed-after-seq: <stream sequence>` on a Watch* call gets ordered consumers of
 * its own, starting there, and stays on them: history, then live, from one cursor, so
 * nothing is lost or repeated where the one turns into the other. Its events go through
 * a batcher and hub of its own (the same filters and per-node views apply); the relay's
 * shared hub only lists, drains and shuts the stream down with the others.
 *
 * The consumers run on the relay's JetStream thread (jetstreamThread.ts), and are paced by
 * the client: each pull asks for at most the room left in the client's queue (pacing
 * slots, jetstreamProtocol.ts), so a history far larger than the queue arrives at the
 * client's speed and none of it is dropped as client_queue_full (live events then follow
 * at the same pace; a client that stays slow falls behind in the stream instead of losing
 * events).
 *
 * Replays are bounded (relayMaxReplays): each costs a consumer on the NATS server and a
 * read of the stream from its start point.
 */
import * as grpc from '@grpc/grpc-js';
import { ReplayError } from '../errors';
import { FanoutHub, type Subscriber } from '../fanout';
import type { DaemonLog } from '../messages';
import type { FeedRouter, OwnFeed } from '../server';
import type { ReplayStats } from '../stats';
import { filterMetadataKeys } from '../wire/proto';
import { RelayBatcher } from './batcher';
import { filterForKind, type FeedStart } from './jetstream';
import type { JetStreamThread } from './jetstreamThread';


const RFC3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/i;

/** The replay a Watch* call asks for in its metadata, or undefined; throws ReplayError(ERR_REPLAY_INVALID). */
export function parseReplayRequest(metadata: grpc.Metadata): FeedStart | undefined {
  const since = metadata.get(filterMetadataKeys.since).map(String).filter((v) => v !== '');
  const after = metadata.get(filterMetadataKeys.afterSeq).map(String).filter((v) => v !== '');
  if (since.length > 0 && after.length > 0) throw new ReplayError('ERR_REPLAY_INVALID', `send ${filterMetadataKeys.since} or ${filterMetadataKeys.afterSeq}, not both`);
  if (since.length > 0) {
    const ms = RFC3339.test(since[0]) ? Date.parse(since[0]) : NaN;
    if (!Number.isFinite(ms)) throw new ReplayError('ERR_REPLAY_INVALID', `${filterMetadataKeys.since}: ${JSON.stringify(since[0])} is not an RFC 3339 time (e.g. 2026-01-02T15:04:05Z)`);
    return { at: 'time', time: new Date(ms).toISOString() };
  }
  if (after.length > 0) {
    const seq = /^\d{1,15}$/.test(after[0]) ? Number(after[0]) : NaN;
    if (!Number.isSafeInteger(seq)) throw new ReplayError('ERR_REPLAY_INVALID', `${filterMetadataKeys.afterSeq}: ${JSON.stringify(after[0])} is not a stream sequence number`);
    return { at: 'seq', seq: seq + 1 };
  }
  return undefined;
}

export interface ReplaySettings {
  limit: number;
  /** The shared feed's subject filters; a replay narrows each to its stream's kind. */
  filters: readonly string[];
  /** Tokens in exportSubjectPrefix. */
  prefixTokens: number;
  /** The relay's --host (daemon messages of its own). */
  host: string;
}

export class Replays {
  readonly counts: ReplayStats;
  /** The stop of every replay running now. */
  private readonly running = new Set<() => void>();

  constructor(
    private readonly source: JetStreamThread,
    private readonly settings: ReplaySettings,
    private readonly log: DaemonLog,
  ) {
    this.counts = { limit: settings.limit, active: 0, started: 0, refused: 0, failed: 0 };
  }

  /** The server's FeedRouter: a replaying stream gets its own feed, any other the shared one. */
  readonly route: FeedRouter = (sub, metadata, end) => {
    const start = parseReplayRequest(metadata);
    if (start === undefined) return undefined;
    const counts = this.counts;
    if (counts.active >= this.settings.limit) {
      counts.refused++;
      throw new ReplayError('ERR_REPLAY_LIMIT', `${counts.active} clients replay already (relayMaxReplays=${this.settings.limit}); try again later, or connect without ${filterMetadataKeys.since} for live events only`);
    }
    if (!this.source.available) {
      counts.refused++;
      throw new ReplayError('ERR_REPLAY_UNAVAILABLE', 'the relay is not connected to NATS now; try again later');
    }
    return this.open(sub, start, end);
  };

  private open(sub: Subscriber, start: FeedStart, end: (code: grpc.status, details: string) => void): OwnFeed {
    const kind = sub.info.stream;
    const hub = new FanoutHub({ enabled: false, maxAlertPerSec: 0, throttleSec: 0 }, this.settings.host);
    hub.add(sub);
    const batcher = new RelayBatcher(hub);
    const filters = this.settings.filters.map((f) => filterForKind(f, this.settings.prefixTokens, kind) ?? (f.endsWith(`.${kind}`) ? f : undefined)).filter((f): f is string => f !== undefined);
    let closed = false;
    const counts = this.counts;
    counts.active++;
    counts.started++;
    const from = start.at === 'time' ? `since ${start.time}` : `after stream sequence ${start.seq - 1}`;
    this.log.info(`relay: replaying ${kind} ${from} for ${sub.info.name} (${sub.info.id}) on ${filters.join(', ') || 'no subject of this stream'}`);
    const stop = (): void => {
      if (closed) return;
      closed = true;
      counts.active--;
      this.running.delete(stop);
      feed.stop();
    };
    // Pulls sized to half the room in the client's queue at most, shared by its feeds: a
    // history larger than the queue is read as fast as the client takes it, never dropped
    // for want of room.
    const queue = sub.queue;
    const feed = this.source.openReplay(
      { kind, filters, start, attrs: sub.hasFilter, capacity: queue.capacity, depth: () => queue.depth },
      {
        batch: (batch) => {
          if (!closed) batcher.publishEvents(batch);
        },
        failed: (why) => {
          if (closed) return;
          stop();
          counts.failed++;
          this.log.warn(`relay: replay for ${sub.info.id} failed: ${why}`);
          end(grpc.status.UNAVAILABLE, `ERR_REPLAY_UNAVAILABLE: cannot replay from JetStream stream ${this.source.stream}: ${why}`);
        },
      },
    );
    this.running.add(stop);
    return { close: stop };
  }

  /**
   * Stops every replay's consumers (shutdown, before the NATS connection closes): their
   * clients keep what is queued and end with the others, not with UNAVAILABLE.
   */
  stopAll(): void {
    for (const stop of [...this.running]) stop();
  }
}
