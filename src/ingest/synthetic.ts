/**
 * Synthetic KubeArmor events with the shapes of the ../shared/peers gofeeder: three
 * workloads x Process/File/Network, alerts (MatchedPolicy, BPFLSM Block, 552-602
 * bytes encoded) and logs (ContainerLog, 386-452 bytes), a fresh event per call,
 * UpdatedTime and Timestamp taken together at generation. NodeID and EventData are
 * explicitly empty, as gofeeder leaves them unset, so the two are measured on equal
 * events.
 */
import { createHash } from 'node:crypto';
import { Packr } from 'msgpackr';
import type { IngestEvent } from '../event';
import { allocateRing, RingProducer } from '../ring';
import { formatUpdatedTime, nowMicros } from '../wire/time';

interface Workload {
  ns: string;
  pod: string;
  labels: string;
  cid: string;
  cname: string;
  image: string;
  ownerName: string;
  cwd: string;
  uid: number;
}

interface OpTemplate {
  operation: string;
  resource: string;
  data: string;
  process: string;
  parent: string;
  policy?: string;
  message?: string;
}

function fakeContainerID(pod: string): string {
  return createHash('sha256').update(pod).digest('hex');
}

const workloads: Workload[] = [
  ['wordpress-mysql', 'wordpress-7c966b5d85-42jwr', 'app=wordpress', 'wordpress', 'docker.io/library/wordpress:6.4-apache', 'wordpress', '/var/www/html/', 33],
  ['wordpress-mysql', 'mysql-76ddc6ddc4-h47hv', 'app=mysql', 'mysql', 'docker.io/library/mysql:8.0.35', 'mysql', '/var/lib/mysql/', 999],
  ['default', 'nginx-8f458dc5b-d9cqs', 'app=nginx', 'nginx', 'docker.io/library/nginx:1.25.3', 'nginx', '/usr/share/nginx/', 101],
].map(([ns, pod, labels, cname, image, ownerName, cwd, uid]) => ({
  ns: ns as string,
  pod: pod as string,
  labels: labels as string,
  cid: fakeContainerID(pod as string),
  cname: cname as string,
  image: image as string,
  ownerName: ownerName as string,
  cwd: cwd as string,
  uid: uid as number,
}));

const alertOps: OpTemplate[] = [
  {
    operation: 'Process', resource: '/usr/bin/apt-get update', data: 'syscall=SYS_EXECVE', process: '/usr/bin/apt-get', parent: '/bin/bash',
    policy: 'ksp-block-pkg-mgmt-tools-exec', message: 'Alert! Execution of package management process inside container is denied',
  },
  {
    operation: 'File', resource: '/etc/shadow', data: 'syscall=SYS_OPENAT fd=-100 flags=O_RDONLY', process: '/usr/bin/cat', parent: '/bin/bash',
    policy: 'ksp-block-sensitive-file-read', message: 'Alert! Read access to sensitive credential file is denied',
  },
  {
    operation: 'Network', resource: 'domain=AF_INET type=SOCK_RAW protocol=1', data: 'syscall=SYS_SOCKET', process: '/usr/bin/ping', parent: '/bin/bash',
    policy: 'ksp-block-raw-icmp-sockets', message: 'Alert! Raw ICMP socket creation inside container is denied',
  },
];

const logOps: OpTemplate[] = [
  { operation: 'Process', resource: '/usr/bin/ls -la', data: 'syscall=SYS_EXECVE', process: '/usr/bin/ls', parent: '/bin/bash' },
  { operation: 'File', resource: '/etc/ld.so.cache', data: 'syscall=SYS_OPENAT fd=-100 flags=O_RDONLY', process: '/usr/bin/ls', parent: '/bin/bash' },
  { operation: 'Network', resource: 'remoteip=10.96.0.10 port=53 protocol=UDP', data: 'syscall=SYS_CONNECT', process: '/usr/bin/curl', parent: '/bin/bash' },
];

export interface SyntheticOptions {
  cluster: string;
  host: string;
  /** Every K-th event is an alert; 1 = only alerts, 0 = only logs. */
  alertEvery: number;
}

/** Event i of the synthetic sequence, stamped `nowUs`. */
export function syntheticEvent(i: number, nowUs: number, opts: SyntheticOptions): IngestEvent {
  const w = workloads[Math.floor(i / 3) % workloads.length];
  const alert = opts.alertEvery > 0 && i % opts.alertEvery === 0;
  const op = (alert ? alertOps : logOps)[i % 3];
  const hostPid = 20000 + ((i * 7919) % 40000);
  const pid = 100 + (i % 900);
  const event: IngestEvent = {
    timestamp: Math.floor(nowUs / 1e6),
    updatedTime: formatUpdatedTime(nowUs),
    clusterName: opts.cluster,
    hostName: opts.host,
    nodeID: '',
    namespaceName: w.ns,
    owner: { ref: 'Deployment', name: w.ownerName, namespace: w.ns },
    podName: w.pod,
    labels: w.labels,
    containerID: w.cid,
    containerName: w.cname,
    containerImage: w.image,
    hostPPid: hostPid - 11,
    hostPid,
    ppid: pid - 9,
    pid,
    uid: w.uid,
    execEvent: {},
    parentProcessName: op.parent,
    processName: op.process,
    type: alert ? 'MatchedPolicy' : 'ContainerLog',
    source: '/bin/bash',
    operation: op.operation,
    resource: op.resource,
    cwd: w.cwd,
    data: op.data,
    eventData: {},
    result: alert ? 'Permission denied' : 'Passed',
  };
  if (alert) {
    event.enforcer = 'BPFLSM';
    event.policyName = op.policy;
    event.severity = '5';
    event.tags = 'NIST,CIS';
    event.message = op.message;
    event.action = 'Block';
  }
  return event;
}

/**
 * The same events, produced as msgpack without building objects: one template per
 * (kind, operation, workload), packed once with fixed-width placeholders that are
 * patched per event (the four pids, the timestamp and UpdatedTime). At high rates the
 * generator is then a memcpy and a few stores, leaving the CPU to the pipeline.
 */
/** Writes `v` as the 4 payload bytes of a msgpack uint32 at `at` (big-endian). */
export function putU32BE(b: Uint8Array, at: number, v: number): void {
  b[at] = v >>> 24;
  b[at + 1] = (v >>> 16) & 255;
  b[at + 2] = (v >>> 8) & 255;
  b[at + 3] = v & 255;
}

/**
 * Stamps a pre-packed event template in place: Timestamp (a uint32's payload at `tsAt`)
 * and UpdatedTime (27 bytes of string at `utAt`), the date part formatted once per second.
 */
export class TemplateStamper {
  private cachedSecond = -1;
  private readonly cachedPrefix = new Uint8Array(19);

  stamp(b: Uint8Array, tsAt: number, utAt: number, nowUs: number): void {
    const seconds = Math.floor(nowUs / 1e6);
    putU32BE(b, tsAt, seconds);
    if (seconds !== this.cachedSecond) {
      this.cachedSecond = seconds;
      const s = formatUpdatedTime(seconds * 1e6);
      for (let k = 0; k < 19; k++) this.cachedPrefix[k] = s.charCodeAt(k);
    }
    b.set(this.cachedPrefix, utAt);
    let frac = Math.floor(nowUs - seconds * 1e6);
    b[utAt + 19] = 0x2e;
    for (let k = 25; k >= 20; k--) {
      b[utAt + k] = 0x30 + (frac % 10);
      frac = Math.floor(frac / 10);
    }
    b[utAt + 26] = 0x5a;
  }
}

export class SyntheticFrames {
  private readonly templates: { bytes: Uint8Array; pids: number[]; ts: number; ut: number }[] = [];
  private readonly stamper = new TemplateStamper();

  constructor(private readonly opts: SyntheticOptions, pack: (value: unknown) => Uint8Array) {
    const PID = 0x7ffffff0;
    const TS = 0xfffffff0;
    const UT = 'U'.repeat(27);
    // i sweeps every (workload, operation, kind) combination the sequence can produce.
    for (let i = 0; i < 9 * Math.max(1, opts.alertEvery) * 2; i++) {
      const key = this.keyOf(i);
      if (this.templates[key] !== undefined) continue;
      const e = syntheticEvent(i, 0, opts);
      Object.assign(e, { timestamp: TS, updatedTime: UT, hostPPid: PID, hostPid: PID + 1, ppid: PID + 2, pid: PID + 3 });
      const bytes = Uint8Array.from(pack(e));
      const find = (needle: number[]): number => {
        outer: for (let p = 0; p + needle.length <= bytes.length; p++) {
          for (let j = 0; j < needle.length; j++) if (bytes[p + j] !== needle[j]) continue outer;
          return p;
        }
        throw new Error('synthetic template: placeholder not found');
      };
      const u32 = (v: number): number[] => [0xce, v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255];
      this.templates[key] = {
        bytes,
        pids: [0, 1, 2, 3].map((k) => find(u32(PID + k)) + 1),
        ts: find(u32(TS)) + 1,
        ut: find([0xa0 | 27, ...Buffer.from(UT)]) + 1,
      };
    }
  }

  private keyOf(i: number): number {
    const alert = this.opts.alertEvery > 0 && i % this.opts.alertEvery === 0;
    return (alert ? 9 : 0) + (Math.floor(i / 3) % 3) * 3 + (i % 3);
  }

  /** Event i as msgpack, stamped `nowUs`: a view valid until the next call. */
  frame(i: number, nowUs: number): Uint8Array {
    const t = this.templates[this.keyOf(i)];
    const b = t.bytes;
    const hostPid = 20000 + ((i * 7919) % 40000);
    const pid = 100 + (i % 900);
    const values = [hostPid - 11, hostPid, pid - 9, pid];
    for (let k = 0; k < 4; k++) putU32BE(b, t.pids[k], values[k]);
    this.stamper.stamp(b, t.ts, t.ut, nowUs);
    return b;
  }
}

/**
 * Sample events for warming up the ingest and encode paths before the first real one:
 * every synthetic shape twice, once complete (as the synthetic source sends them) and
 * once as a producer usually does, without the fields the feeder fills in on arrival
 * (timestamp, updatedTime, clusterName, hostName, nodeID, execEvent, eventData). A warm-up
 * that skips the fill-in code leaves it cold for the first real producer's events.
 */
export function warmUpEvents(opts: SyntheticOptions, nowUs: number, pack: (value: unknown) => Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  const shapes = 9 * Math.max(1, opts.alertEvery) * 2;
  for (let i = 0; i < shapes; i++) {
    const full = syntheticEvent(i, nowUs, opts);
    out.push(Uint8Array.from(pack(full)));
    const bare: Record<string, unknown> = { ...full };
    for (const k of ['timestamp', 'updatedTime', 'clusterName', 'hostName', 'nodeID', 'execEvent', 'eventData']) delete bare[k];
    out.push(Uint8Array.from(pack(bare)));
  }
  return out;
}

/** Records a warm-up ring holds at most (512 sample records of ~700 bytes in 512 KiB). */
export const WARM_UP_RING_EVENTS = 512;

/**
 * A ring of `count` (at most WARM_UP_RING_EVENTS) warmUpEvents records, the shapes in turn:
 * one batch of sample input for a warm-up of the encode path (EncodeStage.warmUp, the
 * relay's warm-up).
 */
export function warmUpRing(opts: Pick<SyntheticOptions, 'cluster' | 'host'>, count: number): SharedArrayBuffer {
  const packr = new Packr({ useRecords: false });
  const now = nowMicros();
  const events = warmUpEvents({ ...opts, alertEvery: 3 }, now, (v) => packr.pack(v));
  const ring = allocateRing(512 * 1024);
  const producer = new RingProducer(ring);
  for (let i = 0; i < Math.min(WARM_UP_RING_EVENTS, count); i++) producer.offer(events[i % events.length], now);
  return ring;
}
