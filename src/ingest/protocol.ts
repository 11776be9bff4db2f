/**
 * Messages between the main thread and an ingest thread (`source.worker.ts`).
 * Events themselves never travel here: they go through the ring.
 */
import type { FeederConfig, SourceKind, WhenFull } from '../config';
import type { ErrorCode } from '../errors';

/** The config keys an ingest thread reads as they are: its names and types are FeederConfig's. */
export const SOURCE_CONFIG_KEYS = [
  'maxEventBytes',
  'ingestMaxConnections',
  'ingestFrameTimeoutMs',
  'ingestIdleTimeoutMs',
  'ingestBufferedBytes',
  'socket',
  'tcp',
  'jsonl',
  'follow',
  'rate',
  'count',
  'alertEvery',
  'cluster',
  'host',
] as const satisfies readonly (keyof FeederConfig)[];

/**
 * What an ingest thread is started with: the config keys sources read, as the feeder
 * validated them, what the main thread derived from the others for this source, and its
 * own ring.
 */
export interface SourceWorkerData extends Pick<FeederConfig, (typeof SOURCE_CONFIG_KEYS)[number]> {
  kind: Exclude<SourceKind, 'none'>;
  name: string;
  ring: SharedArrayBuffer;
  /** A full ring: wait for room (the source stops reading) or drop and count (ingestWhenFull, for this source: whenFullFor). */
  whenFull: WhenFull;
  /** Permission bits of the socket file (socketMode, parsed: parseFileMode). */
  socketMode: number;
  /** Group of the socket file (socketGroup, resolved: socketGid); -1 keeps the process's own. */
  socketGid: number;
  /** Synthetic and jsonl: wait for a `start` message (--wait-clients) before generating or reading. */
  gated: boolean;
}

export type ToSource = { type: 'start' } | { type: 'stop' };

export type FromSource =
  | { type: 'ready'; address: string }
  | { type: 'rejected'; code: string; reason: string; message: string; peer: string }
  | { type: 'disconnected'; peer: string; code: string; message: string }
  /**
   * A source that ends (a file, stdin, a synthetic count) is done. `read`: lines read (not
   * counting blank ones) or events generated; of those, `events` went into the ring,
   * `rejected` were bad input (malformed_input) and `ringFull` found no room.
   */
  | { type: 'finished'; unit: 'lines read' | 'generated'; read: number; events: number; rejected: number; ringFull: number; elapsedMs: number }
  | { type: 'rotated'; path: string; how: 'renamed' | 'truncated' }
  | { type: 'fatal'; code: ErrorCode; message: string }
  | { type: 'stopped' };
