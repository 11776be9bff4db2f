/**
 * `armorfeed log`: a drop-in for `karmor logs` (kubearmor-wire.md 3) that reconnects.
 * Same flags and meanings as karmor (--secure, --tlsCertPath and --tlsCertProvider
 * included; the CA is read from tlsCertPath, never from a Kubernetes secret); additions:
 * --no-reconnect, --server-filter, --client-name and the backoff bounds. Bad flags and
 * unusable TLS files throw ConfigError (exit 2).
 */
import { Command, Option } from 'commander';
import { ConfigError } from '../errors';
import type { LogFilter, LogRunOptions, OutputFormat } from '../client';
import { compileGoRegex } from '../wire/goRegexp';
import type { FilterOptions } from '../client';
import { certProviders, DEFAULT_TLS_CERT_PATH, type CertProvider } from '../tls/files';

/** The regex filters keep their FilterOptions names; labels always holds an array here. */
interface LogFlags extends Omit<FilterOptions, 'labels'> {
  gRPC?: string;
  logFilter: LogFilter;
  msgPath: string;
  logPath: string;
  json?: boolean;
  output: OutputFormat;
  labels: string[];
  limit: string;
  reconnect: boolean;
  serverFilter: boolean;
  clientName?: string;
  node?: string;
  since?: string;
  backoffInitial: string;
  backoffMax: string;
  healthTimeout: string;
  secure?: boolean;
  tlsCertPath?: string;
  tlsCertProvider?: CertProvider;
}

export const DEFAULT_FEEDER = 'localhost:32767';

/**
 * The dial target. Unlike karmor (which dials the value verbatim), a bare port or
 * `:port` means localhost; anything else (`host:port`, `[v6]:port`, `dns:///...`) is kept.
 */
export function resolveTarget(flag: string | undefined, env: string | undefined): { target: string; from: string } {
  const raw = flag !== undefined && flag !== '' ? flag : env !== undefined && env !== '' ? env : undefined;
  const from = flag !== undefined && flag !== '' ? '--gRPC' : 'KUBEARMOR_SERVICE';
  if (raw === undefined) return { target: DEFAULT_FEEDER, from: 'default' };
  const port = /^:?(\d+)$/.exec(raw);
  if (port !== null) {
    const n = Number(port[1]);
    if (n < 1 || n > 65535) throw new ConfigError(from, `port ${port[1]} is out of range 1-65535`);
    return { target: `localhost:${n}`, from };
  }
  if (/\s/.test(raw)) throw new ConfigError(from, `${JSON.stringify(raw)} is not a host:port`);
  return { target: raw, from };
}

const DURATION_UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `--since`: a duration back from `now` (10m, 1h30m, 2d) or an RFC 3339 time; returned as RFC 3339 (UTC). */
export function parseSince(value: string, now = Date.now()): string {
  const v = value.trim();
  if (/^(\d+(ms|s|m|h|d))+$/.test(v)) {
    let ms = 0;
    for (const m of v.matchAll(/(\d+)(ms|s|m|h|d)/g)) ms += Number(m[1]) * DURATION_UNIT_MS[m[2]];
    return new Date(now - ms).toISOString();
  }
  if (/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/i.test(v)) {
    const ms = Date.parse(v);
    if (Number.isFinite(ms)) return new Date(ms).toISOString();
  }
  throw new ConfigError('--since', `${JSON.stringify(value)} is neither a duration (10m, 1h30m, 2d) nor an RFC 3339 time (2026-01-02T15:04:05Z)`);
}

function parseInteger(flag: string, value: string, min: number, max: number): number {
  if (!/^\d+$/.test(value)) throw new ConfigError(flag, `${JSON.stringify(value)} is not a non-negative integer`);
  const n = Number(value);
  if (n < min || n > max) throw new ConfigError(flag, `${n} is out of range ${min}-${max}`);
  return n;
}

/** cobra's StringSlice: comma-separated, and the flag may repeat. */
function collectSlice(value: string, previous: string[]): string[] {
  return [...previous, ...value.split(',').map((s) => s.trim()).filter((s) => s !== '')];
}

export function logOptionsFromFlags(flags: LogFlags, env: NodeJS.ProcessEnv): LogRunOptions {
  const { target } = resolveTarget(flags.gRPC, env.KUBEARMOR_SERVICE);
  if (flags.msgPath === 'none' && flags.logPath === 'none') {
    throw new ConfigError('--msgPath/--logPath', 'both are "none", so there is nothing to watch; set one to stdout or a file');
  }
  if (flags.msgPath === '' || flags.logPath === '') {
    throw new ConfigError(flags.msgPath === '' ? '--msgPath' : '--logPath', 'must be stdout, none or a file path');
  }
  const filters = {
    namespace: flags.namespace,
    logType: flags.logType,
    operation: flags.operation,
    container: flags.container,
    pod: flags.pod,
    resource: flags.resource,
    source: flags.source,
    labels: flags.labels,
  };
  // Compile once here so a bad pattern is a usage error before any connection is made.
  for (const [name, ci] of [['namespace', true], ['logType', true], ['operation', true], ['container', true], ['pod', true], ['resource', false], ['source', false]] as const) {
    const p = filters[name];
    if (p !== undefined && p !== '') compileGoRegex(`--${name}`, p, ci);
  }
  if (flags.node !== undefined && (flags.node === '' || !/^[\x21-\x7e]+$/.test(flags.node))) {
    throw new ConfigError('--node', `${JSON.stringify(flags.node)} is not a node name (printable ASCII, no spaces)`);
  }
  const backoffInitial = parseInteger('--backoff-initial', flags.backoffInitial, 1, 600_000);
  const backoffMax = parseInteger('--backoff-max', flags.backoffMax, 1, 3_600_000);
  if (backoffMax < backoffInitial) throw new ConfigError('--backoff-max', `must be at least --backoff-initial (${backoffInitial})`);
  return {
    target,
    logFilter: flags.logFilter,
    msgPath: flags.msgPath,
    logPath: flags.logPath,
    json: flags.json === true,
    output: flags.output,
    filters,
    limit: parseInteger('--limit', flags.limit, 0, 0xffffffff),
    reconnect: flags.reconnect,
    serverFilter: flags.serverFilter,
    clientName: flags.clientName,
    ...(flags.node !== undefined ? { node: flags.node } : {}),
    ...(flags.since !== undefined ? { since: parseSince(flags.since) } : {}),
    backoff: { initialMs: backoffInitial, maxMs: backoffMax },
    healthTimeoutMs: parseInteger('--health-timeout', flags.healthTimeout, 1, 3_600_000),
    statusIntervalMs: 1000,
  };
}

export function registerLog(program: Command): void {
  program
    .command('log')
    .description('Watch alerts, logs and messages from a feeder; a drop-in for `karmor logs` that reconnects')
    .option('--gRPC <host:port>', 'gRPC server address (a bare port means localhost); default $KUBEARMOR_SERVICE, then localhost:32767')
    .addOption(new Option('--logFilter <filter>', 'what to watch: policy (alerts), system (logs) or all').choices(['policy', 'system', 'all']).default('policy'))
    .option('--msgPath <path>', 'where Messages go: stdout, a file path, or none', 'none')
    .option('--logPath <path>', 'where alerts and logs go: stdout, a file path, or none', 'stdout')
    .option('--json', 'JSON output (one line per event, Messages included); wins over -o')
    .addOption(new Option('-o, --output <format>', 'output format for alerts and logs').choices(['text', 'json', 'pretty-json']).default('text'))
    .option('-n, --namespace <regex>', 'show only events whose namespace matches (case-insensitive)')
    .option('--logType <regex>', 'show only events whose Type matches, e.g. ContainerLog, HostLog, MatchedPolicy (case-insensitive)')
    .option('--operation <regex>', 'show only events whose Operation matches, e.g. Process, File, Network (case-insensitive)')
    .option('--container <regex>', 'show only events whose container name matches (case-insensitive)')
    .option('--pod <regex>', 'show only events whose pod name matches (case-insensitive)')
    .option('--resource <regex>', 'show only events whose Resource matches (case-sensitive)')
    .option('--source <regex>', 'show only events whose Source matches (case-sensitive)')
    .option('-l, --labels <k=v,...>', 'show only events with one of these labels (repeatable, comma-separated)', collectSlice, [])
    .option('--limit <n>', 'exit after printing n events per stream (0 = no limit)', '0')
    .option('--reconnect', 'reconnect with capped exponential backoff when a stream breaks', true)
    .option('--no-reconnect', 'exit when a stream breaks, like karmor')
    .option('--server-filter', 'ask an armorfeed server to apply --namespace/--operation/--logType before sending (upstream servers ignore it)', true)
    .option('--no-server-filter', 'filter on this side only')
    .option('--node <name>', 'show only events of this node (their HostName); an armorfeed server or relay filters before sending')
    .option('--since <when>', 'replay from an armorfeed relay on JetStream: events since a duration ago (10m, 1h30m) or an RFC 3339 time, then live (upstream servers ignore it)')
    .option('--client-name <name>', 'name this client in the server\'s metrics (x-armorfeed-client metadata)')
    .option('--backoff-initial <ms>', 'first reconnect delay in ms', '250')
    .option('--backoff-max <ms>', 'largest reconnect delay in ms', '10000')
    .option('--health-timeout <ms>', 'deadline of the HealthCheck call in ms', '10000')
    .option('--secure', 'mutual TLS: verify the server against ca.crt and present a client certificate (see --tlsCertProvider)')
    .option('--tlsCertPath <dir>', 'directory of ca.crt and ca.key (self) or ca.crt, client.crt and client.key (external)', DEFAULT_TLS_CERT_PATH)
    .addOption(
      new Option('--tlsCertProvider <provider>', 'self: sign a client certificate now from ca.crt + ca.key (karmor\'s default); external: present client.crt/client.key')
        .choices(certProviders)
        .default('self'),
    )
    .action(async (flags: LogFlags) => {
      const opts = logOptionsFromFlags(flags, process.env);
      // The gRPC client is loaded by this command only.
      const [{ runLog }, { loadClientTls }] = await Promise.all([import('../client'), import('../tls')]);
      if (flags.secure === true) opts.tls = await loadClientTls(flags.tlsCertPath ?? DEFAULT_TLS_CERT_PATH, flags.tlsCertProvider ?? 'self');
      await runLog(opts);
      // Ctrl-C, the limit, and a reader that went away (EPIPE) are all normal ends; failures
      // were thrown above and reach main's exitOnError. Exiting here also ends any grpc timer.
      process.exit(0);
    });
}
