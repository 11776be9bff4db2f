/**
 * Messages between the main thread and an ingest thread (`source.worker.ts`).
 * Events themselves never travel here: they go through the ring.
 */
import type { SourceKind, WhenFull } from '../config';
import type { ErrorCode } from '../errors';

export interface SourceWorkerData {
  kind: Exclude<SourceKind, 'none'>;
  name: string;
  ring: SharedArrayBuffer;
  maxEventBytes: number;
  /** A full ring: wait for room (the source stops reading) or drop and count. */
  whenFull: WhenFull;
  maxConnections: number;
  frameTimeoutMs: number;
  idleTimeoutMs: number;
  bufferedBytes: number;
  socket: string;
  /** Permission bits of the socket file. */
  socketMode: number;
  /** Group of the socket file; -1 keeps the process's own. */
  socketGid: number;
  tcp: string;
  jsonl: string;
  follow: boolean;
  rate: number;
  count: number;
  alertEvery: number;
  cluster: string;
  host: string;
  /** Synthetic and jsonl: wait for a `start` message (--wait-clients) before generating or reading. */
  gated: boolean;
}

export type ToSource = { type: 'start' } | { type: 'stop' };

export type FromSource =
  | { type: 'ready'; address: string }
  | { type: 'rejected'; code: string; reason: string; message: string; peer: string }
  | { type: 'disconnected'; peer: string; code: string; message: string }
  | { type: 'finished'; events: number; elapsedMs: number }
  | { type: 'rotated'; path: string; how: 'renamed' | 'truncated' }
  | { type: 'fatal'; code: ErrorCode; message: string }
  | { type: 'stopped' };
