/** Messages between the main thread (thread.ts) and the export thread (export.worker.ts). */
import type { ErrorCode } from '../errors';
import type { ExportSettings, ExportState } from './exporter';
import type { ExportStreamKind } from './subjects';

export type ToExportThread =
  /** Starts an Exporter `id`, whose counters go to `cell` (statsCell.ts). */
  | { type: 'open'; id: number; settings: ExportSettings; nodeId: string; cell: SharedArrayBuffer; waitMs: number }
  /** Events of one stream: bytes[starts[i], ends[i]) numbered seqs[i] (buffers transferred). */
  | { type: 'offer'; id: number; kind: ExportStreamKind; bytes: Uint8Array; starts: Uint32Array; ends: Uint32Array; seqs: Float64Array }
  /** Closes Exporter `id`; `last` when no other is open (the thread may stop its timer). */
  | { type: 'close'; id: number; last: boolean };

export type FromExportThread =
  | { type: 'log'; level: 'info' | 'warn' | 'error'; text: string }
  /** started() settled: ready or serving without NATS for now; or a start-stopping error. */
  | { type: 'started'; id: number; error?: { code: ErrorCode | undefined; message: string } }
  /** The connection state or the last error changed. */
  | { type: 'status'; id: number; state: ExportState; server: string; lastError: string }
  /** close() finished: the cell holds the final counts. */
  | { type: 'closed'; id: number };
