/**
 * What an exported event is called in NATS: its subject, its Nats-Msg-Id and the
 * armorfeed headers beside it.
 *
 *   subject        <prefix>.<cluster>.<node>.alerts|logs|messages
 *   Nats-Msg-Id    <nodeId>.<stream>.<seq>        JetStream stores a retry once (duplicate window)
 *   Armorfeed-Node-Id   <nodeId>                  <host>@<start ms>-<4 hex>, one per run
 *   Armorfeed-Seq       <seq>                     1, 2, 3 ... per node run and stream, no gaps
 *   Armorfeed-Updated-Time  the event's UpdatedTime
 */
import { randomBytes } from 'node:crypto';
import { MsgHdrsImpl } from '@nats-io/transport-node';

export type ExportStreamKind = 'alerts' | 'logs' | 'messages';
export const exportStreamKinds: readonly ExportStreamKind[] = ['alerts', 'logs', 'messages'];

export const HEADER_MSG_ID = 'Nats-Msg-Id';
export const HEADER_NODE_ID = 'Armorfeed-Node-Id';
export const HEADER_SEQ = 'Armorfeed-Seq';
export const HEADER_UPDATED_TIME = 'Armorfeed-Updated-Time';

/**
 * One subject token from a cluster or node name: the characters NATS gives a meaning
 * (`.` separates tokens, `*` and `>` are wildcards) and whitespace or controls (which end a
 * subject on the wire) become `_`; an empty name becomes `_`.
 */
export function subjectToken(name: string): string {
  const token = name.replace(/[.*>\s\p{Cc}]/gu, '_');
  return token === '' ? '_' : token;
}

/** The three subjects of one node. */
export function subjectsFor(prefix: string, cluster: string, node: string): Record<ExportStreamKind, string> {
  const base = `${prefix}.${subjectToken(cluster)}.${subjectToken(node)}`;
  return { alerts: `${base}.alerts`, logs: `${base}.logs`, messages: `${base}.messages` };
}

/**
 * The node id of one run: the host name, the start time and 16 random bits. Sequences
 * restart at 1 with every run, so the id must differ between runs, or JetStream would take
 * a restarted node's first events for retries of the previous run's and drop them as
 * duplicates: the start time (ms) makes a restart differ, the random bits two feeders
 * started in the same millisecond under one host name (embedders, tests). A clock stepped
 * back onto the very millisecond of a run still inside the duplicate window would need the
 * same 16 bits too.
 */
export function makeNodeId(host: string, startMs: number = Date.now()): string {
  return `${subjectToken(host)}@${startMs}-${randomBytes(2).toString('hex')}`;
}

export function msgId(nodeId: string, stream: ExportStreamKind, seq: number): string {
  return `${nodeId}.${stream}.${seq}`;
}

const utf8 = new TextEncoder();

/**
 * A header block encoded once, as nats.js sends it ("NATS/1.0", then `Key: value` lines,
 * then an empty line). Building the same four headers through MsgHdrs.set costs ~3.8 us an
 * event on this machine (each set canonicalises the key and scans the others) against ~1 us
 * for this; at 20,000 events/s that is 6% of the main thread. The publish path of nats.js
 * reads a message's headers only through `encode()` (nats-core protocol.ts, pinned 3.4.0 in
 * package.json); test/export-nats.test.ts reads every header back and fails if that changes.
 */
export class PrebuiltHeaders extends MsgHdrsImpl {
  constructor(private readonly block: Uint8Array) {
    super();
  }

  override encode(): Uint8Array {
    return this.block;
  }
}

/** The headers of one publish; the same for every retry of the event, so JetStream deduplicates them. */
export function exportHeaders(nodeId: string, stream: ExportStreamKind, seq: number, updatedTime: string): PrebuiltHeaders {
  // Values cannot hold CR or LF: the node id is a subject token, the time comes from an
  // RFC 3339 field (checked below), the rest are digits and fixed names.
  const time = updatedTime !== '' && !/[\r\n]/.test(updatedTime) ? `${HEADER_UPDATED_TIME}: ${updatedTime}\r\n` : '';
  return new PrebuiltHeaders(
    utf8.encode(`NATS/1.0\r\n${HEADER_MSG_ID}: ${nodeId}.${stream}.${seq}\r\n${HEADER_NODE_ID}: ${nodeId}\r\n${HEADER_SEQ}: ${seq}\r\n${time}\r\n`),
  );
}
