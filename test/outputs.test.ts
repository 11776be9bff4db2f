/**
 * The feeder's outputs besides gRPC: upstream's `logPath` JSON lines (kubearmor-wire.md
 * 2.8: lowerCamelCase tp.Log keys, some always present, the rest omitted when empty,
 * written before throttling), their replay through `--source jsonl` (with `--follow`),
 * malformed-line accounting on GET /stats, start-up failure for an unopenable logPath,
 * and the Prometheus text on GET /metrics. `armorfeed serve` runs as a child process on
 * 127.0.0.1 with free ports; in-process feeders where a child adds nothing.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { FeederStats } from '../src/feeder';
import { OutputError } from '../src/errors';
import type { IngestEvent } from '../src/event';
import { awaitExit, exitCodeOf, startWithBusyPort } from './helpers/child';
import { openStreams } from './helpers/client';
import { startFeeder, startWatched } from './helpers/feeder';
import { armorfeedMain, fetchStats, startServe, type ServeProcess } from './helpers/serve';
import { delay, until } from './helpers/wait';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'armorfeed-outputs-'));
const servers: ServeProcess[] = [];

after(async () => {
  await Promise.all(servers.map((s) => s.stop('SIGTERM', 5000).catch(() => undefined)));
  fs.rmSync(tmp, { recursive: true, force: true });
});

const LOOPBACK = ['--bind', '127.0.0.1', '--gRPC', '0', '--gRPCHealthPort', '0', '--metricsPort', '0'];

async function serve(args: string[]): Promise<ServeProcess> {
  const s = await startServe(['serve', ...LOOPBACK, ...args], { readyTimeoutMs: 15_000 });
  servers.push(s);
  return s;
}

function getStats(s: ServeProcess): Promise<FeederStats> {
  return fetchStats(s.addresses.metrics, 3000);
}

/** How many streams `s` counts open on GET /stats. */
async function openOn(s: ServeProcess): Promise<number> {
  return (await getStats(s)).clients.filter((c) => c.open).length;
}

/** Keys upstream's logPath JSON always writes, and those it omits when empty (kubearmor-wire.md 2.8). */
const ALWAYS = ['timestamp', 'updatedTime', 'hostName', 'hostPPid', 'hostPid', 'ppid', 'pid', 'uid', 'execEvent', 'parentProcessName', 'processName', 'atags', 'type', 'source', 'operation', 'resource', 'cwd', 'oid', 'result'];
const OMITTED_WHEN_EMPTY = [
  'clusterName', 'nodeID', 'username', 'namespaceName', 'owner', 'podName', 'labels', 'containerID', 'containerName', 'containerImage', 'enforcer',
  'policyName', 'kubeArmorVersion', 'severity', 'tags', 'message', 'tty', 'data', 'eventData', 'processHash', 'parentHash', 'resourceHash', 'hashAlgo',
  'action', 'MaxAlertsPerSec', 'DroppingAlertsInterval',
];

const fullAlert: IngestEvent = {
  timestamp: 1692813948,
  updatedTime: '2023-08-23T18:05:48.301798Z',
  namespaceName: 'prod',
  owner: { ref: 'Deployment', name: 'web', namespace: 'prod' },
  podName: 'web-0',
  labels: 'app=web',
  containerID: 'c0ffee',
  containerName: 'web',
  containerImage: 'nginx:1.25',
  hostPPid: 4140,
  hostPid: 4141,
  ppid: 40,
  pid: 41,
  uid: 1000,
  execEvent: { ExecID: '77', ExecutableName: '/bin/cat' },
  parentProcessName: '/bin/bash',
  processName: '/bin/cat',
  enforcer: 'BPFLSM',
  policyName: 'block-shadow',
  severity: '5',
  tags: 'NIST,CIS',
  message: 'read of <shadow> & friends',
  type: 'MatchedPolicy',
  source: '/bin/cat /etc/shadow',
  operation: 'File',
  resource: '/etc/shadow',
  cwd: '/',
  tty: 'pts0',
  data: 'syscall=SYS_OPENAT fd=-100',
  action: 'Block',
  result: 'Permission denied',
};
const minimalLog: IngestEvent = { type: 'ContainerLog', operation: 'Process', source: '/bin/sh', resource: '/bin/ls' };
const hostLog: IngestEvent = { type: 'HostLog', operation: 'Network', source: '/usr/bin/curl', resource: 'remoteip=10.0.0.9 port=443', data: 'syscall=SYS_CONNECT fd=5', pid: 99, uid: 0 };

/** Runs an in-process feeder with logPath, pushes the events, closes it and returns the file's lines. */
async function produceLogPath(name: string, events: IngestEvent[]): Promise<string[]> {
  const file = path.join(tmp, name);
  const feeder = await startFeeder({ logPath: file, host: 'out-host', cluster: 'out-cluster', alertThrottling: false });
  try {
    for (const e of events) feeder.push(e);
    await until(`${events.length} events encoded`, () => {
      const s = feeder.stats();
      return s.encoded.alerts + s.encoded.logs === events.length;
    });
  } finally {
    await feeder.close();
  }
  const text = fs.readFileSync(file, 'utf8');
  assert.ok(text.endsWith('\n'), 'every line ends with a newline');
  return text.slice(0, -1).split('\n');
}

test('outputs - logPath writes one JSON line per alert and log with upstream lowerCamelCase keys', { timeout: 20_000 }, async () => {
  const lo = Math.floor(Date.now() / 1000);
  const lines = await produceLogPath('keys.jsonl', [fullAlert, minimalLog]);
  const hi = Math.ceil(Date.now() / 1000);
  assert.equal(lines.length, 2, lines.join('\n'));
  const a = JSON.parse(lines[0]) as Record<string, unknown>;
  const l = JSON.parse(lines[1]) as Record<string, unknown>;

  // The full alert: everything it carries, plus the always-present keys, nothing else.
  const expectedAlert: Record<string, unknown> = { ...fullAlert, hostName: 'out-host', atags: ['NIST', 'CIS'], oid: 0 };
  assert.deepEqual(Object.keys(a).sort(), Object.keys(expectedAlert).sort());
  assert.deepEqual(a, expectedAlert);
  // Go's encoding/json escapes <, > and &.
  assert.ok(lines[0].includes('"message":"read of \\u003cshadow\\u003e \\u0026 friends"'), lines[0]);
  assert.ok(!lines[0].includes('"clusterName"'), 'clusterName is normally absent from the logPath output');

  // The minimal log: always-present keys with their zero values, omitted keys absent.
  for (const key of ALWAYS) assert.ok(key in l, `always-present key ${key} missing: ${lines[1]}`);
  for (const key of OMITTED_WHEN_EMPTY) assert.ok(!(key in l), `key ${key} must be omitted when empty: ${lines[1]}`);
  assert.deepEqual(Object.keys(l).sort(), [...ALWAYS].sort());
  assert.deepEqual(
    { ...l, timestamp: 0, updatedTime: '' },
    {
      timestamp: 0,
      updatedTime: '',
      hostName: 'out-host',
      hostPPid: 0,
      hostPid: 0,
      ppid: 0,
      pid: 0,
      uid: 0,
      execEvent: { ExecID: '', ExecutableName: '' },
      parentProcessName: '',
      processName: '',
      atags: null,
      type: 'ContainerLog',
      source: '/bin/sh',
      operation: 'Process',
      resource: '/bin/ls',
      cwd: '',
      oid: 0,
      result: '',
    },
  );
  const ts = l.timestamp as number;
  assert.ok(Number.isInteger(ts) && ts >= lo && ts <= hi, `timestamp ${ts} is Unix seconds in [${lo}, ${hi}]`);
  assert.match(String(l.updatedTime), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
  assert.equal(Math.floor(Date.parse(String(l.updatedTime)) / 1000), ts);
});

test('outputs - logPath gets every alert, including those the throttle drops', { timeout: 20_000 }, async () => {
  const file = path.join(tmp, 'throttled.jsonl');
  const watched = await startWatched({ logPath: file, alertThrottling: true, maxAlertPerSec: 1, throttleSec: 30 }, [['WatchAlerts', 'all']], 'the alert stream to register');
  const { feeder, watchers: [w] } = watched;
  try {
    const audit = (i: number): IngestEvent => ({ type: 'MatchedPolicy', operation: 'File', source: '/bin/cat', resource: `/t/${i}`, containerID: 'c-t', action: 'Audit', enforcer: 'eBPF Monitor' });
    for (let i = 0; i < 5; i++) feeder.push(audit(i));
    feeder.push({ type: 'MatchedPolicy', operation: 'File', source: '/bin/cat', resource: '/t/sentinel', action: 'Block', enforcer: 'BPFLSM' });
    await w.waitFor(3, 5000);
    assert.deepEqual(w.messages.map((m) => [m.Operation, m.Resource]), [['File', '/t/0'], ['AlertThreshold', '/t/1'], ['File', '/t/sentinel']]);
  } finally {
    await watched.close();
  }
  const lines = fs.readFileSync(file, 'utf8').trimEnd().split('\n').map((x) => JSON.parse(x) as Record<string, unknown>);
  // The file holds the original events: no notice, nothing dropped.
  assert.deepEqual(lines.map((x) => [x.type, x.operation, x.resource]), [
    ...[0, 1, 2, 3, 4].map((i) => ['MatchedPolicy', 'File', `/t/${i}`]),
    ['MatchedPolicy', 'File', '/t/sentinel'],
  ]);
});

test('outputs - a logPath file replays through --source jsonl onto the right streams, and logPath again gives the same bytes', { timeout: 30_000 }, async () => {
  const original = await produceLogPath('replay-in.jsonl', [fullAlert, minimalLog, hostLog, { ...fullAlert, resource: '/etc/gshadow', tags: '' }]);
  assert.equal(original.length, 4);
  const input = path.join(tmp, 'replay-follow.jsonl');
  const output = path.join(tmp, 'replay-out.jsonl');
  fs.writeFileSync(input, '');
  const s = await serve(['--source', 'jsonl', '--jsonl', input, '--follow', 'true', '--logPath', output, '--cluster', 'replay-cluster', '--host', 'replay-host', '--alertThrottling', 'false']);
  const clients = openStreams(s.addresses.grpc, [['WatchAlerts', 'all'], ['WatchLogs', 'all']]);
  const { watchers: [alerts, logs] } = clients;
  try {
    await until('both streams to register', async () => (await openOn(s)) === 2);
    fs.appendFileSync(input, original.join('\n') + '\n');
    await alerts.waitFor(2, 5000);
    await logs.waitFor(2, 5000);

    const [a, a2] = alerts.messages;
    assert.equal(a.Type, 'MatchedPolicy');
    assert.equal(a.Timestamp, 1692813948);
    assert.equal(a.UpdatedTime, '2023-08-23T18:05:48.301798Z');
    assert.equal(a.ClusterName, 'replay-cluster');
    assert.equal(a.NamespaceName, 'prod');
    assert.deepEqual(a.Owner, { Ref: 'Deployment', Name: 'web', Namespace: 'prod' });
    assert.equal(a.PodName, 'web-0');
    assert.equal(a.Labels, 'app=web');
    assert.equal(a.ContainerID, 'c0ffee');
    assert.equal(a.ContainerName, 'web');
    assert.equal(a.ContainerImage, 'nginx:1.25');
    assert.equal(a.HostPPID, 4140);
    assert.equal(a.HostPID, 4141);
    assert.equal(a.PPID, 40);
    assert.equal(a.PID, 41);
    assert.equal(a.UID, 1000);
    assert.deepEqual(a.ExecEvent, { ExecID: '77', ExecutableName: '/bin/cat' });
    assert.equal(a.ParentProcessName, '/bin/bash');
    assert.equal(a.ProcessName, '/bin/cat');
    assert.equal(a.Enforcer, 'BPFLSM');
    assert.equal(a.PolicyName, 'block-shadow');
    assert.equal(a.Severity, '5');
    assert.equal(a.Tags, 'NIST,CIS');
    assert.deepEqual(a.ATags, ['NIST', 'CIS']);
    assert.equal(a.Message, 'read of <shadow> & friends');
    assert.equal(a.Source, '/bin/cat /etc/shadow');
    assert.equal(a.Operation, 'File');
    assert.equal(a.Resource, '/etc/shadow');
    assert.equal(a.Cwd, '/');
    assert.equal(a.TTY, 'pts0');
    assert.equal(a.Data, 'syscall=SYS_OPENAT fd=-100');
    assert.deepEqual(a.EventData, { Syscall: 'SYS_OPENAT', Fd: '-100' });
    assert.equal(a.Action, 'Block');
    assert.equal(a.Result, 'Permission denied');
    assert.equal(a2.Resource, '/etc/gshadow');
    assert.equal(a2.Tags, undefined);
    assert.equal(a2.ATags, undefined, 'the written "atags":null replays as no ATags');

    const [l, h] = logs.messages;
    assert.equal(l.Type, 'ContainerLog');
    assert.equal(l.Resource, '/bin/ls');
    assert.equal(l.Source, '/bin/sh');
    assert.equal(l.Operation, 'Process');
    assert.equal(l.ClusterName, 'replay-cluster');
    assert.deepEqual(l.ExecEvent, {});
    assert.equal(l.PPID, undefined);
    assert.equal(Math.floor(Date.parse(String(l.UpdatedTime)) / 1000), l.Timestamp);
    assert.equal(l.Timestamp, (JSON.parse(original[1]) as { timestamp: number }).timestamp, 'the written timestamp is replayed, not replaced');
    assert.equal(h.Type, 'HostLog');
    assert.equal(h.PID, 99);
    assert.deepEqual(h.EventData, { Syscall: 'SYS_CONNECT', Fd: '5', Remoteip: '10.0.0.9', Port: '443' });
    assert.equal(alerts.messages.length, 2, 'no log crossed over to WatchAlerts');
    assert.equal(logs.messages.length, 2, 'no alert crossed over to WatchLogs');
    const st = await getStats(s);
    assert.equal(st.ingest.jsonl.events, 4);
    assert.equal(st.ingest.jsonl.dropped.malformed_input, 0);
  } finally {
    clients.close();
  }
  const exit = await s.stop('SIGTERM', 10_000);
  assert.equal(exit.code, 0, exit.stderr.slice(-2000));
  assert.equal(fs.readFileSync(output, 'utf8'), original.join('\n') + '\n', 'logPath of the replay is byte-identical to its input');
});

test('outputs - invalid JSON lines are counted (GET /stats) and the rest still flow', { timeout: 30_000 }, async () => {
  const input = path.join(tmp, 'invalid.jsonl');
  fs.writeFileSync(input, '');
  const s = await serve(['--source', 'jsonl', '--jsonl', input, '--follow', 'true', '--alertThrottling', 'false']);
  const clients = openStreams(s.addresses.grpc, [['WatchAlerts', 'all'], ['WatchLogs', 'system']]);
  const { watchers: [alerts, logs] } = clients;
  try {
    await until('both streams to register', async () => (await openOn(s)) === 2);
    const good = (type: string, resource: string): string => JSON.stringify({ type, operation: 'File', source: '/bin/cat', resource });
    fs.appendFileSync(
      input,
      [
        good('MatchedPolicy', '/ok/1'),
        'this is not json',
        good('ContainerLog', '/ok/2'),
        '{"type": "MatchedPolicy", ',
        '',
        '{"type":"MatchedPolicy","Resource":"/wrong-case"}',
        good('MatchedPolicy', '/ok/3'),
        '[1,2,3]',
        good('HostLog', '/ok/4'),
      ].join('\n') + '\n',
    );
    await alerts.waitFor(2, 5000);
    await logs.waitFor(2, 5000);
    let st = await getStats(s);
    await until('the reject counts to reach /stats', async () => {
      st = await getStats(s);
      return (st.ingest.jsonl?.dropped.malformed_input ?? 0) >= 4 && (st.ingest.jsonl?.malformedByReason.not_a_map ?? 0) >= 1;
    });
    assert.deepEqual(st.ingest.jsonl.malformedByReason, { invalid_json: 2, unknown_field: 1, not_a_map: 1 });
    assert.equal(st.ingest.jsonl.dropped.malformed_input, 4);
    assert.equal(st.ingest.jsonl.events, 4);
    assert.equal(st.dropped.malformed_input, 4);
    assert.deepEqual(alerts.messages.map((m) => m.Resource), ['/ok/1', '/ok/3']);
    assert.deepEqual(logs.messages.map((m) => [m.Type, m.Resource]), [['ContainerLog', '/ok/2'], ['HostLog', '/ok/4']]);
    // The source keeps reading after bad lines.
    fs.appendFileSync(input, good('MatchedPolicy', '/ok/5') + '\n');
    await alerts.waitFor(3, 5000);
    assert.equal(alerts.messages[2].Resource, '/ok/5');
  } finally {
    clients.close();
  }
  const exit = await s.stop('SIGTERM', 10_000);
  assert.equal(exit.code, 0, exit.stderr.slice(-2000));
});

test('outputs - jsonl lines longer than maxEventBytes are counted as oversized and the rest still flow', { timeout: 30_000 }, async () => {
  const input = path.join(tmp, 'oversized.jsonl');
  fs.writeFileSync(input, '');
  const s = await serve(['--source', 'jsonl', '--jsonl', input, '--follow', 'true', '--maxEventBytes', '256', '--ringSize', '65536']);
  const clients = openStreams(s.addresses.grpc, [['WatchLogs', 'all']]);
  const { watchers: [logs] } = clients;
  try {
    await until('the stream to register', async () => (await openOn(s)) === 1);
    const line = (resource: string): string => JSON.stringify({ type: 'ContainerLog', operation: 'File', source: '/bin/cat', resource });
    const big = line(`/big/${'x'.repeat(600)}`);
    assert.ok(Buffer.byteLength(big) > 256);
    // One append: the long line arrives whole, in the same read as its neighbours.
    fs.appendFileSync(input, [line('/small/1'), big, line('/small/2')].join('\n') + '\n');
    await logs.waitFor(2, 5000);
    fs.appendFileSync(input, line('/small/3') + '\n');
    await logs.waitFor(3, 5000);
    let st = await getStats(s);
    await until('the reject counts to reach /stats', async () => {
      st = await getStats(s);
      return st.ingest.jsonl.events + st.ingest.jsonl.dropped.malformed_input >= 4;
    });
    assert.deepEqual(
      logs.messages.map((m) => String(m.Resource).slice(0, 12)),
      ['/small/1', '/small/2', '/small/3'],
      `a ${Buffer.byteLength(big)}-byte line was delivered although maxEventBytes is 256`,
    );
    assert.deepEqual(st.ingest.jsonl.malformedByReason, { oversized: 1 });
    assert.equal(st.ingest.jsonl.events, 3);
  } finally {
    clients.close();
  }
  await s.stop('SIGTERM', 10_000);
});

test('outputs - --follow delivers lines appended after start, including a line written in two parts', { timeout: 30_000 }, async () => {
  const input = path.join(tmp, 'follow.jsonl');
  const line = (resource: string): string => JSON.stringify({ type: 'ContainerLog', operation: 'Process', source: '/bin/sh', resource, timestamp: 1700000000, updatedTime: '2023-11-14T22:13:20.000000Z' });
  fs.writeFileSync(input, line('/early') + '\n');
  const s = await serve(['--source', 'jsonl', '--jsonl', input, '--follow', 'true', '--logPath', 'stdout']);
  // The line already there is read at start, before any client: wait until it has gone by.
  await until('the early line to be read and fanned out', async () => {
    const st = await getStats(s);
    return st.ingest.jsonl?.events === 1 && st.encoded.logs === 1;
  });
  const clients = openStreams(s.addresses.grpc, [['WatchLogs', 'all']]);
  const { watchers: [logs] } = clients;
  try {
    await until('the stream to register', async () => (await openOn(s)) === 1);
    const split = line('/split');
    fs.appendFileSync(input, split.slice(0, 20));
    await delay(250); // longer than the 100 ms poll: the first part has been read alone
    fs.appendFileSync(input, split.slice(20) + '\n' + line('/later') + '\n');
    await logs.waitFor(2, 5000);
    fs.appendFileSync(input, line('/last') + '\n');
    await logs.waitFor(3, 5000);
    assert.deepEqual(logs.messages.map((m) => m.Resource), ['/split', '/later', '/last']);
    assert.equal(logs.messages[0].Timestamp, 1700000000);
    const st = await getStats(s);
    assert.equal(st.ingest.jsonl.events, 4);
    assert.equal(st.ingest.jsonl.dropped.malformed_input, 0, JSON.stringify(st.ingest.jsonl.malformedByReason));
    assert.equal(st.ingest.jsonl.finished, false, 'a followed file never finishes');
  } finally {
    clients.close();
  }
  const exit = await s.stop('SIGTERM', 10_000);
  assert.equal(exit.code, 0, exit.stderr.slice(-2000));
  // logPath stdout: one JSON line per event, the early one included.
  const out = exit.stdout.split('\n').filter((x) => x.startsWith('{')).map((x) => (JSON.parse(x) as { resource: string }).resource);
  assert.deepEqual(out, ['/early', '/split', '/later', '/last']);
});

test('outputs - logPath in a missing directory fails at start-up', { timeout: 20_000 }, async () => {
  const missing = path.join(tmp, 'no-such-dir', 'out.jsonl');
  const child = spawn(process.execPath, [armorfeedMain, 'serve', ...LOOPBACK, '--source', 'none', '--logPath', missing], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (c: string) => {
    stderr += c;
  });
  child.stdout.resume();
  const code = await awaitExit(child, exitCodeOf(child), 10_000);
  assert.ok(code === 1 || code === 2, `exit status ${code}; stderr:\n${stderr}`);
  assert.match(stderr, /logPath/);
  assert.ok(stderr.includes(missing), stderr);
  assert.doesNotMatch(stderr, /armorfeed: listening/);
  // The embedding API refuses the same way, with a typed, coded error.
  await assert.rejects(startFeeder({ logPath: missing }), (err: unknown) => err instanceof OutputError && err.code === 'ERR_OUTPUT_OPEN' && /logPath/.test(err.message));
});

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

function parseProm(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m !== null, `not a Prometheus sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

test('outputs - GET /metrics returns Prometheus text with the client, ingest and ring metrics', { timeout: 20_000 }, async () => {
  const watched = await startWatched(
    { metricsPort: 0, metricsBind: '127.0.0.1', alertThrottling: true, maxAlertPerSec: 1, throttleSec: 30 },
    [['WatchAlerts', 'all', { 'x-armorfeed-client': 'metrics-probe' }]],
    'the alert stream to register',
  );
  const { feeder, watchers: [w] } = watched;
  try {
    const metricsAddress = feeder.addresses.metrics;
    assert.ok(metricsAddress !== undefined);
    assert.match(metricsAddress, /^127\.0\.0\.1:\d+$/);
    for (let i = 0; i < 5; i++) {
      feeder.push({ type: 'MatchedPolicy', operation: 'File', source: '/bin/cat', resource: `/m/${i}`, containerID: 'c-m', action: 'Audit', enforcer: 'eBPF Monitor' });
    }
    feeder.push({ type: 'MatchedPolicy', operation: 'File', source: '/bin/cat', resource: '/m/sentinel', action: 'Block', enforcer: 'BPFLSM' });
    await w.waitFor(3, 5000);
    assert.deepEqual(w.messages.map((m) => m.Resource), ['/m/0', '/m/1', '/m/sentinel']);

    const probe = (s: Sample): boolean => s.labels.client === 'metrics-probe' && s.labels.stream === 'alerts';
    let text = '';
    let samples: Sample[] = [];
    const scrape = async (): Promise<void> => {
      const res = await fetch(`http://${metricsAddress}/metrics`, { signal: AbortSignal.timeout(3000) });
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
      text = await res.text();
      samples = parseProm(text);
    };
    const value = (name: string, match: (s: Sample) => boolean): number[] => samples.filter((s) => s.name === name && match(s)).map((s) => s.value);
    await until('delivered to reach 3 and the ring to empty on /metrics', async () => {
      await scrape();
      return value('armorfeed_client_delivered_total', probe)[0] === 3 && value('armorfeed_ring_used_bytes', (s) => s.labels.source === 'embedded')[0] === 0;
    });
    for (const [name, type] of [
      ['armorfeed_client_delivered_total', 'counter'],
      ['armorfeed_client_dropped_total', 'counter'],
      ['armorfeed_ingest_events_total', 'counter'],
      ['armorfeed_client_queue_depth', 'gauge'],
      ['armorfeed_ring_used_bytes', 'gauge'],
      ['armorfeed_client_latency_seconds', 'gauge'],
    ]) {
      assert.ok(text.includes(`# TYPE ${name} ${type}\n`), `no "# TYPE ${name} ${type}" in:\n${text}`);
    }
    assert.deepEqual(value('armorfeed_client_delivered_total', probe), [3]);
    assert.deepEqual(value('armorfeed_client_dropped_total', (s) => probe(s) && s.labels.reason === 'throttled'), [3]);
    assert.deepEqual(value('armorfeed_client_dropped_total', (s) => probe(s) && s.labels.reason === 'client_queue_full'), [], 'zero counters have no sample');
    assert.deepEqual(value('armorfeed_ingest_events_total', (s) => s.labels.source === 'embedded'), [6]);
    assert.deepEqual(value('armorfeed_client_queue_depth', probe), [0]);
    assert.deepEqual(value('armorfeed_ring_used_bytes', (s) => s.labels.source === 'embedded'), [0]);
    const latency = samples.filter((s) => s.name === 'armorfeed_client_latency_seconds' && probe(s));
    assert.deepEqual(latency.map((s) => s.labels.quantile).sort(), ['0.5', '0.9', '0.99', '0.999', '1']);
    for (const s of latency) assert.ok(s.value > 0 && s.value < 5, `latency quantile ${s.labels.quantile} = ${s.value} s`);
    const body = await fetchStats(metricsAddress, 3000);
    assert.equal(body.dropped.throttled, 3);
    assert.equal(body.clients.find((c) => c.name === 'metrics-probe')?.delivered, 3);
  } finally {
    await watched.close();
  }
});

test('outputs - a busy metrics port fails createFeeder with a coded error and leaves no server running', { timeout: 15_000 }, async () => {
  const { outcome, exitedByItself, stderr } = await startWithBusyPort('metricsPort');
  assert.equal(outcome.started, false, 'createFeeder must reject when the metrics port is taken');
  assert.ok(exitedByItself, `after createFeeder rejected, something it started (gRPC server, encoders) kept the process alive; outcome ${JSON.stringify(outcome)} ${stderr}`);
  assert.equal(outcome.armorfeedError, true, JSON.stringify(outcome));
  assert.match(String(outcome.message), /metricsPort/, 'the message names the key');
});
