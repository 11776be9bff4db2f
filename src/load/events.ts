/**
 * Synthetic KubeArmor events for the producer, shaped like the feeder's real output
 * (and like gofeeder's source, so figures compare): three workloads rotating over
 * Process, File and Network. Alerts are BPFLSM blocks (about 570 bytes as pb.Alert),
 * logs are ContainerLog (about 420 bytes as pb.Log).
 *
 * Every event carries its sequence number twice: in `hostPid` (read back from the
 * gRPC HostPID field without a full decode) and as `seq=N` in `data` (the broker
 * turns it into EventData {Seq: N}). Alerts use action Block with enforcer BPFLSM,
 * which upstream never throttles (kubearmor-wire.md 2.6), so throttling cannot
 * blur the loss figures.
 */
import type { IngestEvent } from '../event';
import { putU32BE, syntheticEvent, TemplateStamper } from '../ingest/synthetic';

export type EventKind = 'alert' | 'log';

/** Sequence numbers start at 1: proto3 omits a zero HostPID, so seq 0 could not be read back. */
export const firstSeq = 1;

/** The kind of event `seq` is, so producer and subscribers agree on what each stream should get. */
export function kindOfSeq(seq: number, alertEvery: number): EventKind {
  return alertEvery > 0 && seq % alertEvery === 0 ? 'alert' : 'log';
}

/**
 * Builds event `seq`, stamped with `nowMicros` as UpdatedTime (and its second as Timestamp):
 * the synthetic source's event of the same kind and index, carrying the sequence number,
 * and with NodeID and EventData left for the broker to fill as it would for any producer.
 */
export function buildEvent(seq: number, kind: EventKind, nowMicros: number): IngestEvent {
  const event = syntheticEvent(seq, nowMicros, { cluster: 'default', host: 'k8s-worker-02', alertEvery: kind === 'alert' ? 1 : 0 });
  delete event.nodeID;
  delete event.eventData;
  event.hostPid = seq;
  event.hostPPid = 20000 + (seq % 40000);
  event.data = `${event.data ?? ''} seq=${seq}`;
  if (kind === 'alert') event.atags = ['NIST', 'CIS'];
  return event;
}

/** Digits of the sequence number in a frame's `data` (`seq=0000000042`): fixed, so frames are patched in place. */
const seqDigits = 10;

interface FrameTemplate {
  bytes: Uint8Array;
  hostPid: number;
  hostPPid: number;
  pid: number;
  ppid: number;
  ts: number;
  ut: number;
  seq: number;
}

/**
 * buildEvent's events as msgpack without building objects: one template per (kind,
 * workload, operation), packed once with fixed-width placeholders, patched per event
 * (hostPid = seq, the other pids, Timestamp, UpdatedTime and the seq digits in `data`).
 * The only difference from packing buildEvent: `seq=` in data has 10 digits, zero-padded.
 * Building a frame is then a copy and a few stores (about 1 µs instead of about 11).
 */
export class LoadFrames {
  private readonly templates = new Map<number, FrameTemplate>();
  private readonly stamper = new TemplateStamper();

  constructor(private readonly pack: (value: unknown) => Uint8Array) {}

  private keyOf(seq: number, kind: EventKind): number {
    return (kind === 'alert' ? 9 : 0) + (Math.floor(seq / 3) % 3) * 3 + (seq % 3);
  }

  private template(seq: number, kind: EventKind): FrameTemplate {
    const key = this.keyOf(seq, kind);
    const cached = this.templates.get(key);
    if (cached !== undefined) return cached;
    const PID = 0x7ffffff0;
    const TS = 0xfffffff0;
    const UT = 'U'.repeat(27);
    const SEQ = 'S'.repeat(seqDigits);
    const e = buildEvent(seq, kind, 0);
    e.data = `${(e.data ?? '').replace(/ seq=\d+$/, '')} seq=${SEQ}`;
    Object.assign(e, { timestamp: TS, updatedTime: UT, hostPPid: PID, hostPid: PID + 1, ppid: PID + 2, pid: PID + 3 });
    const bytes = Uint8Array.from(this.pack(e));
    const find = (needle: number[]): number => {
      outer: for (let p = 0; p + needle.length <= bytes.length; p++) {
        for (let j = 0; j < needle.length; j++) if (bytes[p + j] !== needle[j]) continue outer;
        return p;
      }
      throw new Error('load frame template: placeholder not found');
    };
    const u32 = (v: number): number[] => [0xce, v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255];
    const t: FrameTemplate = {
      bytes,
      hostPPid: find(u32(PID)) + 1,
      hostPid: find(u32(PID + 1)) + 1,
      ppid: find(u32(PID + 2)) + 1,
      pid: find(u32(PID + 3)) + 1,
      ts: find(u32(TS)) + 1,
      ut: find([0xa0 | 27, ...Buffer.from(UT)]) + 1,
      seq: find([...Buffer.from(`seq=${SEQ}`)]) + 4,
    };
    this.templates.set(key, t);
    return t;
  }

  /** Size of event `seq`'s frame body (without the 4-byte length). */
  size(seq: number, kind: EventKind): number {
    return this.template(seq, kind).bytes.length;
  }

  /** Event `seq` as msgpack, stamped `nowUs`: a view valid until the next call. */
  frame(seq: number, kind: EventKind, nowUs: number): Uint8Array {
    const t = this.template(seq, kind);
    const b = t.bytes;
    const pid = 100 + (seq % 900);
    putU32BE(b, t.hostPid, seq);
    putU32BE(b, t.hostPPid, 20000 + (seq % 40000));
    putU32BE(b, t.pid, pid);
    putU32BE(b, t.ppid, pid - 9);
    this.stamper.stamp(b, t.ts, t.ut, nowUs);
    let v = seq;
    for (let k = seqDigits - 1; k >= 0; k--) {
      b[t.seq + k] = 0x30 + (v % 10);
      v = Math.floor(v / 10);
    }
    return b;
  }
}
