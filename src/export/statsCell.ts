/**
 * The export thread's counters, shared with the main thread in a SharedArrayBuffer: the
 * thread writes a whole snapshot under a sequence lock, the main thread reads one without
 * a message round trip (for /stats, the metrics, the export's admission and flush).
 *
 *   Int32 [0]      version: odd while the writer is writing, bumped once before and after
 *   Float64 [1..]  EXPORT_CELL_FIELDS in order
 *
 * A reader copies the fields and keeps the copy only if the version was even and did not
 * change meanwhile, so a snapshot is never half old, half new: the accounting identity
 * (offered = acked + dropped + held) holds within every snapshot read.
 */

export const EXPORT_CELL_FIELDS = [
  /** Events the thread received from the main thread (taken or refused there). */
  'received',
  'receivedBytes',
  'offered',
  'published',
  'retries',
  'acked',
  'duplicates',
  'lateAcks',
  'ackTimeouts',
  'unavailable',
  'export_buffer_full',
  'export_rejected',
  'export_timeout',
  'export_shutdown',
  'bufferedEvents',
  'bufferedBytes',
  'inFlight',
  'connects',
  'disconnects',
] as const;

export type ExportCellField = (typeof EXPORT_CELL_FIELDS)[number];
export type ExportCellValues = Record<ExportCellField, number>;

/** Bytes of one cell: the version slot padded to 8, then the fields. */
export const EXPORT_CELL_BYTES = 8 + 8 * EXPORT_CELL_FIELDS.length;

const READ_TRIES = 1000;

export class ExportStatsCell {
  private readonly version: Int32Array;
  private readonly values: Float64Array;

  constructor(readonly buffer: SharedArrayBuffer) {
    this.version = new Int32Array(buffer, 0, 1);
    this.values = new Float64Array(buffer, 8, EXPORT_CELL_FIELDS.length);
  }

  static create(): ExportStatsCell {
    return new ExportStatsCell(new SharedArrayBuffer(EXPORT_CELL_BYTES));
  }

  /** The writer's side (the export thread only). */
  write(v: ExportCellValues): void {
    Atomics.add(this.version, 0, 1);
    for (let i = 0; i < EXPORT_CELL_FIELDS.length; i++) this.values[i] = v[EXPORT_CELL_FIELDS[i]];
    Atomics.add(this.version, 0, 1);
  }

  /** A consistent snapshot. A writer cannot hold the lock for long (it copies some twenty numbers), so the retries end. */
  read(): ExportCellValues {
    const out = {} as ExportCellValues;
    for (let tries = 0; ; tries++) {
      const before = Atomics.load(this.version, 0);
      for (let i = 0; i < EXPORT_CELL_FIELDS.length; i++) out[EXPORT_CELL_FIELDS[i]] = this.values[i];
      const after = Atomics.load(this.version, 0);
      if ((before & 1) === 0 && before === after) return out;
      // A writer descheduled mid-write: give it a moment rather than spin on a core it needs.
      if (tries >= READ_TRIES) Atomics.wait(this.version, 0, after, 1);
    }
  }
}
