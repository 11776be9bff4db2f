/**
 * Configuration: one typed object read from flags, then ARMORFEED_* environment, then a
 * YAML file, then defaults, and checked at start-up. Bad values exit `serve` with
 * status 2 and a message that names the key; upstream key names (gRPC, cluster, ...)
 * and flag spellings (alert-every) are accepted. The precedence is checked through
 * loadConfig and once end to end against a running server.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { envName, loadConfig, whenFullFor } from '../src/config';
import { awaitExit, exitCodeOf } from './helpers/child';
import { connect } from './helpers/client';
import { seqLog } from './helpers/events';
import { armorfeedMain, startServe } from './helpers/serve';

const LOOPBACK = ['--bind', '127.0.0.1', '--gRPC', '0', '--gRPCHealthPort', '0', '--metricsPort', '0'];
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'armorfeed-config-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function yamlFile(name: string, text: string): string {
  const file = path.join(tmp, name);
  fs.writeFileSync(file, text);
  return file;
}

/** The environment without any armorfeed or KubeArmor configuration the test runner may carry. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('ARMORFEED_') && k !== 'KUBEARMOR_CFG') env[k] = v;
  return { ...env, ...extra };
}

interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `node dist/src/cli/main.js ARGS` to completion; kills it (and fails) after `timeoutMs`. */
function run(args: string[], env: NodeJS.ProcessEnv = cleanEnv(), timeoutMs = 10_000): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [armorfeedMain, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => {
      stdout += c;
    });
    child.stderr.setEncoding('utf8').on('data', (c: string) => {
      stderr += c;
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`armorfeed ${args.join(' ')} still running after ${timeoutMs} ms (the bad value was accepted?)\n${stderr.slice(-2000)}`));
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

async function expectUsageError(args: string[], names: RegExp[], env?: NodeJS.ProcessEnv): Promise<void> {
  const r = await run(['serve', ...LOOPBACK, ...args], env);
  assert.equal(r.code, 2, `exit status for serve ${args.join(' ')}; stderr:\n${r.stderr}`);
  for (const re of names) assert.match(r.stderr, re, `the message names the key (${re})`);
  assert.doesNotMatch(r.stderr, /armorfeed: listening/, 'the server never started');
  assert.doesNotMatch(r.stderr, /^\s+at /m, 'no stack trace for a usage error');
}

test('config - --queueSize abc exits 2 naming queueSize', { timeout: 15_000 }, async () => {
  await expectUsageError(['--queueSize', 'abc'], [/queueSize/, /abc/]);
});

test('config - --queueSize 0 exits 2 naming queueSize', { timeout: 15_000 }, async () => {
  await expectUsageError(['--queueSize', '0'], [/queueSize/]);
});

test('config - --source bogus exits 2 naming source', { timeout: 15_000 }, async () => {
  await expectUsageError(['--source', 'bogus'], [/\bsource\b/, /bogus/]);
});

test('config - --alertThrottling maybe exits 2 naming alertThrottling', { timeout: 15_000 }, async () => {
  await expectUsageError(['--alertThrottling', 'maybe'], [/alertThrottling/, /maybe/]);
});

test('config - --tcp nonsense with --source tcp exits 2 naming tcp', { timeout: 15_000 }, async () => {
  await expectUsageError(['--source', 'tcp', '--tcp', 'nonsense'], [/\btcp\b/, /nonsense/]);
});

test('config - --ingestWhenFull sometimes exits 2 naming ingestWhenFull', { timeout: 15_000 }, async () => {
  await expectUsageError(['--ingestWhenFull', 'sometimes'], [/ingestWhenFull/, /sometimes/]);
});

test('config - ingestWhenFull: one mode for every source, or per source; synthetic never blocks', () => {
  const resolve = (value: string | undefined): Record<string, string> => {
    const c = loadConfig({ flags: value === undefined ? {} : { ingestWhenFull: value }, env: {} });
    return Object.fromEntries((['socket', 'tcp', 'jsonl', 'synthetic'] as const).map((k) => [k, whenFullFor(c, k)]));
  };
  assert.deepEqual(resolve(undefined), { socket: 'block', tcp: 'block', jsonl: 'block', synthetic: 'drop' });
  assert.deepEqual(resolve('drop'), { socket: 'drop', tcp: 'drop', jsonl: 'drop', synthetic: 'drop' });
  assert.deepEqual(resolve('socket:drop, jsonl=block'), { socket: 'drop', tcp: 'block', jsonl: 'block', synthetic: 'drop' });
  for (const bad of ['synthetic:block', 'socket:wait', 'socket', '']) {
    assert.throws(() => loadConfig({ flags: { ingestWhenFull: bad }, env: {} }), (err: Error & { code?: string }) => err.code === 'ERR_CONFIG_INVALID' && /ingestWhenFull/.test(err.message), bad);
  }
  const fromEnv = loadConfig({ flags: {}, env: { ARMORFEED_INGEST_WHEN_FULL: 'tcp:drop' } });
  assert.equal(whenFullFor(fromEnv, 'tcp'), 'drop');
});

test('config - an unknown option exits 2 naming it', { timeout: 15_000 }, async () => {
  await expectUsageError(['--nope'], [/--nope/]);
});

test('config - an unknown option exits 2 even when nobody reads stderr', { timeout: 15_000 }, async () => {
  for (const args of [['serve', '--nope'], ['serve', ...LOOPBACK, '--queueSize', 'abc'], ['--nope']]) {
    const child = spawn(process.execPath, [armorfeedMain, ...args], { env: cleanEnv(), stdio: ['ignore', 'ignore', 'pipe'] });
    // The reader goes away before armorfeed writes its message (a closed pipe: EPIPE).
    child.stderr.destroy();
    const code = await awaitExit(child, exitCodeOf(child), 10_000);
    assert.equal(code, 2, `armorfeed ${args.join(' ')}`);
  }
});

test('config - ARMORFEED_QUEUE_SIZE=-5 exits 2 naming queueSize and the variable', { timeout: 15_000 }, async () => {
  await expectUsageError([], [/queueSize/, /ARMORFEED_QUEUE_SIZE/], cleanEnv({ ARMORFEED_QUEUE_SIZE: '-5' }));
});

test('config - a YAML file with an unknown key exits 2 naming the key', { timeout: 15_000 }, async () => {
  const file = yamlFile('unknown-key.yaml', 'cluster: c1\nqueueSzie: 10\n');
  await expectUsageError(['--config', file], [/queueSzie/, /ERR_CONFIG_UNKNOWN_KEY/]);
});

test('config - a file that is not valid YAML exits 2 naming the file', { timeout: 15_000 }, async () => {
  const file = yamlFile('broken.yaml', 'cluster: [unclosed\n  queueSize: : :\n');
  await expectUsageError(['--config', file], [/ERR_CONFIG_FILE/, new RegExp(file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')), /YAML/]);
});

test('config - serve --help exits 0 and lists --gRPC', { timeout: 15_000 }, async () => {
  const r = await run(['serve', '--help']);
  assert.equal(r.code, 0, r.stderr);
  const text = r.stdout + r.stderr;
  assert.match(text, /--gRPC\b/);
  assert.match(text, /--alert-every\b/);
  assert.match(text, /--config\b/);
});

test('config - flag beats environment beats file beats default (loadConfig)', () => {
  const file = yamlFile('precedence.yaml', 'cluster: from-file\nhost: from-file\nqueueSize: 11\nmaxAlertPerSec: 7\n');
  const env = { ARMORFEED_CLUSTER: 'from-env', ARMORFEED_HOST: 'from-env', ARMORFEED_MAX_ALERT_PER_SEC: '8' };
  const c = loadConfig({ flags: { cluster: 'from-flag' }, env, file });
  assert.equal(c.cluster, 'from-flag', 'flag over env and file');
  assert.equal(c.host, 'from-env', 'env over file');
  assert.equal(c.maxAlertPerSec, 8, 'env over file');
  assert.equal(c.queueSize, 11, 'file over default');
  assert.equal(c.throttleSec, 30, 'default when nobody sets it');

  // The file may also come from ARMORFEED_CONFIG or upstream's KUBEARMOR_CFG.
  assert.equal(loadConfig({ flags: {}, env: { ARMORFEED_CONFIG: file } }).queueSize, 11);
  assert.equal(loadConfig({ flags: {}, env: { KUBEARMOR_CFG: file } }).queueSize, 11);
  assert.equal(loadConfig({ flags: {}, env: {} }).queueSize, 4000, 'default queue size');
  // A flag given as a string is checked like any other value.
  assert.throws(() => loadConfig({ flags: { queueSize: '0' }, env: {} }), (err: Error & { code?: string }) => err.code === 'ERR_CONFIG_INVALID' && /queueSize/.test(err.message));
});

test('config - upstream key names and flag spellings are accepted in the YAML file', () => {
  const file = yamlFile(
    'upstream.yaml',
    [
      'gRPC: 32000',
      'cluster: prod-eu',
      'host: node-7',
      'logPath: stdout',
      'alertThrottling: false',
      'maxAlertPerSec: 3',
      'throttleSec: 9',
      'alert-every: 4',
      'wait-clients: 2',
      '',
    ].join('\n'),
  );
  const c = loadConfig({ flags: {}, env: {}, file });
  assert.deepEqual(
    {
      gRPC: c.gRPC,
      cluster: c.cluster,
      host: c.host,
      logPath: c.logPath,
      alertThrottling: c.alertThrottling,
      maxAlertPerSec: c.maxAlertPerSec,
      throttleSec: c.throttleSec,
      alertEvery: c.alertEvery,
      waitClients: c.waitClients,
    },
    { gRPC: 32000, cluster: 'prod-eu', host: 'node-7', logPath: 'stdout', alertThrottling: false, maxAlertPerSec: 3, throttleSec: 9, alertEvery: 4, waitClients: 2 },
  );
  // The config-key spelling of a dashed flag works in the file as well.
  assert.equal(loadConfig({ flags: {}, env: {}, file: yamlFile('keys.yaml', 'alertEvery: 6\n') }).alertEvery, 6);
});

test('config - environment variables are ARMORFEED_ plus the key in upper snake case', () => {
  // The rule and its examples as src/config documents them (gRPC -> ARMORFEED_GRPC).
  assert.equal(envName('gRPC'), 'ARMORFEED_GRPC');
  assert.equal(envName('alertEvery'), 'ARMORFEED_ALERT_EVERY');
  assert.equal(envName('queueSize'), 'ARMORFEED_QUEUE_SIZE');
  assert.equal(envName('gRPCHealthPort'), 'ARMORFEED_GRPC_HEALTH_PORT');
  assert.equal(envName('machineIDPath'), 'ARMORFEED_MACHINE_ID_PATH');
  assert.equal(loadConfig({ flags: {}, env: { ARMORFEED_GRPC: '4000' } }).gRPC, 4000);
});

test('config - flag beats environment beats file beats default, end to end', { timeout: 30_000 }, async () => {
  const file = yamlFile('e2e.yaml', 'cluster: from-file\nhost: from-file\nqueueSize: 77\n');
  const serve = await startServe(['serve', ...LOOPBACK, '--config', file, '--cluster', 'from-flag'], {
    env: cleanEnv({ ARMORFEED_CLUSTER: 'from-env', ARMORFEED_HOST: 'from-env' }),
  });
  const conn = connect(serve.addresses.grpc);
  try {
    const messages = conn.watch('WatchMessages', '');
    // Registering a stream is itself announced on WatchMessages.
    await messages.waitFor(1, 10_000);
    const m = messages.messages[0];
    assert.equal(m.Type, 'Message');
    assert.equal(m.ClusterName, 'from-flag', 'flag over env and file');
    assert.equal(m.HostName, 'from-env', 'env over file');
    const res = await fetch(`http://${serve.addresses.metrics}/stats`);
    const stats = (await res.json()) as { clients: { stream: string; queueCapacity: number }[] };
    assert.deepEqual(stats.clients.map((c) => [c.stream, c.queueCapacity]), [['messages', 77]], 'file over default');
  } finally {
    conn.close();
    const exit = await serve.stop('SIGTERM', 10_000);
    assert.equal(exit.code, 0, exit.stderr.slice(-2000));
  }
});

/** The error a promise rejects with, or a failure when it resolves (closing what it started). */
async function rejection(started: Promise<{ close(): Promise<unknown> }>): Promise<Error & { code?: string; key?: string }> {
  const outcome = await started.then(
    async (running) => {
      await running.close();
      return undefined;
    },
    (err: unknown) => err as Error,
  );
  assert.ok(outcome !== undefined, 'expected a rejection, but it started');
  return outcome;
}

/** The error `f` throws (it must throw). */
function thrown(f: () => unknown): Error & { code?: string; key?: string } {
  try {
    f();
  } catch (err) {
    return err as Error;
  }
  assert.fail('expected a throw');
}

/** A ConfigError's words without where the value came from: `queueSize (flag --queueSize): must ...` -> `queueSize: must ...`. */
function withoutOrigin(message: string): string {
  return message.replace(/^(\w+) \([^)]*\):/, '$1:');
}

// [key, the value given to createFeeder, the same value as a flag]: one of each rule of the option table.
const badValues: [string, unknown, string][] = [
  ['queueSize', -5, '-5'],
  ['queueSize', 10_000_001, '10000001'],
  ['gRPC', 70_000, '70000'],
  ['mainLoopStallMs', 100, '100'],
  ['encoderThreads', 0, '0'],
  ['maxEventBytes', 100, '100'],
  ['tlsCertProvider', 'vault', 'vault'],
  ['socketMode', '0999', '0999'],
  ['ingestWhenFull', 'wait', 'wait'],
  ['source', ['bogus'], 'bogus'],
];
const apiBase = { gRPC: 0, bind: '127.0.0.1', gRPCHealthPort: -1, metricsPort: -1 };

test('config - createFeeder rejects each value the CLI rejects, with the same code and words (one table of bounds)', async () => {
  const { createFeeder } = await import('../src/feeder');
  for (const [key, value, flag] of badValues) {
    const cli = thrown(() => loadConfig({ flags: { [key]: flag }, env: {} }));
    const api = await rejection(createFeeder({ ...apiBase, [key]: value }));
    const what = `${key}=${JSON.stringify(value)}`;
    assert.equal(cli.code, 'ERR_CONFIG_INVALID', `${what}: ${cli.message}`);
    assert.equal(api.code, cli.code, `${what}: ${api.message}`);
    assert.equal(api.constructor, cli.constructor, what);
    assert.equal(withoutOrigin(api.message), withoutOrigin(cli.message), what);
    assert.match(api.message, new RegExp(`^${key} \\(option\\): `), what);
  }
});

test('config - createFeeder checks the types a flag cannot get wrong: a number as a string, a boolean as a word', async () => {
  const { createFeeder } = await import('../src/feeder');
  for (const [bad, key] of [[{ queueSize: '7' }, 'queueSize'], [{ alertThrottling: 'yes' }, 'alertThrottling'], [{ socketMode: 0o660 }, 'socketMode']] as const) {
    const err = await rejection(createFeeder({ ...apiBase, ...bad } as never));
    assert.equal(err.code, 'ERR_CONFIG_INVALID', err.message);
    assert.match(err.message, new RegExp(`^${key} \\(option\\): `), JSON.stringify(bad));
  }
});

test('config - createFeeder and createRelay reject a key no option has, as the CLI rejects an unknown flag', async () => {
  const { createFeeder } = await import('../src/feeder');
  const { createRelay } = await import('../src/relay');
  const cli = thrown(() => loadConfig({ flags: { queueSizes: '5' } as never, env: {} }));
  assert.equal(cli.code, 'ERR_CONFIG_UNKNOWN_KEY');
  for (const made of [createFeeder({ ...apiBase, queueSizes: 5 } as never), createRelay({ ...apiBase, feeders: '127.0.0.1:1', queueSizes: 5 } as never)]) {
    const err = await rejection(made);
    assert.equal(err.code, 'ERR_CONFIG_UNKNOWN_KEY', err.message);
    assert.match(err.message, /^queueSizes: unknown option; known options: .*queueSize/);
  }
});

test('config - createRelay checks its object with the same table', async () => {
  const { createRelay } = await import('../src/relay');
  const err = await rejection(createRelay({ ...apiBase, feeders: '127.0.0.1:1', queueSize: -5 }));
  assert.equal(err.code, 'ERR_CONFIG_INVALID');
  assert.equal(withoutOrigin(err.message), withoutOrigin(thrown(() => loadConfig({ flags: { queueSize: '-5' }, env: {}, command: 'relay' })).message));
});

test('config - createFeeder accepts a valid object at the edges of the table, and keeps its values', async () => {
  const { createFeeder } = await import('../src/feeder');
  const feeder = await createFeeder({ ...apiBase, queueSize: 1, mainLoopStallMs: 200, maxEventBytes: 256, socketMode: '0600', ingestWhenFull: 'socket:drop,tcp:block', tlsCertProvider: 'external' });
  try {
    assert.deepEqual(
      [feeder.config.queueSize, feeder.config.mainLoopStallMs, feeder.config.maxEventBytes, feeder.config.socketMode, feeder.config.ingestWhenFull],
      [1, 200, 256, '0600', 'socket:drop,tcp:block'],
    );
    assert.equal(feeder.push(seqLog(1)), true, 'it runs: an event is admitted');
  } finally {
    await feeder.close();
  }
});

test('config - TLS keys: upstream names and defaults, from flags, environment and file', () => {
  const d = loadConfig({ flags: {}, env: {} });
  assert.deepEqual(
    { tlsEnabled: d.tlsEnabled, tlsCertPath: d.tlsCertPath, tlsCertProvider: d.tlsCertProvider, metricsTLS: d.metricsTLS },
    { tlsEnabled: false, tlsCertPath: '/var/lib/kubearmor/tls', tlsCertProvider: 'self', metricsTLS: false },
  );
  assert.equal(envName('tlsCertPath'), 'ARMORFEED_TLS_CERT_PATH');
  assert.equal(envName('metricsTLS'), 'ARMORFEED_METRICS_TLS');
  const file = yamlFile('tls.yaml', 'tlsEnabled: true\ntlsCertProvider: external\ntlsCertPath: /from/file\n');
  const c = loadConfig({ flags: { metricsTLS: true }, env: { ARMORFEED_TLS_CERT_PATH: '/from/env' }, file });
  assert.deepEqual(
    { tlsEnabled: c.tlsEnabled, tlsCertPath: c.tlsCertPath, tlsCertProvider: c.tlsCertProvider, metricsTLS: c.metricsTLS },
    { tlsEnabled: true, tlsCertPath: '/from/env', tlsCertProvider: 'external', metricsTLS: true },
  );
});

test('config - --tlsCertProvider vault exits 2 naming tlsCertProvider and the choices', { timeout: 15_000 }, async () => {
  await expectUsageError(['--tlsCertProvider', 'vault'], [/tlsCertProvider/, /vault/, /self, external/]);
});

test('config - --metricsTLS without --tlsEnabled exits 2 naming metricsTLS', { timeout: 15_000 }, async () => {
  await expectUsageError(['--metricsTLS'], [/metricsTLS/, /tlsEnabled/]);
});
