/**
 * The reference encoder: builds pb.Alert / pb.Log objects from a decoded ingest event
 * with upstream's field rules (kubearmor-wire.md 2.5), for protobufjs to encode. It is
 * the oracle the byte-level transcoder (src/encode/transcode.ts) is checked against
 * (test/transcode.test.ts) and the baseline of `npm run bench`'s encode stage; the
 * feeder itself never runs it. Only non-empty values are set, as Go's proto3 encoder
 * writes no zero values, except ExecEvent, which upstream always sends.
 */
import type { AlertMessage, EventCommon, LogMessage } from '../../src/wire/proto';
import { alertTypes, type IngestEvent } from '../../src/event/schema';
import {
  defaultTimestamp,
  defaultUpdatedTime,
  ENFORCER_BY_OPERATION,
  FIREWALL_ALERT_TYPE,
  FIREWALL_OPERATION,
  NETWORK_OPERATION,
  NO_SEVERITY,
  PROCESS_OPERATION,
  type EventContext,
} from '../../src/event/rules';

// Invalid UTF-8 reaches JS as U+FFFD (msgpack) or as lone surrogates (JSON escapes);
// upstream deletes invalid bytes from Resource, so both are deleted here.
const invalidUnicode = /\uFFFD|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

export function toValidUtf8(s: string): string {
  return s.replace(invalidUnicode, '');
}

function addPairs(into: Record<string, string>, text: string): number {
  let added = 0;
  for (const token of text.split(/\s+/)) {
    const eq = token.indexOf('=');
    if (eq <= 0) continue;
    const key = token[0].toUpperCase() + token.slice(1, eq);
    into[key] = token.slice(eq + 1);
    added++;
  }
  return added;
}

/**
 * EventData as upstream derives it: `k=v` tokens of Data, keys capitalised; for
 * Network events the pairs of Resource are merged over them. Undefined when none.
 */
export function deriveEventData(data: string, resource: string, operation: string): Record<string, string> | undefined {
  const out: Record<string, string> = {};
  let n = data === '' ? 0 : addPairs(out, data);
  if (operation === NETWORK_OPERATION && resource !== '') n += addPairs(out, resource);
  return n > 0 ? out : undefined;
}

function setIf<T extends object, K extends keyof T>(target: T, key: K, value: T[K] | undefined): void {
  if (value !== undefined && value !== '' && value !== 0) target[key] = value;
}

function fillCommon(e: IngestEvent, ctx: EventContext, ingestedUs: number, out: EventCommon, isAlertEvent: boolean): void {
  setIf(out, 'Timestamp', e.timestamp ?? defaultTimestamp(e.updatedTime ?? '', ingestedUs));
  setIf(out, 'UpdatedTime', e.updatedTime !== undefined && e.updatedTime !== '' ? e.updatedTime : defaultUpdatedTime(e.timestamp, ingestedUs));
  setIf(out, 'ClusterName', e.clusterName !== undefined && e.clusterName !== '' ? e.clusterName : ctx.cluster);
  setIf(out, 'HostName', e.hostName !== undefined && e.hostName !== '' ? e.hostName : ctx.host);
  setIf(out, 'NamespaceName', e.namespaceName);
  setIf(out, 'PodName', e.podName);
  setIf(out, 'ContainerID', e.containerID);
  setIf(out, 'ContainerName', e.containerName);
  setIf(out, 'HostPID', e.hostPid);
  setIf(out, 'PPID', e.ppid);
  setIf(out, 'PID', e.pid);
  setIf(out, 'UID', e.uid);
  const operation = e.operation ?? '';
  let type = e.type ?? '';
  // Upstream rewrites any alert whose Operation is NetworkFirewall to MatchedNetworkPolicy.
  if (isAlertEvent && operation === FIREWALL_OPERATION) type = FIREWALL_ALERT_TYPE;
  setIf(out, 'Type', type);
  setIf(out, 'Source', e.source);
  setIf(out, 'Operation', operation);
  const resource = toValidUtf8(e.resource ?? '');
  if (!(!isAlertEvent && ctx.dropResourceFromProcessLogs && operation === PROCESS_OPERATION)) setIf(out, 'Resource', resource);
  setIf(out, 'Data', e.data);
  setIf(out, 'Result', e.result);
  setIf(out, 'ContainerImage', e.containerImage);
  setIf(out, 'ParentProcessName', e.parentProcessName);
  setIf(out, 'ProcessName', e.processName);
  setIf(out, 'HostPPID', e.hostPPid);
  setIf(out, 'Labels', e.labels);
  const o = e.owner;
  if (o !== undefined && o !== null && ((o.ref ?? '') !== '' || (o.name ?? '') !== '' || (o.namespace ?? '') !== '')) {
    const owner: { Ref?: string; Name?: string; Namespace?: string } = {};
    setIf(owner, 'Ref', o.ref);
    setIf(owner, 'Name', o.name);
    setIf(owner, 'Namespace', o.namespace);
    out.Owner = owner;
  }
  setIf(out, 'Cwd', e.cwd);
  setIf(out, 'TTY', e.tty);
  const exec: { ExecID?: string; ExecutableName?: string } = {};
  if (e.execEvent !== undefined) {
    setIf(exec, 'ExecID', e.execEvent.ExecID);
    setIf(exec, 'ExecutableName', e.execEvent.ExecutableName);
  }
  out.ExecEvent = exec;
  // An explicit empty nodeID means "none"; only an absent one is filled from machine-id.
  setIf(out, 'NodeID', e.nodeID === undefined ? ctx.nodeID : e.nodeID);
  setIf(out, 'ProcessHash', e.processHash);
  setIf(out, 'ParentHash', e.parentHash);
  setIf(out, 'ResourceHash', e.resourceHash);
  setIf(out, 'HashAlgo', e.hashAlgo);
  // A source may hand EventData over already derived (even empty, to send none).
  const eventData = e.eventData === undefined ? deriveEventData(e.data ?? '', resource, operation) : (e.eventData ?? undefined);
  if (eventData !== undefined && Object.keys(eventData).length > 0) out.EventData = eventData;
  setIf(out, 'UserName', e.username);
}

export function toAlert(e: IngestEvent, ctx: EventContext, ingestedUs: number): AlertMessage {
  const out: AlertMessage = {};
  fillCommon(e, ctx, ingestedUs, out, true);
  setIf(out, 'PolicyName', e.policyName);
  if (e.severity !== undefined && e.severity !== NO_SEVERITY) setIf(out, 'Severity', e.severity);
  if (e.tags !== undefined && e.tags !== '') {
    out.Tags = e.tags;
    out.ATags = e.tags.split(',');
  }
  setIf(out, 'Message', e.message);
  setIf(out, 'Action', e.action);
  setIf(out, 'Enforcer', ENFORCER_BY_OPERATION.get(e.operation ?? '') ?? e.enforcer);
  setIf(out, 'MaxAlertsPerSec', e.MaxAlertsPerSec);
  setIf(out, 'DroppingAlertsInterval', e.DroppingAlertsInterval);
  setIf(out, 'KubeArmorVersion', e.kubeArmorVersion);
  return out;
}

export function toLog(e: IngestEvent, ctx: EventContext, ingestedUs: number): LogMessage {
  const out: LogMessage = {};
  fillCommon(e, ctx, ingestedUs, out, false);
  return out;
}

/** True when the event goes to WatchAlerts (upstream routes on Type alone). */
export function isAlert(event: IngestEvent): boolean {
  return event.type !== undefined && alertTypes.has(event.type);
}
