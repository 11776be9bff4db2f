/**
 * What the relay's log says about one upstream: a line when its link changes, never one
 * per attempt. The link is the upstream's three streams taken together:
 *
 *   connecting --(first stream open, or first attempt failed)--> connected | partial | down
 *   connected: all three streams open    partial: one or two open    down: none open
 *
 * A node that stays away for an hour costs one WARN line ("down"), however many attempts
 * fail meanwhile; they are counted in /stats (failedAttempts, disconnectedSec) instead.
 * Changes within LINK_SETTLE_MS are one line (a node that dies breaks its three streams
 * within milliseconds), and a partial link is told only once no stream is still on its
 * way up (or after LINK_SETTLE_MAX_MS): a node that comes back opens one stream, which
 * calls the others back at once (upstream.ts), and that is one "connected" line, not a
 * "partly connected" warning first. Lines are rate-limited per upstream by a small token bucket: up
 * to LINK_LINE_BURST at once (a node that goes down and comes back is told at once, both
 * ways), then one per LINK_LINE_REFILL_MS, so a stream that opens and breaks on every
 * attempt (a node whose WatchLogs fails at once) writes one line per 10 s, saying how
 * many times it broke, instead of one per attempt (and each line is also a Message on
 * every client's WatchMessages).
 */
import type { DaemonLog } from '../messages';
import type { EventKind } from './scan';

export type UpstreamLink = 'connecting' | 'connected' | 'partial' | 'down';

/** Changes this close together are told in one line. */
export const LINK_SETTLE_MS = 250;
/** How long a partial link waits for streams still connecting before it is told anyway. */
export const LINK_SETTLE_MAX_MS = 2000;
/** Lines an upstream may write at once. */
export const LINK_LINE_BURST = 3;
/** After the burst, one more line per this long. */
export const LINK_LINE_REFILL_MS = 10_000;

const RPC: Readonly<Record<EventKind, string>> = { alerts: 'WatchAlerts', logs: 'WatchLogs', messages: 'WatchMessages' };

export interface LinkView {
  link: UpstreamLink;
  /** The streams open now, in alerts, logs, messages order. */
  open: readonly EventKind[];
  /** Whether a stream is on its way up (its HealthCheck in flight). */
  connecting: boolean;
}

export class UpstreamLinkLog {
  private logged: UpstreamLink = 'connecting';
  /** Since the last line: streams that broke after being open, attempts that failed, the last reason. */
  private breaks = 0;
  private failed = 0;
  private lastProblem = '';
  private tokens = LINK_LINE_BURST;
  private refilledAt = Date.now();
  private timer: NodeJS.Timeout | undefined;
  /** When the change now waiting to be told happened (0: none waiting). */
  private pendingSince = 0;

  constructor(
    private readonly id: string,
    private readonly log: DaemonLog,
    private readonly view: () => LinkView,
  ) {}

  /** A stream broke (`broke`: it had been open) or an attempt to open one failed. */
  problem(reason: string, broke: boolean): void {
    if (broke) this.breaks++;
    else this.failed++;
    this.lastProblem = reason;
    this.changed();
  }

  /** A stream opened, or anything else that may have changed the link. */
  changed(): void {
    if (this.timer !== undefined) return;
    if (this.pendingSince === 0) this.pendingSince = Date.now();
    this.refill();
    const wait = this.tokens >= 1 ? LINK_SETTLE_MS : Math.max(LINK_SETTLE_MS, this.refilledAt + LINK_LINE_REFILL_MS - Date.now());
    this.timer = setTimeout(() => this.flush(), wait);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** A token per LINK_LINE_REFILL_MS since the last one, up to the burst; a full bucket earns nothing. */
  private refill(): void {
    const now = Date.now();
    if (this.tokens >= LINK_LINE_BURST) {
      this.refilledAt = now;
      return;
    }
    const earned = Math.floor((now - this.refilledAt) / LINK_LINE_REFILL_MS);
    if (earned <= 0) return;
    this.tokens = Math.min(LINK_LINE_BURST, this.tokens + earned);
    this.refilledAt = this.tokens === LINK_LINE_BURST ? now : this.refilledAt + earned * LINK_LINE_REFILL_MS;
  }

  private flush(): void {
    this.timer = undefined;
    const { link, open, connecting } = this.view();
    if (link === 'partial' && connecting && Date.now() - this.pendingSince < LINK_SETTLE_MAX_MS) {
      this.changed();
      return;
    }
    // Nothing to tell: still starting, or back where the last line left it without a break
    // (failed attempts while down are what the down line already said).
    if (link === 'connecting' || (link === this.logged && this.breaks === 0)) {
      this.pendingSince = 0;
      return;
    }
    this.refill();
    if (this.tokens < 1) {
      this.changed();
      return;
    }
    this.tokens--;
    const tally = [...(this.breaks > 0 ? [count(this.breaks, 'stream break')] : []), ...(this.failed > 0 ? [count(this.failed, 'failed attempt')] : [])];
    const since = tally.length > 0 ? `; since the last line: ${tally.join(' and ')}, the last: ${this.lastProblem}` : '';
    const streams = (kinds: readonly EventKind[]): string => kinds.map((k) => RPC[k]).join(', ');
    if (link === 'connected') {
      this.log.info(`relay: upstream ${this.id} connected: ${streams(open)} open${since}`);
    } else if (link === 'partial') {
      const closed = (Object.keys(RPC) as EventKind[]).filter((k) => !open.includes(k));
      this.log.warn(`relay: upstream ${this.id} partly connected: ${streams(open)} open; ${streams(closed)} not, reopening with backoff${since}`);
    } else {
      this.log.warn(`relay: upstream ${this.id} down: no stream open; retrying with backoff, attempts counted in /stats (relay.upstreams), not logged${since}`);
    }
    this.logged = link;
    this.pendingSince = 0;
    this.breaks = 0;
    this.failed = 0;
  }
}

function count(n: number, what: string): string {
  return `${n} ${what}${n === 1 ? '' : 's'}`;
}
