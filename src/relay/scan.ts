/**
 * A top-level protobuf wire walk over one Alert, Log or Message as it arrived from an
 * upstream feeder: it finds the few string fields the relay routes on (HostName, and for
 * server-side filters NamespaceName, Operation, Type) without decoding the event. The
 * bytes are forwarded as they are; this only reads them.
 *
 * Cost: one pass over the top-level tags (about 35 per event), skipping every value by
 * its length; strings are decoded only for the wanted fields.
 *
 * Field numbers come from the .proto (wire/proto.ts loads it); they are looked up once
 * here so the walk itself compares small integers.
 */
import { feederTypes } from '../wire/proto';

export type EventKind = 'alerts' | 'logs' | 'messages';

/** What the walk reads, as slots of `EventFields`. */
export const FIELD_HOST = 0;
export const FIELD_NAMESPACE = 1;
export const FIELD_OPERATION = 2;
export const FIELD_TYPE = 3;
const SLOTS = 4;

/** Offsets (start, end) of each wanted field in the buffer, or -1 when absent. */
export type EventFields = Int32Array;

export function newEventFields(): EventFields {
  return new Int32Array(SLOTS * 2);
}

/** Field number -> slot, per kind (index = field number; -1 = not wanted). */
const slotTables = new Map<EventKind, Int8Array>();

function slotTable(kind: EventKind): Int8Array {
  let table = slotTables.get(kind);
  if (table !== undefined) return table;
  const t = feederTypes();
  const type = kind === 'alerts' ? t.Alert : kind === 'logs' ? t.Log : t.Message;
  const id = (name: string): number => type.fields[name]?.id ?? -1;
  table = new Int8Array(64).fill(-1);
  const wanted: [string, number][] = [['HostName', FIELD_HOST], ['NamespaceName', FIELD_NAMESPACE], ['Operation', FIELD_OPERATION], ['Type', FIELD_TYPE]];
  for (const [name, slot] of wanted) {
    const n = id(name);
    if (n > 0 && n < table.length) table[n] = slot;
  }
  slotTables.set(kind, table);
  return table;
}

/**
 * Walks `buf[start, end)`; fills `out` with each wanted field's offsets (the last
 * occurrence wins, as in proto3). Returns false when the bytes are not a well-formed
 * sequence of top-level fields (a truncated varint or length, a group, a bad wire type).
 */
export function scanEvent(kind: EventKind, buf: Uint8Array, start: number, end: number, out: EventFields): boolean {
  const table = slotTable(kind);
  out.fill(-1);
  let p = start;
  while (p < end) {
    // Tag: field number and wire type, a varint (field numbers here are small).
    let tag = 0;
    let shift = 0;
    let b: number;
    do {
      if (p >= end || shift > 28) return false;
      b = buf[p++];
      tag |= (b & 0x7f) << shift;
      shift += 7;
    } while (b & 0x80);
    const field = tag >>> 3;
    switch (tag & 7) {
      case 0: // varint: skip up to 10 bytes
        for (let i = 0; ; i++) {
          if (p >= end || i >= 10) return false;
          if ((buf[p++] & 0x80) === 0) break;
        }
        break;
      case 1:
        p += 8;
        break;
      case 5:
        p += 4;
        break;
      case 2: {
        let len = 0;
        shift = 0;
        do {
          if (p >= end || shift > 28) return false;
          b = buf[p++];
          len += (b & 0x7f) * 2 ** shift;
          shift += 7;
        } while (b & 0x80);
        const valueStart = p;
        p += len;
        if (p > end) return false;
        const slot = field < table.length ? table[field] : -1;
        if (slot >= 0) {
          out[slot * 2] = valueStart;
          out[slot * 2 + 1] = p;
        }
        break;
      }
      default:
        return false;
    }
    if (field === 0) return false;
  }
  return p === end;
}

/** The string in slot `slot` of a scan, '' when the field was absent. */
export function fieldString(buf: Buffer, fields: EventFields, slot: number): string {
  const s = fields[slot * 2];
  return s < 0 ? '' : buf.toString('utf8', s, fields[slot * 2 + 1]);
}
