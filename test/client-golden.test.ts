/**
 * Golden tests of karmor's output formats. The expected files under test/golden were
 * written by hand from kubearmor-wire.md 1.2, 1.4 and 3.5 (Go struct key order,
 * omitempty except PPID/UID, Go string escaping, `{}` for a present empty
 * sub-message, karmor's text layout); they are not produced by this code.
 *
 * Inputs go through the real wire path: protobufjs encodes them, and the client's own
 * decoder (decodeWire) reads them back, so field presence is what a server would send.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  alertSpec,
  decodeWire,
  formatEventText,
  formatMessageText,
  goFields,
  goJsonIndent,
  logSpec,
  marshalAlert,
  marshalLog,
  marshalMessage,
  messageSpec,
  type WireRecord,
} from '../src/client';
import { feederTypes } from '../src/wire/proto';
import { goldenDir } from './helpers/logCli';

const golden = (name: string): string => fs.readFileSync(path.join(goldenDir, name), 'utf8');

const alerts: Record<string, unknown>[] = [
  {
    // every field kind set: escapes, a map, repeated ATags, Owner and ExecEvent filled, zero PPID/UID
    Timestamp: 1690368349,
    UpdatedTime: '2023-07-26T11:45:49.815282Z',
    ClusterName: 'default',
    HostName: 'kind-control-plane',
    NamespaceName: 'nginx',
    PodName: 'nginx-7bf8c77b5b-h6pfh',
    ContainerID: 'c0ffee',
    ContainerName: 'nginx',
    HostPID: 3456,
    PPID: 0,
    PID: 17,
    UID: 0,
    PolicyName: 'block-<shell>&co',
    Severity: '5',
    Tags: 'NIST,SI-4',
    Message: 'Alert! "quoted" <b>bold</b> & back\\slash',
    Type: 'MatchedPolicy',
    Source: '/bin/sh -c echo "hi"\techo',
    Operation: 'Process',
    Resource: '/bin/sh -c a&&b>c<d',
    Data: 'syscall=SYS_EXECVE\nline2',
    Action: 'Block',
    Result: 'Permission denied',
    ContainerImage: 'docker.io/library/nginx:latest@sha256:ab12',
    ParentProcessName: '/usr/bin/containerd-shim-runc-v2',
    ProcessName: '/bin/sh',
    HostPPID: 3402,
    Enforcer: 'BPFLSM',
    Labels: 'app=nginx,tier=web',
    ATags: ['NIST', 'SI-4'],
    Owner: { Ref: 'Deployment', Name: 'nginx', Namespace: 'nginx' },
    Cwd: '/',
    TTY: 'pts0',
    MaxAlertsPerSec: 10,
    DroppingAlertsInterval: 5,
    ExecEvent: { ExecID: '12345', ExecutableName: 'sh' },
    KubeArmorVersion: 'v1.7.4',
    NodeID: 'node-1',
    ProcessHash: 'aa',
    ParentHash: 'bb',
    ResourceHash: 'cc',
    HashAlgo: 'sha256',
    EventData: { zeta: 'last', Alpha: '<1>', beta: 'b&b' },
    UserName: 'root',
  },
  {
    // almost empty: no UpdatedTime (header without time), zero Timestamp, empty ExecEvent present
    HostName: 'host-a',
    Severity: '1',
    Type: 'MatchedHostPolicy',
    Action: 'Audit',
    ExecEvent: {},
  },
  {
    // int64 beyond 2^53, negative int32, empty Owner present, no ExecEvent, control and non-ASCII characters
    Timestamp: '9007199254740993',
    UpdatedTime: '2024-02-29T23:59:59.000001Z',
    NamespaceName: 'Kube-System',
    PPID: 1,
    PID: -5,
    UID: 65534,
    Message: 'ctl:\u0001\u001f del:\u007f bs:\b ff:\f ls:\u2028 ps:\u2029 é 😀 cr:\r',
    ATags: ['a b', 'c'],
    Owner: {},
    EventData: {},
  },
];

const logs: Record<string, unknown>[] = [
  {
    Timestamp: 1700000000,
    UpdatedTime: '2023-11-14T22:13:20.123456Z',
    ClusterName: 'prod',
    HostName: 'worker-1',
    NamespaceName: 'wordpress-mysql',
    PodName: 'mysql-0',
    ContainerID: 'abc',
    ContainerName: 'mysql',
    HostPID: 4194304,
    PPID: 42,
    PID: 43,
    UID: 1000,
    Type: 'ContainerLog',
    Source: '/usr/bin/curl https://x?a=1&b=2',
    Operation: 'Network',
    Resource: 'remoteip=10.0.0.1 port=443',
    Data: 'syscall=SYS_CONNECT fd=3',
    Result: 'Passed',
    ContainerImage: 'mysql:8',
    ParentProcessName: '/bin/bash',
    ProcessName: '/usr/bin/curl',
    HostPPID: 4194303,
    Labels: 'app=mysql',
    Owner: { Ref: 'StatefulSet', Name: 'mysql', Namespace: 'wordpress-mysql' },
    Cwd: '/root',
    TTY: 'pts/1',
    ExecEvent: { ExecID: '9', ExecutableName: '' },
    NodeID: 'n1',
    EventData: { remotehost: 'svc/default/<db>' },
    UserName: 'mysql',
  },
  {
    // a host log: no namespace, pod, labels or Owner; PPID and UID zero; empty ExecEvent
    Timestamp: 1700000001,
    UpdatedTime: '2023-11-14T22:13:21.000000Z',
    ClusterName: 'prod',
    HostName: 'worker-1',
    HostPID: 1,
    Type: 'HostLog',
    Source: '/usr/sbin/sshd',
    Operation: 'File',
    Resource: '/etc/passwd',
    Data: 'syscall=SYS_OPENAT flags=O_RDONLY',
    Result: 'Passed',
    ExecEvent: {},
    UserName: 'root',
  },
];

const messages: Record<string, unknown>[] = [
  {
    Timestamp: 1690368349,
    UpdatedTime: '2023-07-26T11:45:49.815282Z',
    ClusterName: 'default',
    HostName: 'kind-control-plane',
    HostIP: '172.18.0.2',
    Type: 'Message',
    Level: 'INFO',
    Message: 'Started to protect a pod (nginx/nginx-7bf8c77b5b-h6pfh)',
  },
  { UpdatedTime: '2023-07-26T11:45:50.000001Z', HostName: 'node-2', Type: 'Message', Message: 'policy <ksp> & "x"\tfailed' },
];

/** Encodes with protobufjs and decodes with the client's decoder: what a server would deliver. */
function overTheWire(typeName: 'Alert' | 'Log' | 'Message', obj: Record<string, unknown>): WireRecord {
  const type = feederTypes()[typeName];
  const bytes = type.encode(type.fromObject(obj)).finish();
  return decodeWire(type, bytes);
}

const wireAlerts = alerts.map((a) => overTheWire('Alert', a));
const wireLogs = logs.map((l) => overTheWire('Log', l));
const wireMessages = messages.map((m) => overTheWire('Message', m));

test('gojson - alerts and logs marshal byte for byte as Go encoding/json', () => {
  const lines = [...wireAlerts.map(marshalAlert), ...wireLogs.map(marshalLog)];
  assert.equal(lines.join('\n') + '\n', golden('client-events.json'));
});

test('gojson - escaped strings parse back to the original text', () => {
  const pairs: Array<[Record<string, unknown>, string]> = [
    ...alerts.map((a, i): [Record<string, unknown>, string] => [a, marshalAlert(wireAlerts[i])]),
    ...logs.map((l, i): [Record<string, unknown>, string] => [l, marshalLog(wireLogs[i])]),
  ];
  for (const [input, line] of pairs) {
    const parsed = JSON.parse(line) as Record<string, unknown>;
    for (const [k, v] of Object.entries(input)) {
      if (typeof v === 'string' && v !== '' && k !== 'Timestamp') assert.equal(parsed[k], v, k);
    }
  }
});

test('gojson - pretty-json is json.Indent with two spaces and keeps {} compact', () => {
  const out = [wireAlerts[1], wireAlerts[2]].map((a) => goJsonIndent(marshalAlert(a)) + '\n').join('') +
    wireLogs.map((l) => goJsonIndent(marshalLog(l)) + '\n').join('');
  assert.equal(out, golden('client-events.pretty.json'));
});

test('text - alerts and logs print as karmor does (header, fixed keys, then byte order)', () => {
  const out =
    wireAlerts.map((a) => formatEventText('Alert', goFields(alertSpec, a))).join('') +
    wireLogs.map((l) => formatEventText('Log', goFields(logSpec, l))).join('');
  assert.equal(out, golden('client-events.txt'));
});

test('gojson - messages marshal in declaration order with omitempty', () => {
  assert.equal(wireMessages.map((m) => marshalMessage(m) + '\n').join(''), golden('client-messages.json'));
});

test('text - messages print as "<time>  <cluster>  <host>  [<level>]  <message>"', () => {
  assert.equal(wireMessages.map(formatMessageText).join(''), golden('client-messages.txt'));
});

test('gojson - key lists name exactly the fields of proto/kubearmor.proto', () => {
  const t = feederTypes();
  const names = (type: typeof t.Alert): string[] => type.fieldsArray.map((f) => f.name).sort();
  assert.deepEqual(alertSpec.map((f) => f.key).sort(), names(t.Alert));
  assert.deepEqual(logSpec.map((f) => f.key).sort(), names(t.Log));
  assert.deepEqual(messageSpec.map((f) => f.key).sort(), names(t.Message));
});

test('gojson - an absent ExecEvent is omitted while an empty one prints {}', () => {
  assert.ok(!marshalAlert(wireAlerts[2]).includes('ExecEvent'));
  assert.ok(marshalAlert(wireAlerts[1]).endsWith('"ExecEvent":{}}'));
});
