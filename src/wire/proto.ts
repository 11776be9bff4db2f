/**
 * The wire contract, loaded from proto/kubearmor.proto with protobufjs. Both the
 * main thread and the encoder workers import this module, so field numbers are
 * defined once (in the .proto) and never repeated in code.
 */
import * as path from 'node:path';
import * as protobuf from 'protobufjs';

/** Absolute path of the .proto file shipped with the package. */
export const protoPath = path.resolve(__dirname, '../../../proto/kubearmor.proto');

export interface Podowner {
  Ref?: string;
  Name?: string;
  Namespace?: string;
}

export interface ExecEvent {
  ExecID?: string;
  ExecutableName?: string;
}

/** Fields common to Alert and Log, as protobufjs objects (proto3 field names). */
export interface EventCommon {
  Timestamp?: number;
  UpdatedTime?: string;
  ClusterName?: string;
  HostName?: string;
  NamespaceName?: string;
  PodName?: string;
  ContainerID?: string;
  ContainerName?: string;
  HostPID?: number;
  PPID?: number;
  PID?: number;
  UID?: number;
  Type?: string;
  Source?: string;
  Operation?: string;
  Resource?: string;
  Data?: string;
  Result?: string;
  ContainerImage?: string;
  ParentProcessName?: string;
  ProcessName?: string;
  HostPPID?: number;
  Labels?: string;
  Owner?: Podowner;
  Cwd?: string;
  TTY?: string;
  ExecEvent?: ExecEvent;
  NodeID?: string;
  ProcessHash?: string;
  ParentHash?: string;
  ResourceHash?: string;
  HashAlgo?: string;
  EventData?: Record<string, string>;
  UserName?: string;
}

export interface AlertMessage extends EventCommon {
  PolicyName?: string;
  Severity?: string;
  Tags?: string;
  ATags?: string[];
  Message?: string;
  Action?: string;
  Enforcer?: string;
  MaxAlertsPerSec?: number;
  DroppingAlertsInterval?: number;
  KubeArmorVersion?: string;
}

export type LogMessage = EventCommon;

export interface DaemonMessage {
  Timestamp?: number;
  UpdatedTime?: string;
  ClusterName?: string;
  HostName?: string;
  HostIP?: string;
  Type?: string;
  Level?: string;
  Message?: string;
}

export interface FeederTypes {
  root: protobuf.Root;
  Alert: protobuf.Type;
  Log: protobuf.Type;
  Message: protobuf.Type;
  NonceMessage: protobuf.Type;
  ReplyMessage: protobuf.Type;
  RequestMessage: protobuf.Type;
  LogService: protobuf.Service;
}

let cached: FeederTypes | undefined;

/** Loads (once per thread) and returns the feeder package's message types. */
export function feederTypes(): FeederTypes {
  if (cached !== undefined) return cached;
  const root = protobuf.loadSync(protoPath);
  root.resolveAll();
  cached = {
    root,
    Alert: root.lookupType('feeder.Alert'),
    Log: root.lookupType('feeder.Log'),
    Message: root.lookupType('feeder.Message'),
    NonceMessage: root.lookupType('feeder.NonceMessage'),
    ReplyMessage: root.lookupType('feeder.ReplyMessage'),
    RequestMessage: root.lookupType('feeder.RequestMessage'),
    LogService: root.lookupService('feeder.LogService'),
  };
  return cached;
}

/** The four RPC paths, exactly as upstream serves them. */
/** The three Watch* streams, by what they carry. */
export type StreamKind = 'alerts' | 'logs' | 'messages';
/** The two that carry events (pb.Alert, pb.Log). */
export type EventStreamKind = Exclude<StreamKind, 'messages'>;

export const rpcPath = {
  HealthCheck: '/feeder.LogService/HealthCheck',
  WatchMessages: '/feeder.LogService/WatchMessages',
  WatchAlerts: '/feeder.LogService/WatchAlerts',
  WatchLogs: '/feeder.LogService/WatchLogs',
} as const;

/** Filters each Watch* RPC accepts; any other value ends the stream at once with OK (upstream 2.2). */
export const acceptedFilters = {
  WatchAlerts: new Set(['all', 'policy']),
  WatchLogs: new Set(['all', 'system']),
} as const;

/** Request metadata keys of armorfeed's server-side filter extension; upstream servers ignore them. */
export const filterMetadataKeys = {
  namespace: 'x-armorfeed-namespace',
  operation: 'x-armorfeed-operation',
  logType: 'x-armorfeed-logtype',
  /** Node names (comma-separated), matched exactly against each event's HostName (all three streams). */
  node: 'x-armorfeed-node',
  /** Optional client name used as the `client` label in metrics and summaries. */
  clientName: 'x-armorfeed-client',
  /** Replay from a relay on JetStream: events since this RFC 3339 time, then live. */
  since: 'x-armorfeed-since',
  /** Replay from a relay on JetStream: events after this stream sequence, then live. */
  afterSeq: 'x-armorfeed-after-seq',
} as const;
