/**
 * Target addresses of a load run, all checked to be loopback: the gRPC feeder,
 * the ingest socket (TCP or Unix) and the stats endpoint.
 */
import * as net from 'node:net';
import { LoadFlagError, NotLoopbackError } from './errors';

export interface HostPort {
  host: string;
  port: number;
}

export type IngestTarget = { kind: 'tcp'; host: string; port: number } | { kind: 'unix'; path: string };

/** True for 127.0.0.0/8, ::1, ::ffff:127.x and the name localhost. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost') return true;
  if (net.isIPv4(h)) return h.startsWith('127.');
  if (net.isIPv6(h)) return h === '::1' || /^::ffff:127\./.test(h);
  return false;
}

/** Parses HOST:PORT (IPv6 in brackets) and refuses anything that is not loopback. */
export function parseLoopbackHostPort(key: string, value: string): HostPort {
  const m = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(value.trim());
  if (m === null) throw new LoadFlagError(key, `${JSON.stringify(value)} is not HOST:PORT`);
  const host = m[1].replace(/^\[|\]$/g, '');
  const port = Number(m[2]);
  if (port < 1 || port > 65535) throw new LoadFlagError(key, `port ${port} is out of range`);
  if (!isLoopbackHost(host)) throw new NotLoopbackError(key, value);
  return { host, port };
}

/** `tcp://HOST:PORT`, bare `HOST:PORT`, or `unix:///path`. */
export function parseIngestTarget(key: string, value: string): IngestTarget {
  if (value.startsWith('unix://')) {
    const path = value.slice('unix://'.length);
    if (!path.startsWith('/')) throw new LoadFlagError(key, `unix socket path must be absolute: ${value}`);
    return { kind: 'unix', path };
  }
  const hp = parseLoopbackHostPort(key, value.startsWith('tcp://') ? value.slice('tcp://'.length) : value);
  return { kind: 'tcp', ...hp };
}

/** Normalises a stats address (`HOST:PORT`, `http://HOST:PORT` or a full `/stats` URL) to the /stats URL. */
export function parseStatsUrl(key: string, value: string): string {
  const withScheme = /^https?:\/\//.test(value) ? value : `http://${value}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new LoadFlagError(key, `${JSON.stringify(value)} is not a URL`);
  }
  if (!isLoopbackHost(url.hostname)) throw new NotLoopbackError(key, value);
  if (url.pathname === '/' || url.pathname === '') url.pathname = '/stats';
  return url.toString();
}

export function formatHostPort(hp: HostPort): string {
  return net.isIPv6(hp.host) ? `[${hp.host}]:${hp.port}` : `${hp.host}:${hp.port}`;
}
