/**
 * Numbered ingest events: each carries its sequence number in hostPid, so a test can
 * say exactly which events a client got and which it lost.
 */
import type { IngestEvent } from '../../src/event';
import type { Watcher } from './client';

/** A ContainerLog numbered `seq` (in hostPid and resource); `extra` overrides or adds fields. */
export function seqLog(seq: number, extra: Partial<IngestEvent> = {}): IngestEvent {
  return {
    timestamp: 1_700_000_000,
    updatedTime: '2023-11-14T22:13:20.000000Z',
    hostName: 'node-a',
    namespaceName: 'default',
    podName: 'nginx-0',
    containerID: 'c0ffee',
    hostPid: seq,
    pid: 7,
    ppid: 1,
    uid: 101,
    processName: '/usr/bin/cat',
    parentProcessName: '/bin/sh',
    type: 'ContainerLog',
    source: '/bin/sh',
    operation: 'File',
    resource: `/etc/file-${seq}`,
    cwd: '/',
    result: 'Passed',
    ...extra,
  };
}

/** HostPID of each decoded message (protobufjs leaves 0 out, hence sequence numbers from 1). */
export function seqs(w: Watcher): number[] {
  return w.messages.map((m) => Number(m.HostPID));
}
