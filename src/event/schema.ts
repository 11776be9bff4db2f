/**
 * The ingest schema: upstream's internal `tp.Log` keys (lowerCamelCase, as KubeArmor
 * writes them to `logPath`, kubearmor-wire.md 2.8). msgpack frames, JSON lines and the
 * embedded `push()` API all carry these keys. Order here is the order of upstream's
 * JSON output (inferred from the struct; see `logLine.ts`).
 */

export type FieldKind = 'string' | 'int' | 'strings' | 'owner' | 'execEvent' | 'stringMap';

/** Each ingest key, its kind, and whether upstream's JSON output always writes it. */
export const ingestFields = [
  ['timestamp', 'int', true],
  ['updatedTime', 'string', true],
  ['clusterName', 'string', false],
  ['hostName', 'string', true],
  ['nodeID', 'string', false],
  ['username', 'string', false],
  ['namespaceName', 'string', false],
  ['owner', 'owner', false],
  ['podName', 'string', false],
  ['labels', 'string', false],
  ['containerID', 'string', false],
  ['containerName', 'string', false],
  ['containerImage', 'string', false],
  ['hostPPid', 'int', true],
  ['hostPid', 'int', true],
  ['ppid', 'int', true],
  ['pid', 'int', true],
  ['uid', 'int', true],
  ['execEvent', 'execEvent', true],
  ['parentProcessName', 'string', true],
  ['processName', 'string', true],
  ['enforcer', 'string', false],
  ['policyName', 'string', false],
  ['kubeArmorVersion', 'string', false],
  ['severity', 'string', false],
  ['tags', 'string', false],
  ['atags', 'strings', true],
  ['message', 'string', false],
  ['type', 'string', true],
  ['source', 'string', true],
  ['operation', 'string', true],
  ['resource', 'string', true],
  ['cwd', 'string', true],
  ['tty', 'string', false],
  ['oid', 'int', true],
  ['data', 'string', false],
  ['eventData', 'stringMap', false],
  ['processHash', 'string', false],
  ['parentHash', 'string', false],
  ['resourceHash', 'string', false],
  ['hashAlgo', 'string', false],
  ['action', 'string', false],
  ['result', 'string', true],
  ['MaxAlertsPerSec', 'int', false],
  ['DroppingAlertsInterval', 'int', false],
] as const satisfies readonly (readonly [string, FieldKind, boolean])[];

export type IngestKey = (typeof ingestFields)[number][0];

/** An event as sources deliver it: every key optional. */
export interface IngestEvent {
  timestamp?: number;
  updatedTime?: string;
  clusterName?: string;
  hostName?: string;
  nodeID?: string;
  username?: string;
  namespaceName?: string;
  owner?: { ref?: string; name?: string; namespace?: string };
  podName?: string;
  labels?: string;
  containerID?: string;
  containerName?: string;
  containerImage?: string;
  hostPPid?: number;
  hostPid?: number;
  ppid?: number;
  pid?: number;
  uid?: number;
  execEvent?: { ExecID?: string; ExecutableName?: string };
  parentProcessName?: string;
  processName?: string;
  enforcer?: string;
  policyName?: string;
  kubeArmorVersion?: string;
  severity?: string;
  tags?: string;
  atags?: string[] | null;
  message?: string;
  type?: string;
  source?: string;
  operation?: string;
  resource?: string;
  cwd?: string;
  tty?: string;
  oid?: number;
  data?: string;
  eventData?: Record<string, string> | null;
  processHash?: string;
  parentHash?: string;
  resourceHash?: string;
  hashAlgo?: string;
  action?: string;
  result?: string;
  MaxAlertsPerSec?: number;
  DroppingAlertsInterval?: number;
}

/** Types routed to WatchAlerts (upstream 2.4); every other Type goes to WatchLogs. */
export const alertTypes: ReadonlySet<string> = new Set(['MatchedPolicy', 'MatchedHostPolicy', 'SystemEvent']);

/** Types upstream emits on WatchLogs; any other non-alert Type is rejected as unknown_type. */
export const logTypes: ReadonlySet<string> = new Set([
  'ContainerLog',
  'HostLog',
  'SystemLog',
  'MatchedNetworkPolicy',
]);
