/**
 * armorfeed's GET /stats, read defensively: another feeder has no such endpoint
 * (the run then reports server counters as unknown), and a field missing from an
 * older armorfeed reads as 0 rather than failing the run.
 */

export interface ServerClientDrops {
  client_queue_full: number;
  throttled: number;
  filtered: number;
}

export interface ServerClientStats {
  id: string;
  name: string;
  stream: string;
  filter: string;
  peer: string;
  open: boolean;
  delivered: number;
  dropped: ServerClientDrops;
  queueDepth: number;
  latencyUs: { p50: number; p90: number; p99: number; p999: number; max: number };
}

export interface ServerStats {
  uptimeSec: number;
  /** Encoder output slabs: encoded events live there until every client queue that holds them has written them. */
  outputSlabs: { slabs: number; slabBytes: number; inUse: number };
  ingest: Record<string, { events: number; dropped: { ring_full: number; malformed_input: number } }>;
  dropped: { ring_full: number; malformed_input: number; throttled: number };
  clients: ServerClientStats[];
}

type Json = Record<string, unknown>;

function obj(v: unknown): Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : {};
}

function num(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : 0;
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : typeof v === 'number' ? String(v) : '';
}

export function parseServerStats(body: unknown): ServerStats {
  const root = obj(body);
  const ingest: ServerStats['ingest'] = {};
  for (const [source, v] of Object.entries(obj(root.ingest))) {
    const d = obj(obj(v).dropped);
    ingest[source] = { events: num(obj(v).events), dropped: { ring_full: num(d.ring_full), malformed_input: num(d.malformed_input) } };
  }
  const dropped = obj(root.dropped);
  const clients = Array.isArray(root.clients) ? root.clients : [];
  const slabs = obj(obj(root.encoded).outputSlabs);
  return {
    uptimeSec: num(root.uptimeSec),
    outputSlabs: { slabs: num(slabs.slabs), slabBytes: num(slabs.slabBytes), inUse: num(slabs.inUse) },
    ingest,
    dropped: { ring_full: num(dropped.ring_full), malformed_input: num(dropped.malformed_input), throttled: num(dropped.throttled) },
    clients: clients.map((c: unknown) => {
      const o = obj(c);
      const d = obj(o.dropped);
      const l = obj(o.latencyUs);
      return {
        id: str(o.id),
        name: str(o.name),
        stream: str(o.stream),
        filter: str(o.filter),
        peer: str(o.peer),
        open: o.open === true,
        delivered: num(o.delivered),
        dropped: { client_queue_full: num(d.client_queue_full), throttled: num(d.throttled), filtered: num(d.filtered) },
        queueDepth: num(o.queueDepth),
        latencyUs: { p50: num(l.p50), p90: num(l.p90), p99: num(l.p99), p999: num(l.p999), max: num(l.max) },
      };
    }),
  };
}

/** Fetches /stats; undefined when the endpoint does not answer with JSON (not armorfeed, or gone). */
export async function fetchServerStats(url: string, timeoutMs = 2000): Promise<ServerStats | undefined> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    if (!res.ok) return undefined;
    return parseServerStats(await res.json());
  } catch {
    return undefined;
  }
}

/** The stats entries of one load client (matched by name, one per stream). */
export function entriesFor(stats: ServerStats, name: string): ServerClientStats[] {
  return stats.clients.filter((c) => c.name === name);
}

/** Total unattributable drops the broker counted before fan-out. */
export function ingestTotals(stats: ServerStats): { events: number; ringFull: number; malformed: number } {
  let events = 0;
  for (const v of Object.values(stats.ingest)) events += v.events;
  return { events, ringFull: stats.dropped.ring_full, malformed: stats.dropped.malformed_input };
}

/** Output-slab bytes in use and events queued for the named clients, at the time of `stats`. */
export function heldByBroker(stats: ServerStats, names: string[]): { slabBytesInUse: number; slabBytesTotal: number; queuedEvents: number } {
  const wanted = new Set(names);
  let queuedEvents = 0;
  for (const c of stats.clients) if (wanted.has(c.name)) queuedEvents += c.queueDepth;
  return { slabBytesInUse: stats.outputSlabs.inUse * stats.outputSlabs.slabBytes, slabBytesTotal: stats.outputSlabs.slabs * stats.outputSlabs.slabBytes, queuedEvents };
}
