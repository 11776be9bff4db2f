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
import * as crypto from 'node:crypto';
import type { IngestEvent } from '../event/schema';
import { formatUpdatedTime } from '../wire/time';

export type EventKind = 'alert' | 'log';

interface Workload {
  namespace: string;
  pod: string;
  labels: string;
  containerName: string;
  image: string;
  owner: string;
  cwd: string;
  uid: number;
  containerID: string;
}

interface Operation {
  operation: string;
  resource: string;
  data: string;
  process: string;
  parent: string;
  policy: string;
  message: string;
}

function containerIdFor(pod: string): string {
  return crypto.createHash('sha256').update(pod).digest('hex');
}

const workloads: Workload[] = [
  ['wordpress-mysql', 'wordpress-7c966b5d85-42jwr', 'wordpress', 'docker.io/library/wordpress:6.4-apache', '/var/www/html/', 33],
  ['wordpress-mysql', 'mysql-76ddc6ddc4-h47hv', 'mysql', 'docker.io/library/mysql:8.0.35', '/var/lib/mysql/', 999],
  ['default', 'nginx-8f458dc5b-d9cqs', 'nginx', 'docker.io/library/nginx:1.25.3', '/usr/share/nginx/', 101],
].map(([namespace, pod, app, image, cwd, uid]) => ({
  namespace: namespace as string,
  pod: pod as string,
  labels: `app=${app as string}`,
  containerName: app as string,
  image: image as string,
  owner: app as string,
  cwd: cwd as string,
  uid: uid as number,
  containerID: containerIdFor(pod as string),
}));

const alertOperations: Operation[] = [
  {
    operation: 'Process', resource: '/usr/bin/apt-get update', data: 'syscall=SYS_EXECVE',
    process: '/usr/bin/apt-get', parent: '/bin/bash', policy: 'ksp-block-pkg-mgmt-tools-exec',
    message: 'Alert! Execution of package management process inside container is denied',
  },
  {
    operation: 'File', resource: '/etc/shadow', data: 'syscall=SYS_OPENAT fd=-100 flags=O_RDONLY',
    process: '/usr/bin/cat', parent: '/bin/bash', policy: 'ksp-block-sensitive-file-read',
    message: 'Alert! Read access to sensitive credential file is denied',
  },
  {
    operation: 'Network', resource: 'domain=AF_INET type=SOCK_RAW protocol=1', data: 'syscall=SYS_SOCKET',
    process: '/usr/bin/ping', parent: '/bin/bash', policy: 'ksp-block-raw-icmp-sockets',
    message: 'Alert! Raw ICMP socket creation inside container is denied',
  },
];

const logOperations: Operation[] = [
  { operation: 'Process', resource: '/usr/bin/ls -la', data: 'syscall=SYS_EXECVE', process: '/usr/bin/ls', parent: '/bin/bash', policy: '', message: '' },
  {
    operation: 'File', resource: '/etc/ld.so.cache', data: 'syscall=SYS_OPENAT fd=-100 flags=O_RDONLY',
    process: '/usr/bin/ls', parent: '/bin/bash', policy: '', message: '',
  },
  {
    operation: 'Network', resource: 'remoteip=10.96.0.10 port=53 protocol=UDP', data: 'syscall=SYS_CONNECT',
    process: '/usr/bin/curl', parent: '/bin/bash', policy: '', message: '',
  },
];

/** Sequence numbers start at 1: proto3 omits a zero HostPID, so seq 0 could not be read back. */
export const firstSeq = 1;

/** The kind of event `seq` is, so producer and subscribers agree on what each stream should get. */
export function kindOfSeq(seq: number, alertEvery: number): EventKind {
  return alertEvery > 0 && seq % alertEvery === 0 ? 'alert' : 'log';
}

/** Builds event `seq`, stamped with `nowMicros` as UpdatedTime (and its second as Timestamp). */
export function buildEvent(seq: number, kind: EventKind, nowMicros: number): IngestEvent {
  const w = workloads[Math.floor(seq / 3) % workloads.length];
  const op = (kind === 'alert' ? alertOperations : logOperations)[seq % 3];
  const pid = 100 + (seq % 900);
  const common: IngestEvent = {
    timestamp: Math.floor(nowMicros / 1e6),
    updatedTime: formatUpdatedTime(nowMicros),
    clusterName: 'default',
    hostName: 'k8s-worker-02',
    namespaceName: w.namespace,
    owner: { ref: 'Deployment', name: w.owner, namespace: w.namespace },
    podName: w.pod,
    labels: w.labels,
    containerID: w.containerID,
    containerName: w.containerName,
    containerImage: w.image,
    hostPPid: 20000 + (seq % 40000),
    hostPid: seq,
    ppid: pid - 9,
    pid,
    uid: w.uid,
    execEvent: {},
    parentProcessName: op.parent,
    processName: op.process,
    source: '/bin/bash',
    operation: op.operation,
    resource: op.resource,
    cwd: w.cwd,
    data: `${op.data} seq=${seq}`,
  };
  if (kind === 'log') return { ...common, type: 'ContainerLog', result: 'Passed' };
  return {
    ...common,
    type: 'MatchedPolicy',
    policyName: op.policy,
    severity: '5',
    tags: 'NIST,CIS',
    atags: ['NIST', 'CIS'],
    message: op.message,
    enforcer: 'BPFLSM',
    action: 'Block',
    result: 'Permission denied',
  };
}
