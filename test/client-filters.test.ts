/**
 * karmor's client-side filter rules (kubearmor-wire.md 3.4) and the `log` flag checks.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError } from '../src/errors';
import { EventFilter, FeederWatch, alertSpec, backoffDelay, goFields, logSpec } from '../src/client';
import { logOptionsFromFlags, resolveTarget } from '../src/cli/log';

const log = (rec: Record<string, unknown>) => goFields(logSpec, rec);

test('filters - namespace, logType, operation, container and pod are case-insensitive and unanchored', () => {
  const ev = log({ NamespaceName: 'WordPress-MySQL', Type: 'ContainerLog', Operation: 'File', ContainerName: 'MySQL', PodName: 'mysql-0' });
  assert.ok(new EventFilter({ namespace: 'mysql' }).matches(ev));
  assert.ok(new EventFilter({ logType: 'containerlog' }).matches(ev));
  assert.ok(new EventFilter({ operation: '^file$' }).matches(ev));
  assert.ok(new EventFilter({ container: 'sql' }).matches(ev));
  assert.ok(new EventFilter({ pod: 'MYSQL-\\d' }).matches(ev));
  assert.ok(!new EventFilter({ namespace: '^default$' }).matches(ev));
});

test('filters - source and resource are case-sensitive', () => {
  const ev = log({ Source: '/usr/bin/Curl', Resource: '/etc/Passwd' });
  assert.ok(new EventFilter({ source: 'Curl' }).matches(ev));
  assert.ok(!new EventFilter({ source: 'curl' }).matches(ev));
  assert.ok(new EventFilter({ resource: 'Passwd$' }).matches(ev));
  assert.ok(!new EventFilter({ resource: 'passwd' }).matches(ev));
  assert.ok(new EventFilter({ resource: '(?i)passwd' }).matches(ev), 'a leading Go (?i) flag still works');
});

test('filters - an empty (omitted) field never matches, even a match-all pattern', () => {
  const host = log({ HostName: 'node', Type: 'HostLog', NamespaceName: '' });
  assert.ok(!new EventFilter({ namespace: '.*' }).matches(host));
  assert.ok(new EventFilter({ logType: '.*' }).matches(host));
});

test('filters - labels pass when any selector equals one k=v item; events without Labels skip the check', () => {
  const pod = log({ Labels: 'app=nginx,tier=web' });
  assert.ok(new EventFilter({ labels: ['tier=web'] }).matches(pod));
  assert.ok(new EventFilter({ labels: ['x=y', 'app=nginx'] }).matches(pod));
  assert.ok(!new EventFilter({ labels: ['app=ngin'] }).matches(pod), 'exact match only');
  assert.ok(new EventFilter({ labels: ['app=nginx'] }).matches(log({ HostName: 'node' })));
});

test('filters - all filters must pass together', () => {
  const ev = goFields(alertSpec, { NamespaceName: 'default', Operation: 'Network', Labels: 'app=a' });
  assert.ok(new EventFilter({ namespace: 'default', operation: 'net', labels: ['app=a'] }).matches(ev));
  assert.ok(!new EventFilter({ namespace: 'default', operation: 'file' }).matches(ev));
});

test('filters - a bad pattern is a ConfigError naming the flag', () => {
  assert.throws(() => new EventFilter({ namespace: '(' }), (e: unknown) => e instanceof ConfigError && e.key === '--namespace');
  assert.throws(() => new EventFilter({ pod: '(?z)x' }), (e: unknown) => e instanceof ConfigError && e.key === '--pod');
  // Go's regexp has no backreferences or lookaround; neither does karmor, so neither do we.
  assert.throws(() => new EventFilter({ container: '(a)\\1' }), (e: unknown) => e instanceof ConfigError && e.key === '--container');
  assert.throws(() => new EventFilter({ source: '(?=x)x' }), (e: unknown) => e instanceof ConfigError && e.key === '--source');
});

test('filters - patterns are Go regexps: RE2 syntax, linear-time matching', { timeout: 10_000 }, () => {
  const ev = log({ NamespaceName: 'kube-system-monitoring', PodName: 'Ωmega-0', Source: '/bin/aaab' });
  assert.ok(new EventFilter({ pod: '^\\pL+-\\d$' }).matches(ev), 'Unicode classes');
  assert.ok(new EventFilter({ source: '(?U)a+b' }).matches(ev), 'the (?U) flag');
  // A backtracking engine takes tens of seconds on this 22-character namespace; RE2 does not backtrack.
  assert.ok(!new EventFilter({ namespace: '(.*.*)*x' }).matches(ev));
  assert.ok(new EventFilter({ namespace: '(.*.*)*M' }).matches(ev), 'case-insensitive');
});

test('watch - a filter armorfeed would refuse as a server-side filter stays on this side', () => {
  const watch = (namespace: string) =>
    new FeederWatch(
      { target: '127.0.0.1:1', streams: { messages: false, alerts: true, logs: true }, logFilter: 'all', serverFilter: { namespace, operation: 'File' }, reconnect: false, backoff: { initialMs: 1, maxMs: 1 }, healthTimeoutMs: 1 },
      { onEvent: () => undefined, onStatus: () => undefined },
    );
  assert.deepEqual(watch('wordpress').skippedServerFilterKeys, []);
  const skipped = watch(`wordpress|${'a'.repeat(300)}`).skippedServerFilterKeys;
  assert.deepEqual(skipped.map((s) => s.key), ['namespace']);
  assert.match(skipped[0].why, /ERR_FILTER_TOO_COMPLEX/);
  assert.deepEqual(watch('(ab){1000}').skippedServerFilterKeys.map((s) => s.key), ['namespace'], 'too many instructions');
});

test('log flags - a bare port or :port means localhost; KUBEARMOR_SERVICE is the fallback', () => {
  assert.equal(resolveTarget('32767', undefined).target, 'localhost:32767');
  assert.equal(resolveTarget(':5000', undefined).target, 'localhost:5000');
  assert.equal(resolveTarget('10.0.0.1:32767', 'x:1').target, '10.0.0.1:32767');
  assert.equal(resolveTarget(undefined, 'relay.kubearmor:32767').target, 'relay.kubearmor:32767');
  assert.equal(resolveTarget(undefined, '9000').target, 'localhost:9000');
  assert.equal(resolveTarget(undefined, undefined).target, 'localhost:32767');
  assert.throws(() => resolveTarget('70000', undefined), ConfigError);
});

const baseFlags = {
  logFilter: 'policy' as const,
  msgPath: 'none',
  logPath: 'stdout',
  output: 'text' as const,
  labels: [],
  limit: '0',
  reconnect: true,
  serverFilter: true,
  backoffInitial: '250',
  backoffMax: '10000',
  healthTimeout: '10000',
};

test('log flags - nothing to watch, a bad limit or a bad regex is a ConfigError', () => {
  assert.throws(() => logOptionsFromFlags({ ...baseFlags, logPath: 'none' }, {}), ConfigError);
  assert.throws(() => logOptionsFromFlags({ ...baseFlags, limit: '-1' }, {}), ConfigError);
  assert.throws(() => logOptionsFromFlags({ ...baseFlags, limit: '4294967296' }, {}), ConfigError);
  assert.throws(() => logOptionsFromFlags({ ...baseFlags, operation: '[' }, {}), ConfigError);
  assert.throws(() => logOptionsFromFlags({ ...baseFlags, backoffMax: '10' }, {}), ConfigError);
  assert.equal(logOptionsFromFlags({ ...baseFlags, limit: '4294967295' }, {}).limit, 4294967295);
});

test('watch - reconnect delays grow exponentially, stay under the cap and keep jitter', () => {
  const b = { initialMs: 100, maxMs: 1000 };
  assert.equal(backoffDelay(0, b, () => 0), 50);
  assert.equal(backoffDelay(0, b, () => 1), 100);
  assert.equal(backoffDelay(3, b, () => 1), 800);
  assert.equal(backoffDelay(10, b, () => 1), 1000);
  assert.equal(backoffDelay(50, b, () => 0), 500);
});
