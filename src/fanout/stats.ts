/**
 * What the fan-out reports about its clients, for every process that serves them
 * (`serve` and `relay`): one row per Watch* stream in /stats and metrics, and the
 * once-per-crossing warning about clients whose queues overflowed.
 */
import type { LatencySummary } from '../latency';
import type { DaemonLog } from '../messages';
import { RateLimitedNotice } from '../messages';
import type { StreamKind } from '../wire/proto';
import type { DropCounts } from './clientQueue';
import type { FanoutHub } from './hub';
import type { Subscriber } from './subscriber';

export interface ClientStats {
  id: string;
  name: string;
  stream: StreamKind;
  filter: string;
  peer: string;
  open: boolean;
  connectedSec: number;
  /** Events whose write gRPC confirmed. */
  delivered: number;
  /** Events handed to gRPC (delivered plus in flight). */
  written: number;
  dropped: DropCounts;
  queueDepth: number;
  queueCapacity: number;
  latencyUs: LatencySummary;
}

/** One row per open or recently closed Watch* stream. */
export function clientStats(hub: FanoutHub, now = Date.now()): ClientStats[] {
  return hub.all().map((s) => ({
    id: s.info.id,
    name: s.info.name,
    stream: s.info.stream,
    filter: s.info.filter,
    peer: s.info.peer,
    open: s.open,
    connectedSec: ((s.closedAt ?? now) - s.openedAt) / 1000,
    delivered: s.delivered,
    written: s.written,
    dropped: { ...s.dropped },
    queueDepth: s.queue.depth,
    queueCapacity: s.queue.capacity,
    latencyUs: s.latency(),
  }));
}

/**
 * Upstream logs drops only when every client lost an event; armorfeed counts every drop
 * per client and says so on WatchMessages when a client's queue overflows, once per
 * crossing (the queue's SlowNotifier, slowNotifier.ts: a client that recovered is not
 * warned about again until it falls behind again), at most once per 10 s. Crossings
 * held back by the 10 s limit are told at the next tick allowed. Call `tick()` once a second.
 */
export class ClientDropReporter {
  private readonly slowClients = new Set<Subscriber>();
  private readonly reported = new WeakMap<Subscriber, number>();
  private readonly notice = new RateLimitedNotice(10_000);

  constructor(
    hub: FanoutHub,
    private readonly log: DaemonLog,
  ) {
    hub.onSlowClient((sub) => this.slowClients.add(sub));
  }

  tick(): void {
    if (this.slowClients.size === 0 || this.notice.take() < 0) return;
    const lossy = [...this.slowClients];
    this.slowClients.clear();
    this.log.warn(
      `client queues full: ${lossy
        .map((s) => {
          const total = s.dropped.client_queue_full;
          const fresh = total - (this.reported.get(s) ?? 0);
          this.reported.set(s, total);
          return `${s.info.name} dropped ${fresh}${fresh !== total ? ` more (${total} in all)` : ''}`;
        })
        .join(', ')}`,
    );
  }
}
