/**
 * `armorfeed log` end to end: FeederWatch -> filter -> format -> OutputSink, with the
 * per-stream counters, the live status line (stderr is a terminal) and the summary.
 *
 * Counters per stream: `received` (from the wire), `filtered` (dropped by the
 * client-side filters), `printed`. Events the server filtered never arrive and are
 * counted by the server (its `filtered` drop reason).
 */
import { EventFilter, type FilterOptions } from './filters';
import { alertSpec, goFields, goJsonIndent, logSpec, marshalGoFields, marshalMessage, type WireRecord } from './gojson';
import { OutputSink } from './output';
import type { ClientTlsMaterial } from '../tls';
import { formatEventText, formatMessageText } from './text';
import { FeederWatch, wantsStream, type BackoffOptions, type LogFilter, type WatchOptions } from './watch';
import type { StreamKind } from '../wire/proto';

export type OutputFormat = 'text' | 'json' | 'pretty-json';

export interface LogRunOptions {
  target: string;
  logFilter: LogFilter;
  /** `stdout`, `none` or a file path. */
  msgPath: string;
  logPath: string;
  /** `--json`: compact JSON for everything, Messages included; wins over `output`. */
  json: boolean;
  output: OutputFormat;
  filters: FilterOptions;
  /** Events to print per Alert/Log stream before exiting; 0 = no limit. */
  limit: number;
  reconnect: boolean;
  serverFilter: boolean;
  clientName?: string;
  /** `--since`: replay from this RFC 3339 time (a relay on JetStream), then live. */
  since?: string;
  /** `--node`: only events (and Messages) whose HostName is this; asked of the server too unless serverFilter is off. */
  node?: string;
  backoff: BackoffOptions;
  healthTimeoutMs: number;
  /** Live status line period; only used when stderr is a terminal. */
  statusIntervalMs: number;
  /** `--secure`: the mTLS material (loadClientTls); plaintext when absent. */
  tls?: ClientTlsMaterial;
}

export interface StreamCounters {
  received: number;
  filtered: number;
  printed: number;
}

export interface LogRunResult {
  counters: Record<StreamKind, StreamCounters>;
  reconnects: number;
  disconnectedMs: number;
  reason: 'limit' | 'signal' | 'output-closed';
}

const streamNames: readonly StreamKind[] = ['messages', 'alerts', 'logs'];

/** Writes status lines to stderr, keeping the live status line (if any) at the bottom. */
class StatusWriter {
  private live = '';
  constructor(private readonly tty: boolean) {}

  line(text: string): void {
    if (this.tty && this.live !== '') process.stderr.write('\r\x1b[K');
    process.stderr.write(`${text}\n`);
    if (this.tty && this.live !== '') process.stderr.write(this.live);
  }

  setLive(text: string): void {
    if (!this.tty) return;
    this.live = text;
    process.stderr.write(`\r\x1b[K${text}`);
  }

  clearLive(): void {
    if (this.tty && this.live !== '') process.stderr.write('\r\x1b[K');
    this.live = '';
  }
}

function summaryLine(counters: Record<StreamKind, StreamCounters>, open: Record<StreamKind, boolean>, watch: FeederWatch, elapsedMs: number): string {
  const parts = streamNames
    .filter((n) => open[n])
    .map((n) => `${n} received=${counters[n].received} printed=${counters[n].printed} filtered=${counters[n].filtered}`);
  return (
    `armorfeed: summary: ${parts.join('; ')}; reconnects=${watch.reconnects} ` +
    `disconnected=${(watch.disconnectedMs / 1000).toFixed(2)}s failed_attempts=${watch.failedAttempts} ` +
    `elapsed=${(elapsedMs / 1000).toFixed(2)}s`
  );
}

/** Runs the client until the limit, a signal, or a failure (thrown as ArmorfeedError). */
export async function runLog(opts: LogRunOptions): Promise<LogRunResult> {
  const filter = new EventFilter(opts.filters);
  const open: Record<StreamKind, boolean> = {
    messages: opts.msgPath !== 'none',
    alerts: opts.logPath !== 'none' && wantsStream('alerts', opts.logFilter),
    logs: opts.logPath !== 'none' && wantsStream('logs', opts.logFilter),
  };
  const counters: Record<StreamKind, StreamCounters> = {
    messages: { received: 0, filtered: 0, printed: 0 },
    alerts: { received: 0, filtered: 0, printed: 0 },
    logs: { received: 0, filtered: 0, printed: 0 },
  };
  // The limit counts printed events per stream (karmor counts received ones, shared across
  // streams). Messages count only when no Alert/Log stream is open.
  const limited = streamNames.filter((n) => open[n] && (n !== 'messages' || (!open.alerts && !open.logs)));
  const status = new StatusWriter(process.stderr.isTTY === true);
  const started = Date.now();

  let reason: LogRunResult['reason'] = 'signal';
  const blockedSinks = new Set<OutputSink>();
  const sinks = new Map<string, OutputSink>();
  const sinkFor = (dest: string): OutputSink => {
    let sink = sinks.get(dest);
    if (sink === undefined) {
      const created: OutputSink = OutputSink.open(dest, (state) => {
        if (state === 'failed') {
          reason = 'output-closed';
          watch.stop();
          return;
        }
        if (state === 'blocked') blockedSinks.add(created);
        else blockedSinks.delete(created);
        if (blockedSinks.size > 0) watch.pause();
        else watch.resume();
      });
      sink = created;
      sinks.set(dest, sink);
    }
    return sink;
  };
  const eventSink = open.alerts || open.logs ? sinkFor(opts.logPath) : undefined;
  const msgSink = open.messages ? sinkFor(opts.msgPath) : undefined;

  const eventsJson = opts.json || opts.output === 'json';
  const formatEvent = (stream: 'alerts' | 'logs', rec: WireRecord): string | undefined => {
    const fields = goFields(stream === 'alerts' ? alertSpec : logSpec, rec);
    if (!filter.matches(fields)) return undefined;
    if (eventsJson) return `${marshalGoFields(fields)}\n`;
    if (opts.output === 'pretty-json') return `${goJsonIndent(marshalGoFields(fields))}\n`;
    return formatEventText(stream === 'alerts' ? 'Alert' : 'Log', fields);
  };

  const watchOpts: WatchOptions = {
    target: opts.target,
    streams: open,
    logFilter: opts.logFilter,
    serverFilter: opts.serverFilter
      ? { namespace: opts.filters.namespace, operation: opts.filters.operation, logType: opts.filters.logType }
      : undefined,
    clientName: opts.clientName,
    ...(opts.serverFilter && opts.node !== undefined ? { node: opts.node } : {}),
    ...(opts.since !== undefined ? { since: opts.since } : {}),
    reconnect: opts.reconnect,
    backoff: opts.backoff,
    healthTimeoutMs: opts.healthTimeoutMs,
    tls: opts.tls,
  };

  const onEvent = (stream: StreamKind, rec: WireRecord): void => {
    const c = counters[stream];
    c.received++;
    if (opts.limit > 0 && limited.includes(stream) && c.printed >= opts.limit) return;
    let text: string | undefined;
    let sink: OutputSink | undefined;
    // Also on this side: an upstream server ignores the x-armorfeed-node metadata.
    if (opts.node !== undefined && opts.node !== '' && rec.HostName !== opts.node) {
      c.filtered++;
      return;
    }
    if (stream === 'messages') {
      text = opts.json ? `${marshalMessage(rec)}\n` : formatMessageText(rec);
      sink = msgSink;
    } else {
      text = formatEvent(stream, rec);
      sink = eventSink;
    }
    if (text === undefined) {
      c.filtered++;
      return;
    }
    sink?.write(text);
    c.printed++;
    if (opts.limit > 0 && limited.length > 0 && limited.every((n) => counters[n].printed >= opts.limit)) {
      reason = 'limit';
      watch.stop();
    }
  };

  const watch: FeederWatch = new FeederWatch(watchOpts, { onEvent, onStatus: (line) => status.line(line) });
  for (const { key, why } of watch.skippedServerFilterKeys) {
    status.line(`armorfeed: --${key} ${why}, so it is applied on this side only`);
  }

  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'];
  const onSignal = (): void => {
    reason = 'signal';
    watch.stop();
  };
  for (const s of signals) process.on(s, onSignal);

  let last = { messages: 0, alerts: 0, logs: 0 };
  let lastAt = Date.now();
  const ticker =
    process.stderr.isTTY === true
      ? setInterval(() => {
          const now = Date.now();
          const secs = Math.max((now - lastAt) / 1000, 0.001);
          const rates = streamNames
            .filter((n) => open[n])
            .map((n) => `${n} ${Math.round((counters[n].received - last[n]) / secs)}/s`);
          last = { messages: counters.messages.received, alerts: counters.alerts.received, logs: counters.logs.received };
          lastAt = now;
          const state = watch.connected ? 'connected' : 'reconnecting';
          status.setLive(`armorfeed: ${state} | ${rates.join(' ')} | reconnects ${watch.reconnects}`);
        }, opts.statusIntervalMs)
      : undefined;

  try {
    await watch.run();
  } finally {
    if (ticker !== undefined) clearInterval(ticker);
    for (const s of signals) process.off(s, onSignal);
    status.clearLive();
    await Promise.all([...sinks.values()].map((s) => s.close()));
    status.line(summaryLine(counters, open, watch, Date.now() - started));
  }
  return { counters, reconnects: watch.reconnects, disconnectedMs: watch.disconnectedMs, reason };
}
