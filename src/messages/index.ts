/**
 * armorfeed's own log lines, published on WatchMessages as upstream's Message
 * (Type "Message", Level INFO/WARN/ERROR/DEBUG) and echoed to stderr. Upstream only
 * fills WatchMessages with debug=true; armorfeed always publishes INFO and above,
 * and DEBUG with debug=true.
 */
import { feederTypes, type DaemonMessage } from '../wire/proto';
import { formatUpdatedTime, nowMicros } from '../wire/time';

export type Level = 'INFO' | 'WARN' | 'ERROR' | 'DEBUG';

export interface MessageContext {
  cluster: string;
  host: string;
  hostIP: string;
  debug: boolean;
  /** Echo to stderr (the CLI); off for embedders. */
  echo: boolean;
}

export class DaemonLog {
  private publish: ((encoded: Uint8Array, ingestedUs: number) => void) | undefined;

  constructor(private readonly ctx: MessageContext) {}

  /** Connects the log to the fan-out once it exists. */
  attach(publish: (encoded: Uint8Array, ingestedUs: number) => void): void {
    this.publish = publish;
  }

  info(text: string): void {
    this.emit('INFO', text);
  }

  warn(text: string): void {
    this.emit('WARN', text);
  }

  error(text: string): void {
    this.emit('ERROR', text);
  }

  debug(text: string): void {
    if (this.ctx.debug) this.emit('DEBUG', text);
  }

  private emit(level: Level, text: string): void {
    const us = nowMicros();
    if (this.ctx.echo) process.stderr.write(`armorfeed: [${level}] ${text}\n`);
    if (this.publish === undefined) return;
    const message: DaemonMessage = {
      Timestamp: Math.floor(us / 1e6),
      UpdatedTime: formatUpdatedTime(us),
      ClusterName: this.ctx.cluster,
      HostName: this.ctx.host,
      Type: 'Message',
      Level: level,
      Message: text,
    };
    if (this.ctx.hostIP !== '') message.HostIP = this.ctx.hostIP;
    this.publish(feederTypes().Message.encode(message).finish(), us);
  }
}

/**
 * Counts occurrences and lets one line through per interval, with the count since the
 * last. What a burst leaves out is reported by `takeSuppressed`, asked periodically, so
 * the count is not held back until the next occurrence.
 */
export class RateLimitedNotice {
  private suppressed = 0;
  private last = 0;

  constructor(private readonly intervalMs: number) {}

  /** Returns how many were suppressed before this one, or -1 when this one is suppressed too. */
  take(): number {
    const now = Date.now();
    if (now - this.last >= this.intervalMs) {
      const n = this.suppressed;
      this.suppressed = 0;
      this.last = now;
      return n;
    }
    this.suppressed++;
    return -1;
  }

  /**
   * Once an interval has passed since the last line: how many were suppressed since it
   * (then cleared); else 0. The next occurrence is let through, so an interval holds at
   * most one line and one count.
   */
  takeSuppressed(): number {
    if (this.suppressed === 0 || Date.now() - this.last < this.intervalMs) return 0;
    const n = this.suppressed;
    this.suppressed = 0;
    return n;
  }
}

/** " (N more not shown)" for a rate-limited line, or nothing. */
export function notShown(suppressed: number): string {
  return suppressed > 0 ? ` (${suppressed} more not shown)` : '';
}
