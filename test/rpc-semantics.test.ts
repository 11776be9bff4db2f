/**
 * feeder.LogService RPC semantics as upstream defines them (kubearmor-wire.md 2.2, 2.4,
 * 1.5, 6): HealthCheck echoes the nonce; WatchAlerts takes only all/policy and WatchLogs
 * only all/system, any other filter ends the stream at once with OK and registers
 * nothing; WatchMessages takes any filter; routing is by Type alone; server reflection
 * and grpc.health.v1 are served; a new client gets nothing pushed before it came.
 * Real feeder (createFeeder) and real grpc-js clients on 127.0.0.1; no mocks.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import type { Feeder } from '../src/feeder';
import type { IngestEvent } from '../src/event';
import { startWithBusyPort } from './helpers/child';
import { connect, type TestClient, type Watcher } from './helpers/client';
import { openCount as openOn, startFeeder } from './helpers/feeder';
import { delay, until, withTimeout } from './helpers/wait';
import { healthV1, HealthStatus } from './helpers/health';
import { walk } from './helpers/wire';

type Stream = 'alerts' | 'logs' | 'messages';

let feeder: Feeder;

before(async () => {
  feeder = await startFeeder({ gRPCHealthPort: 0, alertThrottling: false, cluster: 'rpc-cluster', host: 'rpc-host' });
});

after(async () => {
  await feeder.close();
});

const openCount = (stream: Stream): number => openOn(feeder, stream);

/** Cancels every watcher, closes the client and waits until the feeder has let go of them. */
async function closeAll(tc: TestClient, watchers: Watcher[]): Promise<void> {
  for (const w of watchers) w.cancel();
  tc.close();
  await until('every stream to be removed', () => openCount('alerts') + openCount('logs') + openCount('messages') === 0);
}

/** Opens `rpc` with a filter it must refuse: the stream ends at once with OK, having received nothing. */
async function expectRefused(tc: TestClient, watchers: Watcher[], rpc: 'WatchAlerts' | 'WatchLogs', filter: string): Promise<void> {
  const bad = tc.watch(rpc, filter);
  watchers.push(bad);
  const opened = Date.now();
  const status = await withTimeout(bad.ended, 3000, `${rpc}(${JSON.stringify(filter)}) to end`);
  assert.equal(status.code, grpc.status.OK, `${rpc}(${JSON.stringify(filter)}) status ${status.code} ${status.details}`);
  assert.ok(Date.now() - opened < 2000, `${rpc}(${JSON.stringify(filter)}) ended after ${Date.now() - opened} ms, not at once`);
  assert.equal(bad.messages.length, 0, `${rpc}(${JSON.stringify(filter)}) received messages`);
}

const alert = (resource: string, type = 'MatchedPolicy'): IngestEvent => ({ type, operation: 'File', source: '/bin/cat', resource, policyName: 'rpc-policy' });
const log = (resource: string, type = 'ContainerLog'): IngestEvent => ({ type, operation: 'Process', source: '/bin/sh', resource });

test('rpc - HealthCheck echoes the nonce', { timeout: 10_000 }, async () => {
  const tc = connect(feeder.addresses.grpc);
  try {
    for (const nonce of [0, 1, -1, 42, -2147483648, 2147483647, 1234567890]) {
      assert.equal(await withTimeout(tc.health(nonce), 5000, `HealthCheck(${nonce})`), nonce, `nonce ${nonce}`);
    }
  } finally {
    tc.close();
  }
});

test('rpc - WatchAlerts accepts only all/policy', { timeout: 20_000 }, async () => {
  const tc = connect(feeder.addresses.grpc);
  const all = tc.watch('WatchAlerts', 'all');
  const policy = tc.watch('WatchAlerts', 'policy');
  const watchers = [all, policy];
  try {
    await until('the all and policy streams to register', () => openCount('alerts') === 2);
    let pushed = 0;
    const flow = setInterval(() => {
      feeder.push(alert(`/flow/${pushed++}`));
    }, 5);
    try {
      await all.waitFor(3, 5000);
      for (const filter of ['', 'system', 'bogus', 'ALL', 'Policy']) await expectRefused(tc, watchers, 'WatchAlerts', filter);
    } finally {
      clearInterval(flow);
    }
    // Rejected filters are never registered, not even briefly.
    const filters = feeder.stats().clients.filter((c) => c.stream === 'alerts').map((c) => c.filter).sort();
    assert.deepEqual(filters, ['all', 'policy']);
    feeder.push(alert('/sentinel'));
    const expected = [...Array.from({ length: pushed }, (_, i) => `/flow/${i}`), '/sentinel'];
    await all.waitFor(expected.length, 5000);
    await policy.waitFor(expected.length, 5000);
    assert.deepEqual(all.messages.map((m) => m.Resource), expected);
    assert.deepEqual(policy.messages.map((m) => m.Resource), expected);
    assert.deepEqual(policy.messages, all.messages, '"all" and "policy" receive exactly the same alerts');
  } finally {
    await closeAll(tc, watchers);
  }
});

test('rpc - WatchLogs accepts only all/system', { timeout: 20_000 }, async () => {
  const tc = connect(feeder.addresses.grpc);
  const all = tc.watch('WatchLogs', 'all');
  const system = tc.watch('WatchLogs', 'system');
  const watchers = [all, system];
  try {
    await until('the all and system streams to register', () => openCount('logs') === 2);
    let pushed = 0;
    const flow = setInterval(() => {
      feeder.push(log(`/flow/${pushed++}`));
    }, 5);
    try {
      await all.waitFor(3, 5000);
      for (const filter of ['', 'policy', 'bogus', 'System']) await expectRefused(tc, watchers, 'WatchLogs', filter);
    } finally {
      clearInterval(flow);
    }
    const filters = feeder.stats().clients.filter((c) => c.stream === 'logs').map((c) => c.filter).sort();
    assert.deepEqual(filters, ['all', 'system']);
    feeder.push(log('/sentinel'));
    const expected = [...Array.from({ length: pushed }, (_, i) => `/flow/${i}`), '/sentinel'];
    await all.waitFor(expected.length, 5000);
    await system.waitFor(expected.length, 5000);
    assert.deepEqual(all.messages.map((m) => m.Resource), expected);
    assert.deepEqual(system.messages, all.messages, '"all" and "system" receive exactly the same logs');
  } finally {
    await closeAll(tc, watchers);
  }
});

test('rpc - WatchMessages accepts any filter, including ""', { timeout: 20_000 }, async () => {
  const tc = connect(feeder.addresses.grpc);
  const filters = ['', 'bogus', 'all', 'system', 'policy'];
  const watchers = filters.map((f) => tc.watch('WatchMessages', f));
  try {
    await until('every WatchMessages stream to register', () => openCount('messages') === filters.length);
    const registered = feeder.stats().clients.filter((c) => c.open && c.stream === 'messages').map((c) => c.filter).sort();
    assert.deepEqual(registered, [...filters].sort());
    // Opening an alert stream makes the feeder say so on WatchMessages.
    const trigger = tc.watch('WatchAlerts', 'policy');
    watchers.push(trigger);
    await until('the alert stream to register', () => openCount('alerts') === 1);
    const id = feeder.stats().clients.find((c) => c.open && c.stream === 'alerts')?.id ?? '';
    assert.match(id, /\S/);
    const line = `Added a new client (${id}, policy) for WatchAlerts`;
    for (const [i, w] of watchers.slice(0, filters.length).entries()) {
      await until(`WatchMessages(${JSON.stringify(filters[i])}) to get "${line}"`, () => w.messages.some((m) => String(m.Message).startsWith(line)));
    }
    // One more round trip so that a stream that was about to end would have ended.
    assert.equal(await withTimeout(tc.health(7), 5000, 'HealthCheck'), 7);
    for (const [i, w] of watchers.slice(0, filters.length).entries()) {
      assert.equal(w.messages.filter((m) => String(m.Message).startsWith(line)).length, 1, `filter ${JSON.stringify(filters[i])}`);
      const ended = await Promise.race([w.ended, delay(20).then(() => undefined)]);
      assert.equal(ended, undefined, `WatchMessages(${JSON.stringify(filters[i])}) ended: ${JSON.stringify(ended)}`);
    }
  } finally {
    await closeAll(tc, watchers);
  }
});

test('rpc - routing by Type', { timeout: 20_000 }, async () => {
  const tc = connect(feeder.addresses.grpc);
  const alerts = tc.watch('WatchAlerts', 'all');
  const logs = tc.watch('WatchLogs', 'all');
  try {
    await until('both streams to register', () => openCount('alerts') === 1 && openCount('logs') === 1);
    feeder.push(alert('/r/1', 'MatchedPolicy'));
    feeder.push(log('/r/2', 'ContainerLog'));
    feeder.push(alert('/r/3', 'MatchedHostPolicy'));
    feeder.push(log('/r/4', 'HostLog'));
    feeder.push(alert('/r/5', 'SystemEvent'));
    feeder.push(log('/r/6', 'SystemLog'));
    // Sentinels: everything pushed before them has been routed once they arrive.
    feeder.push(alert('/r/alert-sentinel'));
    feeder.push(log('/r/log-sentinel'));
    await alerts.waitFor(4, 5000);
    await logs.waitFor(4, 5000);
    assert.deepEqual(
      alerts.messages.map((m) => [m.Type, m.Resource]),
      [['MatchedPolicy', '/r/1'], ['MatchedHostPolicy', '/r/3'], ['SystemEvent', '/r/5'], ['MatchedPolicy', '/r/alert-sentinel']],
    );
    assert.deepEqual(
      logs.messages.map((m) => [m.Type, m.Resource]),
      [['ContainerLog', '/r/2'], ['HostLog', '/r/4'], ['SystemLog', '/r/6'], ['ContainerLog', '/r/log-sentinel']],
    );
  } finally {
    await closeAll(tc, [alerts, logs]);
  }
});

// ---- hand-written protobuf for the reflection and health protocols ----

function varint(n: number): number[] {
  const out: number[] = [];
  let v = n >>> 0;
  while (v > 0x7f) {
    out.push((v & 0x7f) | 0x80);
    v >>>= 7;
  }
  out.push(v);
  return out;
}

/** A length-delimited field (wire type 2) holding a UTF-8 string. */
function stringField(field: number, s: string): Buffer {
  const bytes = Buffer.from(s, 'utf8');
  return Buffer.concat([Buffer.from([...varint((field << 3) | 2), ...varint(bytes.length)]), bytes]);
}

const identity = (b: Buffer): Buffer => b;

/** Sends ServerReflectionRequest{list_services: "*"} and returns the listed service names. */
function listServices(address: string, version: 'v1' | 'v1alpha'): Promise<string[]> {
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  return withTimeout(
    new Promise<string[]>((resolve, reject) => {
      const call = client.makeBidiStreamRequest(`/grpc.reflection.${version}.ServerReflection/ServerReflectionInfo`, identity, identity, new grpc.Metadata(), {
        deadline: Date.now() + 5000,
      });
      const names: string[] = [];
      let errorResponse: string | undefined;
      call.on('data', (b: Buffer) => {
        for (const f of walk(b)) {
          if (f.field === 7) errorResponse = walk(f.bytes ?? Buffer.alloc(0)).map((x) => x.bytes?.toString('utf8') ?? String(x.varint)).join(' ');
          if (f.field !== 6 || f.bytes === undefined) continue; // list_services_response
          for (const service of walk(f.bytes)) {
            if (service.field !== 1 || service.bytes === undefined) continue; // repeated ServiceResponse service = 1
            for (const nameField of walk(service.bytes)) if (nameField.field === 1) names.push(nameField.bytes?.toString('utf8') ?? '');
          }
        }
      });
      call.on('error', (err: Error) => reject(err));
      call.on('status', (s: grpc.StatusObject) => {
        if (s.code !== grpc.status.OK) return;
        if (errorResponse !== undefined) reject(new Error(`reflection error_response: ${errorResponse}`));
        else resolve(names);
      });
      call.write(stringField(7, '*')); // list_services = 7
      call.end();
    }),
    6000,
    `reflection ${version}`,
  ).finally(() => client.close());
}

test('rpc - server reflection lists feeder.LogService', { timeout: 15_000 }, async () => {
  for (const version of ['v1alpha', 'v1'] as const) {
    const names = await listServices(feeder.addresses.grpc, version);
    assert.ok(names.includes('feeder.LogService'), `${version} lists ${JSON.stringify(names)}`);
    assert.equal(names.filter((n) => n === 'feeder.LogService').length, 1, `${version} lists ${JSON.stringify(names)}`);
  }
});

const SERVING = HealthStatus.SERVING;

test('rpc - grpc.health.v1 reports SERVING on the health port', { timeout: 15_000 }, async () => {
  const healthAddress = feeder.addresses.health;
  assert.ok(healthAddress !== undefined, 'gRPCHealthPort 0 must give a health address');
  assert.match(healthAddress, /^127\.0\.0\.1:\d+$/);
  assert.notEqual(healthAddress, feeder.addresses.grpc, 'health runs on its own port (upstream v1.7.4+)');
  for (const service of ['feeder.LogService', '']) {
    assert.equal(await healthV1(healthAddress, service), SERVING, `health port, service ${JSON.stringify(service)}`);
  }
  // An unknown service is NOT_FOUND, as in grpc-go's health server.
  await assert.rejects(healthV1(healthAddress, 'no.such.Service'), (err: grpc.ServiceError) => err.code === grpc.status.NOT_FOUND);
  // Clients of upstream up to v1.7.3 ask on the main port; armorfeed serves it there too.
  assert.equal(await healthV1(feeder.addresses.grpc, 'feeder.LogService'), SERVING, 'main port');
});

test('rpc - a busy gRPCHealthPort fails createFeeder with a coded error and leaves no server running', { timeout: 15_000 }, async () => {
  const { outcome, exitedByItself, stderr } = await startWithBusyPort('gRPCHealthPort');
  assert.equal(outcome.started, false, 'createFeeder must reject when the health port is taken');
  assert.ok(exitedByItself, `after createFeeder rejected, something it started (the gRPC server on the main port) kept the process alive; outcome ${JSON.stringify(outcome)} ${stderr}`);
  assert.equal(outcome.armorfeedError, true, JSON.stringify(outcome));
  assert.match(String(outcome.message), /gRPCHealthPort/, 'the message names the key');
});

test('rpc - new client gets no replay', { timeout: 15_000 }, async () => {
  const before = feeder.stats().encoded;
  for (let i = 0; i < 5; i++) {
    feeder.push(alert(`/before/${i}`));
    feeder.push(log(`/before/${i}`));
  }
  await until('the early events to be fanned out', () => {
    const now = feeder.stats().encoded;
    return now.alerts === before.alerts + 5 && now.logs === before.logs + 5;
  });
  const tc = connect(feeder.addresses.grpc);
  const alerts = tc.watch('WatchAlerts', 'all');
  const logs = tc.watch('WatchLogs', 'system');
  try {
    await until('both streams to register', () => openCount('alerts') === 1 && openCount('logs') === 1);
    feeder.push(alert('/after'));
    feeder.push(log('/after'));
    await alerts.waitFor(1, 5000);
    await logs.waitFor(1, 5000);
    // A replayed event would arrive before the first live one.
    assert.deepEqual(alerts.messages.map((m) => m.Resource), ['/after']);
    assert.deepEqual(logs.messages.map((m) => m.Resource), ['/after']);
  } finally {
    await closeAll(tc, [alerts, logs]);
  }
});
