/**
 * Upstream's field rules (kubearmor-wire.md 2.5), written once. The encoders apply them
 * byte by byte (encode/transcode.ts), the logPath line applies the timestamp defaults
 * (logLine.ts), and the protobufjs reference in test/helpers/referenceEncoder.ts applies
 * them to objects as the oracle the transcoder is checked against.
 */
import { formatUpdatedTime, parseUpdatedTime } from '../wire/time';

/** Node-level values the feeder fills in (upstream: config cluster, node name, machine-id). */
export interface EventContext {
  cluster: string;
  host: string;
  nodeID: string;
  dropResourceFromProcessLogs: boolean;
}

/**
 * Upstream takes Timestamp and UpdatedTime together: when a source sends only
 * UpdatedTime, Timestamp is its second; when it sends neither, the arrival time's.
 * `updatedTime` '' counts as absent.
 */
export function defaultTimestamp(updatedTime: string, ingestedUs: number): number {
  const given = updatedTime === '' ? Number.NaN : parseUpdatedTime(updatedTime);
  return Math.floor((Number.isNaN(given) ? ingestedUs : given) / 1e6);
}

/** UpdatedTime when a source sends none: from Timestamp when it is sent, else the arrival time. */
export function defaultUpdatedTime(timestamp: number | undefined, ingestedUs: number): string {
  return formatUpdatedTime(timestamp !== undefined ? timestamp * 1e6 : ingestedUs);
}

/** Keys of the two sub-maps, in the order of their protobuf fields (Podowner, ExecEvent). */
export const OWNER_KEYS = ['ref', 'name', 'namespace'] as const;
export const EXEC_EVENT_KEYS = ['ExecID', 'ExecutableName'] as const;

/** Upstream rewrites any alert whose Operation is NetworkFirewall to this Type. */
export const FIREWALL_OPERATION = 'NetworkFirewall';
export const FIREWALL_ALERT_TYPE = 'MatchedNetworkPolicy';

/** Alerts whose Operation is one of these get this Enforcer, whatever they carried. */
export const ENFORCER_BY_OPERATION: ReadonlyMap<string, string> = new Map([
  ['NetworkFirewall', 'NetworkPolicyEnforcer'],
  ['Device', 'USBDeviceHandler'],
]);

/** Severity "0" means none: it is not sent. */
export const NO_SEVERITY = '0';

/** Process logs lose Resource under config dropResourceFromProcessLogs. */
export const PROCESS_OPERATION = 'Process';

/** Network events derive EventData from Resource as well as Data (Resource's pairs win). */
export const NETWORK_OPERATION = 'Network';
