/**
 * tls - mutual TLS on the feeder port (tlsEnabled), as upstream: a client must present a
 * certificate from ca.crt. Real `armorfeed serve` processes on 127.0.0.1; real clients:
 * the Python grpcio client (test/interop/feeder_client.py), `armorfeed log --secure`,
 * grpc-js and Node's https. Certificates are made with openssl in a temp directory, and
 * replaced under the running server the two ways it happens in practice (a rename over
 * each file; a Kubernetes secret volume's `..data` symlink swap).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as os from 'node:os';
import * as path from 'node:path';
import type { TLSSocket } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import type { FeederStats } from '../src/feeder';
import { copyFiles, makeCertSet, projectSecret, renameOver } from './helpers/certs';
import { connect } from './helpers/client';
import { describeRun, generatePythonStubs, runFeederClient, type ClientRun } from './helpers/python';
import { armorfeedMain, fetchStats, startServe, type ServeProcess } from './helpers/serve';
import { waitUntil } from './helpers/wait';

const SERVE = ['serve', '--bind', '127.0.0.1', '--gRPC', '0', '--gRPCHealthPort', '0', '--metricsPort', '0'];
const SYNTHETIC = ['--source', 'synthetic', '--rate', '200', '--count', '0', '--alert-every', '3'];
/** A client that is served finishes well within this; one that is refused gives up after it. */
const SERVED_TIMEOUT_S = 20;
const REFUSED_TIMEOUT_S = 4;
/** fs.watch sees a change within ~0.2 s; the poll (5 s) is the bound. */
const RELOAD_WAIT_MS = 15_000;

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'armorfeed-tls-'));
let genDir = '';
/** Two independent CAs, each with a server and a client certificate. */
let setA = '';
let setB = '';

before(() => {
  setA = makeCertSet(path.join(tmp, 'a'), 'ca-a', 'rsa');
  setB = makeCertSet(path.join(tmp, 'b'), 'ca-b', 'ec');
  genDir = generatePythonStubs();
});

after(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
  if (genDir !== '') fs.rmSync(genDir, { recursive: true, force: true });
});

interface PythonTls {
  /** Directory whose ca.crt verifies the server; plaintext when absent. */
  caFrom?: string;
  /** Directory whose client.crt/client.key are presented. */
  clientFrom?: string;
}

/** The Python client against `addr`: a few alerts and logs when it is served, a bounded failure when refused. */
function python(addr: string, tls: PythonTls, extra: { healthAddr?: string; refused?: boolean } = {}): Promise<ClientRun> {
  const timeout = extra.refused === true ? REFUSED_TIMEOUT_S : SERVED_TIMEOUT_S;
  const args = ['--addr', addr, '--gen-dir', genDir, '--alerts', '5', '--logs', '5', '--timeout', String(timeout)];
  if (tls.caFrom !== undefined) args.push('--ca', path.join(tls.caFrom, 'ca.crt'));
  if (tls.clientFrom !== undefined) args.push('--cert', path.join(tls.clientFrom, 'client.crt'), '--key', path.join(tls.clientFrom, 'client.key'));
  if (extra.healthAddr !== undefined) args.push('--health-addr', extra.healthAddr);
  return runFeederClient(args, timeout + 10);
}

function kinds(run: ClientRun, kind: string): number {
  return run.lines.filter((l) => l.kind === kind).length;
}

function assertServed(run: ClientRun, what: string): void {
  const why = `${what}\n${describeRun(run)}`;
  assert.equal(run.code, 0, why);
  const nonce = run.lines.find((l) => l.kind === 'nonce');
  assert.ok(nonce !== undefined && nonce.retval === nonce.sent, `HealthCheck must echo the nonce: ${why}`);
  assert.equal(kinds(run, 'alert'), 5, why);
  assert.equal(kinds(run, 'log'), 5, why);
}

function assertRefused(run: ClientRun, what: string): void {
  const why = `${what}\n${describeRun(run)}`;
  assert.equal(run.code, 1, `must fail: ${why}`);
  assert.equal(kinds(run, 'nonce'), 0, `no HealthCheck may succeed: ${why}`);
  assert.equal(kinds(run, 'alert') + kinds(run, 'log'), 0, `no event may arrive: ${why}`);
  const summary = run.lines.find((l) => l.kind === 'summary');
  const errors = JSON.stringify(summary?.errors ?? []);
  assert.match(errors, /UNAVAILABLE|not ready/, `refused at the connection, not by an RPC: ${why}`);
}

function credentialsFrom(caFrom: string, clientFrom: string): grpc.ChannelCredentials {
  const read = (dir: string, f: string): Buffer => fs.readFileSync(path.join(dir, f));
  return grpc.credentials.createSsl(read(caFrom, 'ca.crt'), read(clientFrom, 'client.key'), read(clientFrom, 'client.crt'));
}

/** GET over HTTPS, the server verified against `caFile`; also returns the certificate it presented. */
function httpsGet(url: string, caFile: string): Promise<{ status: number; body: string; cert: ReturnType<TLSSocket['getPeerCertificate']> }> {
  return new Promise((resolve, reject) => {
    // agent: false: a new connection each time, never a resumed session (which carries no peer certificate).
    const req = https.get(url, { ca: fs.readFileSync(caFile), timeout: 5000, agent: false }, (res) => {
      const cert = (res.socket as TLSSocket).getPeerCertificate();
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, cert }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url}: no answer in 5 s`)));
    req.on('error', reject);
  });
}

interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `node dist/src/cli/main.js ARGS` to completion; SIGKILLs it (and fails) after `timeoutMs`. */
function runArmorfeed(args: string[], timeoutMs: number): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [armorfeedMain, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`armorfeed ${args.join(' ')} still running after ${timeoutMs} ms\n${stderr.slice(-2000)}`));
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

function jsonLines(text: string): Record<string, unknown>[] {
  return text.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('tls - self: the server signs its certificate at start from ca.crt + ca.key', () => {
  let server: ServeProcess;
  let selfDir = '';
  let stats: () => Promise<FeederStats>;

  before(async () => {
    selfDir = copyFiles(setA, path.join(tmp, 'self'), ['ca.crt', 'ca.key']);
    server = await startServe([...SERVE, '--tlsEnabled', '--tlsCertPath', selfDir, '--metricsTLS', ...SYNTHETIC]);
    stats = async () => JSON.parse((await httpsGet(`https://${server.addresses.metrics}/stats`, path.join(selfDir, 'ca.crt'))).body) as FeederStats;
  });

  after(async () => {
    const exit = await server?.stop('SIGTERM');
    assert.equal(exit?.killed, false, `armorfeed did not exit within 10 s of SIGTERM\n${exit?.stderr.slice(-2048)}`);
  });

  test('tls - the python grpcio client with a client certificate from ca.crt decodes alerts and logs; the health port stays plaintext and answers SERVING', { timeout: 60_000 }, async () => {
    const run = await python(server.addresses.grpc, { caFrom: setA, clientFrom: setA }, { healthAddr: server.addresses.health });
    assertServed(run, 'mTLS with the right client certificate');
    assert.deepEqual(
      run.lines.filter((l) => l.kind === 'grpc_health').map((l) => [l.service, l.status]),
      [['feeder.LogService', 'SERVING']],
      `grpc.health.v1 on the plaintext health port\n${describeRun(run)}`,
    );
  });

  test('tls - refused: no client certificate, a client certificate from another CA, a plaintext client', { timeout: 60_000 }, async () => {
    const before = (await stats()).clients.length;
    const [noCert, otherCa, plaintext] = await Promise.all([
      python(server.addresses.grpc, { caFrom: setA }, { refused: true }),
      python(server.addresses.grpc, { caFrom: setA, clientFrom: setB }, { refused: true }),
      python(server.addresses.grpc, {}, { refused: true }),
    ]);
    assertRefused(noCert, 'TLS without a client certificate');
    assertRefused(otherCa, 'a client certificate signed by another CA');
    assertRefused(plaintext, 'a plaintext client');
    assert.equal((await stats()).clients.length, before, 'no refused client reached a Watch* stream');
    // The same client with the right certificate is still served afterwards.
    assertServed(await python(server.addresses.grpc, { caFrom: setA, clientFrom: setA }), 'after the refusals');
  });

  test('tls - the signed server certificate: kubearmor, from ca.crt, loopback in its SANs, valid 365 days; metricsTLS serves it over HTTPS, not plaintext', { timeout: 30_000 }, async () => {
    const res = await httpsGet(`https://${server.addresses.metrics}/stats`, path.join(selfDir, 'ca.crt'));
    assert.equal(res.status, 200);
    const s = JSON.parse(res.body) as FeederStats;
    assert.equal(s.tls?.provider, 'self');
    assert.equal(res.cert.subject.CN, 'kubearmor');
    assert.equal(res.cert.subject.O, 'kubearmor');
    assert.equal(res.cert.issuer.CN, 'ca-a');
    assert.match(res.cert.subjectaltname ?? '', /IP Address:127\.0\.0\.1\b/);
    assert.match(res.cert.subjectaltname ?? '', /IP Address:0:0:0:0:0:0:0:1\b/);
    assert.match(res.cert.subjectaltname ?? '', /DNS:localhost\b/);
    const days = (Date.parse(res.cert.valid_to) - Date.now()) / 86_400_000;
    assert.ok(days > 364 && days <= 365, `valid for ${days} more days`);
    assert.equal(s.tls?.serverCertNotAfter, new Date(res.cert.valid_to).toISOString(), 'the gRPC port and the metrics port serve the same certificate');
    await assert.rejects(fetch(`http://${server.addresses.metrics}/stats`, { signal: AbortSignal.timeout(5000) }), 'plain HTTP is not answered');
  });

  test('tls - armorfeed log --secure receives events: with a client certificate signed from ca.key (self) and with client.crt (external); without --secure it cannot connect', { timeout: 60_000 }, async () => {
    const common = ['log', '--gRPC', server.addresses.grpc, '--logFilter', 'all', '--limit', '3', '--json'];
    for (const [provider, dir] of [['self', selfDir], ['external', setA]] as const) {
      const r = await runArmorfeed([...common, '--secure', '--tlsCertPath', dir, '--tlsCertProvider', provider], 30_000);
      assert.equal(r.code, 0, `--tlsCertProvider ${provider}\n${r.stderr}`);
      const events = jsonLines(r.stdout);
      assert.equal(events.length, 6, `3 alerts and 3 logs with --tlsCertProvider ${provider}\n${r.stdout}`);
      assert.equal(events.filter((e) => e.Type === 'ContainerLog').length, 3);
      assert.match(r.stderr, /Checked the liveness of the gRPC server/);
    }
    const plain = await runArmorfeed([...common, '--no-reconnect'], 30_000);
    assert.equal(plain.code, 1, plain.stderr);
    assert.match(plain.stderr, /ERR_STREAM_BROKEN: .*UNAVAILABLE/);
    assert.equal(plain.stdout, '');
  });

  test('tls - relay --feeders with tlsEnabled reads the node over mutual TLS (its client certificate signed from ca.key); with another CA it is refused and says why', { timeout: 60_000 }, async () => {
    const relayStats = async (relay: ServeProcess): Promise<NonNullable<FeederStats['relay']>['upstreams'][number] | undefined> => (await fetchStats(relay.addresses.metrics)).relay?.upstreams[0];
    const start = (dir: string, provider: string): Promise<ServeProcess> =>
      startServe(['relay', '--bind', '127.0.0.1', '--gRPC', '0', '--gRPCHealthPort', '-1', '--metricsPort', '0', '--feeders', server.addresses.grpc, '--tlsEnabled', '--tlsCertPath', dir, '--tlsCertProvider', provider]);
    const trusted = await start(selfDir, 'self');
    try {
      await waitUntil('the relay reading alerts and logs over TLS', async () => {
        const u = await relayStats(trusted);
        return u !== undefined && u.connected && u.streams.alerts.events > 0 && u.streams.logs.events > 0;
      }, 20_000, async () => JSON.stringify(await relayStats(trusted)));
    } finally {
      await trusted.stop('SIGTERM');
    }
    const stranger = await start(setB, 'external');
    try {
      await waitUntil('the relay refused by the node', async () => ((await relayStats(stranger))?.streams.alerts.failedAttempts ?? 0) > 0, 20_000, async () => JSON.stringify(await relayStats(stranger)));
      const u = await relayStats(stranger);
      assert.equal(u?.connected, false);
      assert.equal(u?.streams.alerts.events, 0);
      assert.match(u?.streams.alerts.lastError ?? '', /HealthCheck failed \(UNAVAILABLE: .+\)/);
    } finally {
      await stranger.stop('SIGTERM');
    }
  });

  test('tls - a new CA renamed over ca.crt and ca.key: the next connection gets a leaf from it, and a client certificate from the old CA is refused', { timeout: 90_000 }, async () => {
    const reloads = (await stats()).tls?.reloads ?? -1;
    renameOver(setB, selfDir, ['ca.key', 'ca.crt']);
    // The metrics port follows the reload too, so from here it verifies against the new CA.
    const statsB = async (): Promise<FeederStats | undefined> => {
      try {
        return JSON.parse((await httpsGet(`https://${server.addresses.metrics}/stats`, path.join(setB, 'ca.crt'))).body) as FeederStats;
      } catch {
        return undefined;
      }
    };
    await waitUntil('the server to sign a leaf from the new CA', async () => ((await statsB())?.tls?.reloads ?? -1) > reloads, RELOAD_WAIT_MS, () => server.stderr().slice(-1500));
    assertServed(await python(server.addresses.grpc, { caFrom: setB, clientFrom: setB }), 'a client of the new CA');
    const [oldClient, oldCa] = await Promise.all([
      python(server.addresses.grpc, { caFrom: setB, clientFrom: setA }, { refused: true }),
      python(server.addresses.grpc, { caFrom: setA, clientFrom: setA }, { refused: true }),
    ]);
    assertRefused(oldClient, 'a client certificate from the old CA');
    assertRefused(oldCa, 'a client that verifies the server against the old CA');
    assert.match(server.stderr(), /TLS: reloaded the certificates/);
  });
});

describe('tls - external: certificates from a Kubernetes secret volume reload without a restart', () => {
  const files = ['ca.crt', 'server.crt', 'server.key'] as const;
  let server: ServeProcess;
  let secretDir = '';

  before(async () => {
    secretDir = path.join(tmp, 'secret');
    projectSecret(setA, secretDir, files);
    server = await startServe([...SERVE, '--tlsEnabled', '--tlsCertPath', secretDir, '--tlsCertProvider', 'external', ...SYNTHETIC]);
  });

  after(async () => {
    const exit = await server?.stop('SIGTERM');
    assert.equal(exit?.killed, false, `armorfeed did not exit within 10 s of SIGTERM\n${exit?.stderr.slice(-2048)}`);
  });

  test('tls - a new CA, server and client set swapped in: the next connection uses it, the old client certificate is refused, a stream opened before keeps running', { timeout: 90_000 }, async () => {
    const metrics = server.addresses.metrics;
    const early = connect(server.addresses.grpc, credentialsFrom(setA, setA));
    const logs = early.watch('WatchLogs', 'system');
    try {
      await logs.waitFor(3, 15_000);
      assertServed(await python(server.addresses.grpc, { caFrom: setA, clientFrom: setA }), 'set A before the swap');

      projectSecret(setB, secretDir, files);
      await waitUntil('the reload of the swapped secret', async () => ((await fetchStats(metrics)).tls?.reloads ?? 0) >= 1, RELOAD_WAIT_MS, () => server.stderr().slice(-1500));
      assert.match((await fetchStats(metrics)).tls?.serverCertSubject ?? '', /kubearmor/);

      assertServed(await python(server.addresses.grpc, { caFrom: setB, clientFrom: setB }), 'set B after the swap');
      const [oldClient, oldCa] = await Promise.all([
        python(server.addresses.grpc, { caFrom: setB, clientFrom: setA }, { refused: true }),
        python(server.addresses.grpc, { caFrom: setA, clientFrom: setA }, { refused: true }),
      ]);
      assertRefused(oldClient, 'a client certificate from the old CA');
      assertRefused(oldCa, 'a client that verifies the server against the old CA');

      // The connection made before the swap keeps its session: its stream still delivers, and a new call on it works.
      const seen = logs.messages.length;
      await logs.waitFor(seen + 3, 15_000);
      assert.equal(await early.health(4242), 4242);
    } finally {
      logs.cancel();
      early.close();
    }
  });

  test('tls - a bad certificate on reload keeps the certificates in use and logs an ERROR; the server keeps serving', { timeout: 60_000 }, async () => {
    const metrics = server.addresses.metrics;
    const before = (await fetchStats(metrics)).tls;
    assert.ok(before !== undefined);
    projectSecret(setB, secretDir, files, { 'server.crt': 'not a certificate\n' });
    await waitUntil('the failed reload', async () => ((await fetchStats(metrics)).tls?.reloadFailures ?? 0) > before.reloadFailures, RELOAD_WAIT_MS, () => server.stderr().slice(-1500));
    assert.match(server.stderr(), /\[ERROR\] TLS: cannot reload the certificates in .*server\.crt.*keep using the ones loaded at/);
    const after = (await fetchStats(metrics)).tls;
    assert.equal(after?.reloads, before.reloads, 'nothing was replaced');
    assert.equal(after?.serverCertNotAfter, before.serverCertNotAfter);
    assert.equal(server.child.exitCode, null, 'the server is still running');
    assertServed(await python(server.addresses.grpc, { caFrom: setB, clientFrom: setB }), 'set B, still in use');
  });
});

test('tls - a missing or unusable file at start is ERR_CONFIG_TLS naming tlsCertPath and the file: serve and log --secure exit 2 without a stack trace', { timeout: 60_000 }, async () => {
  const empty = fs.mkdtempSync(path.join(tmp, 'empty-'));
  const caOnly = copyFiles(setA, path.join(tmp, 'ca-only'), ['ca.crt']);
  const mismatched = copyFiles(setA, path.join(tmp, 'mismatched'), ['ca.crt']);
  fs.copyFileSync(path.join(setB, 'ca.key'), path.join(mismatched, 'ca.key'));
  const quiet = ['--source', 'none'];
  const cases: [string[], string, RegExp][] = [
    [[...SERVE, ...quiet, '--tlsEnabled', '--tlsCertPath', empty], path.join(empty, 'ca.crt'), /tlsCertPath: .*: cannot read the CA certificate: no such file/],
    [[...SERVE, ...quiet, '--tlsEnabled', '--tlsCertPath', caOnly, '--tlsCertProvider', 'external'], path.join(caOnly, 'server.crt'), /cannot read the server certificate/],
    [[...SERVE, ...quiet, '--tlsEnabled', '--tlsCertPath', mismatched], path.join(mismatched, 'ca.key'), /does not belong to any certificate in ca\.crt/],
    [['log', '--gRPC', '127.0.0.1:1', '--secure', '--tlsCertPath', caOnly], path.join(caOnly, 'ca.key'), /--tlsCertPath: .*cannot read the CA key/],
  ];
  for (const [args, file, message] of cases) {
    const r = await runArmorfeed(args, 20_000);
    const what = `armorfeed ${args.join(' ')}\n${r.stderr}`;
    assert.equal(r.code, 2, what);
    assert.match(r.stderr, /ERR_CONFIG_TLS/, what);
    assert.ok(r.stderr.includes(file), `names ${file}: ${what}`);
    assert.match(r.stderr, message, what);
    assert.doesNotMatch(r.stderr, /^\s+at /m, `no stack trace: ${what}`);
    assert.doesNotMatch(r.stderr, /armorfeed: listening/, what);
  }
});
