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
import type { IngestEvent } from '../event/schema';
import { syntheticEvent } from '../ingest/synthetic';

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
