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
import { headers, type MsgHdrs } from '@nats-io/transport-node';

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

/** The headers of one publish; the same for every retry of the event, so JetStream deduplicates them. */
export function exportHeaders(nodeId: string, stream: ExportStreamKind, seq: number, updatedTime: string): MsgHdrs {
  const h = headers();
  h.set(HEADER_MSG_ID, msgId(nodeId, stream, seq));
  h.set(HEADER_NODE_ID, nodeId);
  h.set(HEADER_SEQ, String(seq));
  if (updatedTime !== '') h.set(HEADER_UPDATED_TIME, updatedTime);
  return h;
}
