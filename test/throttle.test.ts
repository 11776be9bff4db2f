/**
 * The feeder's user-space alert throttle (kubearmor-wire.md 2.6): per container bucket,
 * the alert that crosses maxAlertPerSec becomes the AlertThreshold notice with every
 * other field kept, the rest are dropped (and counted as `throttled`, globally and per
 * alert client) until throttleSec after the window start; BPFLSM Block alerts are never
 * throttled; alertThrottling=false turns it off. Sentinel events (which pass) mark the
 * end of each burst, so "nothing else arrived" is exact without sleeping; the only
 * sleep is the wait for throttleSec to pass (about 2.2 s in all).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Feeder, FeederStats } from '../src/feeder';
import type { IngestEvent } from '../src/event';
import type { Watcher } from './helpers/client';
import { startWatched, type WatchedFeeder } from './helpers/feeder';
import { delay, until } from './helpers/wait';

const MAX = 3;
const THROTTLE_SEC = 2;

let watched: WatchedFeeder;
let feeder: Feeder;
let all: Watcher;
let policy: Watcher;

before(async () => {
  watched = await startWatched(
    { alertThrottling: true, maxAlertPerSec: MAX, throttleSec: THROTTLE_SEC },
    [['WatchAlerts', 'all'], ['WatchAlerts', 'policy']],
    'both alert streams to register',
    'alerts',
  );
  ({ feeder, watchers: [all, policy] } = watched);
});

after(async () => {
  await watched?.close();
});

/** An alert the throttle applies to: Audit from the eBPF monitor. */
const audit = (containerID: string, resource: string): IngestEvent => ({
  type: 'MatchedPolicy',
  operation: 'File',
  source: '/bin/cat',
  resource,
  containerID,
  namespaceName: 'prod',
  podName: 'web-0',
  policyName: `audit-${containerID}`,
  severity: '4',
  tags: 'NIST,CIS',
  action: 'Audit',
  enforcer: 'eBPF Monitor',
  pid: 41,
  hostPid: 4141,
});

/** An alert the throttle never applies to: a BPFLSM Block. */
const block = (containerID: string, resource: string): IngestEvent => ({
  type: 'MatchedPolicy',
  operation: 'File',
  source: '/bin/cat',
  resource,
  containerID,
  policyName: 'block-policy',
  action: 'Block',
  enforcer: 'BPFLSM',
});

/** Pushes events, then a sentinel that passes, and returns what both clients got up to the sentinel. */
async function burst(events: IngestEvent[], sentinel: string): Promise<Record<string, unknown>[]> {
  const n = all.messages.length;
  const m = policy.messages.length;
  for (const e of events) feeder.push(e);
  feeder.push(block('sentinel', sentinel));
  await until(`sentinel ${sentinel} on both clients`, () =>
    all.messages.slice(n).some((x) => x.Resource === sentinel) && policy.messages.slice(m).some((x) => x.Resource === sentinel),
  );
  const got = all.messages.slice(n);
  assert.deepEqual(policy.messages.slice(m), got, '"all" and "policy" clients get the same alerts');
  assert.equal(got[got.length - 1].Resource, sentinel, 'nothing after the sentinel');
  return got.slice(0, -1);
}

function throttledPerClient(s: FeederStats): number[] {
  return s.clients.filter((c) => c.open && c.stream === 'alerts').map((c) => c.dropped.throttled);
}

test('throttle - a burst gives maxAlertPerSec alerts, one AlertThreshold notice, then nothing', { timeout: 15_000 }, async () => {
  const before = feeder.stats();
  assert.equal(before.dropped.throttled, 0);
  const got = await burst(Array.from({ length: 10 }, (_, i) => audit('c-burst', `/burst/${i}`)), '/sentinel/burst');
  assert.equal(got.length, MAX + 1, JSON.stringify(got.map((m) => [m.Type, m.Resource])));
  assert.deepEqual(got.slice(0, MAX).map((m) => [m.Type, m.Operation, m.Resource]), [
    ['MatchedPolicy', 'File', '/burst/0'],
    ['MatchedPolicy', 'File', '/burst/1'],
    ['MatchedPolicy', 'File', '/burst/2'],
  ]);
  for (const m of got.slice(0, MAX)) {
    assert.equal(m.MaxAlertsPerSec, undefined, 'normal alerts carry no MaxAlertsPerSec');
    assert.equal(m.DroppingAlertsInterval, undefined);
  }
  const notice = got[MAX];
  assert.equal(notice.Type, 'SystemEvent');
  assert.equal(notice.Operation, 'AlertThreshold');
  assert.equal(notice.MaxAlertsPerSec, MAX);
  assert.equal(notice.DroppingAlertsInterval, THROTTLE_SEC);
  // Every other field of the alert that crossed the threshold is kept.
  assert.equal(notice.Resource, '/burst/3');
  assert.equal(notice.PolicyName, 'audit-c-burst');
  assert.equal(notice.ContainerID, 'c-burst');
  assert.equal(notice.NamespaceName, 'prod');
  assert.equal(notice.PodName, 'web-0');
  assert.equal(notice.Source, '/bin/cat');
  assert.equal(notice.Action, 'Audit');
  assert.equal(notice.Enforcer, 'eBPF Monitor');
  assert.equal(notice.Severity, '4');
  assert.deepEqual(notice.ATags, ['NIST', 'CIS']);
  assert.equal(notice.PID, 41);
  assert.equal(notice.HostPID, 4141);
  assert.equal(notice.Message, undefined, 'no Message text is added');
  assert.deepEqual(notice.ExecEvent, {});

  const s = feeder.stats();
  assert.equal(s.dropped.throttled, 6);
  assert.equal(s.notices, 1);
  assert.deepEqual(throttledPerClient(s), [6, 6]);
});

test('throttle - BPFLSM Block alerts are never throttled', { timeout: 15_000 }, async () => {
  const before = feeder.stats();
  const got = await burst(Array.from({ length: 20 }, (_, i) => block('c-block', `/block/${i}`)), '/sentinel/block');
  assert.deepEqual(got.map((m) => m.Resource), Array.from({ length: 20 }, (_, i) => `/block/${i}`));
  assert.ok(got.every((m) => m.Type === 'MatchedPolicy' && m.Operation === 'File'));
  const s = feeder.stats();
  assert.equal(s.dropped.throttled, before.dropped.throttled);
  assert.equal(s.notices, before.notices);
});

test('throttle - each containerID has its own bucket', { timeout: 15_000 }, async () => {
  const before = feeder.stats();
  const events: IngestEvent[] = [];
  for (let i = 0; i < 6; i++) {
    events.push(audit('c-one', `/one/${i}`));
    events.push(audit('c-two', `/two/${i}`));
  }
  const got = await burst(events, '/sentinel/buckets');
  assert.deepEqual(got.map((m) => [m.Operation, m.Resource]), [
    ['File', '/one/0'],
    ['File', '/two/0'],
    ['File', '/one/1'],
    ['File', '/two/1'],
    ['File', '/one/2'],
    ['File', '/two/2'],
    ['AlertThreshold', '/one/3'],
    ['AlertThreshold', '/two/3'],
  ]);
  const s = feeder.stats();
  assert.equal(s.dropped.throttled - before.dropped.throttled, 4);
  assert.equal(s.notices - before.notices, 2);
  assert.deepEqual(
    throttledPerClient(s).map((n, i) => n - throttledPerClient(before)[i]),
    [4, 4],
  );
});

test('throttle - host policy alerts from AppArmor share one bucket; Audit from AppArmor on a container is not throttled', { timeout: 15_000 }, async () => {
  const before = feeder.stats();
  const host = (resource: string): IngestEvent => ({ type: 'MatchedHostPolicy', operation: 'Process', source: '/usr/sbin/sshd', resource, action: 'Block', enforcer: 'AppArmor' });
  const apparmorAudit = (resource: string): IngestEvent => ({ ...audit('c-apparmor', resource), enforcer: 'AppArmor' });
  const got = await burst(
    [host('/host/0'), apparmorAudit('/aa/0'), host('/host/1'), apparmorAudit('/aa/1'), host('/host/2'), apparmorAudit('/aa/2'), host('/host/3'), apparmorAudit('/aa/3'), host('/host/4'), apparmorAudit('/aa/4')],
    '/sentinel/host',
  );
  assert.deepEqual(got.map((m) => [m.Type, m.Resource]), [
    ['MatchedHostPolicy', '/host/0'],
    ['MatchedPolicy', '/aa/0'],
    ['MatchedHostPolicy', '/host/1'],
    ['MatchedPolicy', '/aa/1'],
    ['MatchedHostPolicy', '/host/2'],
    ['MatchedPolicy', '/aa/2'],
    ['SystemEvent', '/host/3'],
    ['MatchedPolicy', '/aa/3'],
    ['MatchedPolicy', '/aa/4'],
  ]);
  assert.equal(feeder.stats().dropped.throttled - before.dropped.throttled, 1);
});

test('throttle - once throttleSec has passed since the window start, alerts flow again', { timeout: 15_000 }, async () => {
  const t0 = Date.now();
  const first = await burst(Array.from({ length: 5 }, (_, i) => audit('c-recover', `/recover/${i}`)), '/sentinel/recover-1');
  assert.deepEqual(first.map((m) => [m.Operation, m.Resource]), [
    ['File', '/recover/0'],
    ['File', '/recover/1'],
    ['File', '/recover/2'],
    ['AlertThreshold', '/recover/3'],
  ]);
  // Past the 1 s window but inside throttleSec: still dropped.
  await delay(Math.max(0, t0 + 1200 - Date.now()));
  const during = await burst([audit('c-recover', '/recover/late')], '/sentinel/recover-2');
  assert.deepEqual(during, [], 'dropped while throttleSec has not passed');
  await delay(Math.max(0, t0 + THROTTLE_SEC * 1000 + 150 - Date.now()));
  const afterwards = await burst([audit('c-recover', '/recover/again-0'), audit('c-recover', '/recover/again-1')], '/sentinel/recover-3');
  assert.deepEqual(afterwards.map((m) => [m.Type, m.Operation, m.Resource]), [
    ['MatchedPolicy', 'File', '/recover/again-0'],
    ['MatchedPolicy', 'File', '/recover/again-1'],
  ]);
});

test('throttle - with alertThrottling false nothing is throttled', { timeout: 15_000 }, async () => {
  const offWatched = await startWatched({ alertThrottling: false, maxAlertPerSec: MAX, throttleSec: THROTTLE_SEC }, [['WatchAlerts', 'all']], 'the alert stream to register');
  const { feeder: off, watchers: [w] } = offWatched;
  try {
    for (let i = 0; i < 10; i++) off.push(audit('c-off', `/off/${i}`));
    await w.waitFor(10, 5000);
    off.push(block('sentinel', '/sentinel/off'));
    await w.waitFor(11, 5000);
    assert.deepEqual(w.messages.map((m) => [m.Type, m.Operation, m.Resource]), [
      ...Array.from({ length: 10 }, (_, i) => ['MatchedPolicy', 'File', `/off/${i}`]),
      ['MatchedPolicy', 'File', '/sentinel/off'],
    ]);
    const s = off.stats();
    assert.equal(s.dropped.throttled, 0);
    assert.equal(s.notices, 0);
    assert.deepEqual(s.clients.map((x) => x.dropped.throttled), [0]);
  } finally {
    await offWatched.close();
  }
});
