/**
 * The export's settings, checked once at start-up with the rest of the configuration
 * (config/validate). Secrets come only from files: a NATS URL that carries a user,
 * password or token is refused, so none ends up in `ps`, shell history or a unit file.
 */
import * as fs from 'node:fs';
import { ConfigError } from '../errors';

/** The export's options, part of FeederConfig (the option table in config/index.ts owns the defaults). */
export interface ExportConfig {
  /** NATS JetStream export: comma-separated nats:// or tls:// URLs ('' = off). src/export. */
  export: string;
  /** Subjects are `<prefix>.<cluster>.<node>.alerts|logs|messages`. */
  exportSubjectPrefix: string;
  /** JetStream stream name; created when missing, used as it is when present. */
  exportStream: string;
  /** A created stream's max age, seconds (0 = no limit). */
  exportMaxAgeSec: number;
  /** A created stream's max bytes (-1 = no limit); the oldest are discarded past it. */
  exportMaxBytes: number;
  /** A created stream's replicas (a NATS cluster of at least that many JetStream servers). */
  exportReplicas: number;
  /** A created stream's duplicate window, seconds: retries within it are stored once. */
  exportDuplicateWindowSec: number;
  /** Events held for the export (waiting or unacknowledged); past it, dropped as export_buffer_full. */
  exportBufferEvents: number;
  /** Payload bytes held for the export; past it, dropped as export_buffer_full. */
  exportBufferBytes: number;
  /** Publishes awaiting a PubAck at once. */
  exportInFlight: number;
  /** ms a publish waits for its PubAck before it is sent again (same Nats-Msg-Id). */
  exportAckTimeoutMs: number;
  /** PubAck timeouts on a live connection before an event is given up (export_timeout). */
  exportMaxAttempts: number;
  /** The export thread's nice value (0-19): it yields the CPU to the broker's own work. */
  exportThreadNice: number;
  /** NATS .creds file (user JWT + nkey seed). */
  exportCredsFile: string;
  /** File holding an nkey seed (SU...). */
  exportNkeyFile: string;
  /** File holding a user name (first line) and password (second line). */
  exportUserFile: string;
  /** File holding an auth token. */
  exportTokenFile: string;
  /** CA bundle to verify the NATS servers with (TLS). */
  exportTlsCaFile: string;
  /** Client certificate for NATS (TLS client auth); needs exportTlsKeyFile. */
  exportTlsCertFile: string;
  exportTlsKeyFile: string;
}

const SCHEMES = ['nats:', 'tls:'];

/**
 * The server URLs of `--export` (or relay's `--from`: `key`), each checked: a scheme NATS
 * takes, a host, a port, no credentials.
 */
export function parseServers(value: string, key = 'export'): string[] {
  const list = value.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (list.length === 0) throw new ConfigError(key, 'needs at least one nats://HOST:PORT');
  for (const raw of list) {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw new ConfigError(key, `"${raw}" is not a URL; expected nats://HOST:PORT or tls://HOST:PORT`);
    }
    if (!SCHEMES.includes(url.protocol)) throw new ConfigError(key, `"${raw}": the scheme must be nats:// or tls://, got ${url.protocol}//`);
    if (url.hostname === '') throw new ConfigError(key, `"${raw}" names no host`);
    if (url.username !== '' || url.password !== '') {
      throw new ConfigError(key, `"${raw}" carries credentials; give them in a file instead (exportUserFile, exportTokenFile, exportNkeyFile or exportCredsFile)`);
    }
    if ((url.pathname !== '' && url.pathname !== '/') || url.search !== '' || url.hash !== '') {
      throw new ConfigError(key, `"${raw}": expected nats://HOST:PORT only, without a path or query`);
    }
  }
  return list;
}

/** Characters a NATS subject token cannot hold: the separator, the wildcards, whitespace and controls. */
const NOT_IN_TOKEN = /[.*>\s\p{Cc}]/u;

/** A subject prefix: one or more dot-separated literal tokens. */
export function checkSubjectPrefix(prefix: string): void {
  if (prefix === '') throw new ConfigError('exportSubjectPrefix', 'must not be empty');
  for (const token of prefix.split('.')) {
    if (token === '' || NOT_IN_TOKEN.test(token)) {
      throw new ConfigError('exportSubjectPrefix', `must be dot-separated tokens without *, >, whitespace or empty tokens, got ${JSON.stringify(prefix)}`);
    }
  }
}

/** JetStream stream names: no separators, wildcards, whitespace or path characters. */
export function checkStreamName(name: string): void {
  if (name === '' || /[.*>\s/\\\p{Cc}]/u.test(name) || name.length > 255) {
    throw new ConfigError('exportStream', `must be a JetStream stream name (no ., *, >, /, \\ or whitespace), got ${JSON.stringify(name)}`);
  }
}

function checkReadable(key: string, file: string): void {
  try {
    fs.accessSync(file, fs.constants.R_OK);
  } catch (err) {
    throw new ConfigError(key, `cannot read ${file}: ${(err as Error).message}`);
  }
}

/** Every export check that single values cannot express; nothing is checked when the export is off. */
export function validateExportConfig(config: ExportConfig): void {
  if (config.export === '') return;
  validateNatsAccess(config, config.export, 'export');
  if (config.exportInFlight > config.exportBufferEvents) {
    throw new ConfigError('exportInFlight', `must be at most exportBufferEvents (${config.exportBufferEvents}): publishes in flight are held in the buffer, got ${config.exportInFlight}`);
  }
}

/**
 * What the export and relay --from share: the servers (`servers`, read from option `key`),
 * the subject prefix, the stream name, the credential and TLS files.
 */
export function validateNatsAccess(config: ExportConfig, servers: string, key: string): void {
  parseServers(servers, key);
  checkSubjectPrefix(config.exportSubjectPrefix);
  checkStreamName(config.exportStream);
  const auth = (['exportCredsFile', 'exportNkeyFile', 'exportUserFile', 'exportTokenFile'] as const).filter((k) => config[k] !== '');
  if (auth.length > 1) throw new ConfigError(auth[1], `only one of exportCredsFile, exportNkeyFile, exportUserFile, exportTokenFile may be set; also got ${auth[0]}`);
  for (const key of [...auth, 'exportTlsCaFile', 'exportTlsCertFile', 'exportTlsKeyFile'] as const) {
    if (config[key] !== '') checkReadable(key, config[key]);
  }
  if ((config.exportTlsCertFile === '') !== (config.exportTlsKeyFile === '')) {
    throw new ConfigError(config.exportTlsCertFile === '' ? 'exportTlsCertFile' : 'exportTlsKeyFile', 'exportTlsCertFile and exportTlsKeyFile go together');
  }
  if (config.exportUserFile !== '') readUserFile(config.exportUserFile);
}

/** The user name (line 1) and password (line 2) of an exportUserFile. */
export function readUserFile(file: string): { user: string; pass: string } {
  const [user = '', pass = ''] = fs.readFileSync(file, 'utf8').split(/\r?\n/);
  if (user === '' || pass === '') throw new ConfigError('exportUserFile', `${file} must hold the user name on its first line and the password on its second`);
  return { user, pass };
}
